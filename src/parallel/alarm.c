/*
 * alarm.c — the side channel by which a failing rank tells the others
 * (bp_comm_abort): a private duplicate of the communicator's MPI_Comm on
 * which only alarms travel. Every rank keeps one receive posted there
 * (any source, one tag); the one poll loop of every wait (comm.c,
 * bp_dist_poll) tests it, so a rank waiting on a collective learns of
 * another's failure within a poll interval instead of the timeout. An
 * alarm is a short text sent with MPI_Isend to every other rank: small
 * enough to go eagerly, so raising one never waits for the receivers.
 */
#ifdef BP_HAVE_MPI
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "parallel/comm.h"

enum { ALARM_TAG = 0x6270, ALARM_TEXT = 400 };

struct bp_alarm {
    MPI_Comm comm;
    int rank, size;
    MPI_Request recv; /* any rank's alarm, kept posted */
    char in[ALARM_TEXT];
    int heard; /* an alarm arrived (in[] holds it) */
    int raised;
    char out[ALARM_TEXT];
};

bp_status bp_dist_alarm_open(const void *mpi_comm, bp_alarm **out)
{
    *out = NULL;
    bp_alarm *a = calloc(1, sizeof *a);
    if (a == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for a communicator's alarm channel");
    a->comm = MPI_COMM_NULL;
    a->recv = MPI_REQUEST_NULL;
    int err = MPI_Comm_dup(*(const MPI_Comm *)mpi_comm, &a->comm);
    if (err == MPI_SUCCESS)
        err = MPI_Comm_set_errhandler(a->comm, MPI_ERRORS_RETURN);
    if (err == MPI_SUCCESS)
        err = MPI_Comm_rank(a->comm, &a->rank);
    if (err == MPI_SUCCESS)
        err = MPI_Comm_size(a->comm, &a->size);
    if (err == MPI_SUCCESS)
        err = MPI_Irecv(a->in, ALARM_TEXT, MPI_CHAR, MPI_ANY_SOURCE, ALARM_TAG, a->comm, &a->recv);
    if (err != MPI_SUCCESS) {
        bp_dist_alarm_close(a);
        return bp_fail(BP_ERR_COMM, "cannot open the communicator's alarm channel (MPI error %d)",
                       err);
    }
    *out = a;
    return BP_OK;
}

int bp_dist_alarm_heard(bp_alarm *a, char *msg, size_t size)
{
    if (a == NULL)
        return 0;
    if (!a->heard && a->recv != MPI_REQUEST_NULL) {
        int done = 0;
        if (MPI_Test(&a->recv, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done) {
            a->heard = 1;
            a->in[ALARM_TEXT - 1] = '\0';
        }
    }
    if (a->heard && size > 0)
        snprintf(msg, size, "%s", a->in);
    return a->heard;
}

void bp_dist_alarm_raise(bp_alarm *a, const char *why)
{
    if (a == NULL || a->raised)
        return;
    a->raised = 1;
    snprintf(a->out, sizeof a->out, "rank %d of %d failed: %s", a->rank, a->size,
             why != NULL && why[0] != '\0' ? why : "(no reason given)");
    /* Eager sends complete locally; what has not after a moment is left
     * to MPI (this rank is on its way out). */
    for (int r = 0; r < a->size; r++) {
        if (r == a->rank)
            continue;
        MPI_Request req = MPI_REQUEST_NULL;
        if (MPI_Isend(a->out, (int)strlen(a->out) + 1, MPI_CHAR, r, ALARM_TAG, a->comm, &req) !=
            MPI_SUCCESS)
            continue;
        double t0 = bp_dist_now();
        int done = 0;
        while (!done && bp_dist_now() - t0 < 0.5 &&
               MPI_Test(&req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS)
            bp_dist_backoff(bp_dist_now() - t0);
        if (!done)
            MPI_Request_free(&req);
    }
}

void bp_dist_alarm_close(bp_alarm *a)
{
    if (a == NULL)
        return;
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (!finalized && a->recv != MPI_REQUEST_NULL) {
        MPI_Cancel(&a->recv);
        MPI_Request_free(&a->recv);
    }
    /* After an alarm the other ranks are leaving; freeing the duplicate
     * (collective in principle) is left to MPI then. */
    if (!finalized && !a->heard && !a->raised && a->comm != MPI_COMM_NULL)
        MPI_Comm_free(&a->comm);
    free(a);
}

#else
typedef int bp_dist_alarm_not_built; /* see absent.c */
#endif
