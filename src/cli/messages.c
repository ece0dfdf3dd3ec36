/* messages.c — errors, warnings and notes on standard error (messages.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backprop.h"
#include "messages.h"
#include "signals.h"

/* The launcher's rank and size come from the library, which reads its
 * environment (Open MPI, MPICH and Intel MPI, MVAPICH, Slurm with PMIx). */
int cli_launcher_rank(void)
{
    int rank = 0; /* an unreadable value counts as rank 0: its messages are printed */
    return bp_comm_launcher_rank(&rank) == BP_OK ? rank : 0;
}

int cli_launcher_size(void)
{
    int size = 0;
    return bp_comm_launcher_size(&size) == BP_OK && size > 1 ? size : 1;
}

/* One write per message, so that ranks sharing a terminal (mpirun) never
 * interleave within a line. */
static void say(const char *label, const char *fmt, va_list ap)
{
    char rank_part[32] = "", msg[2048];
    int rank = cli_launcher_rank();
    if (rank != 0)
        snprintf(rank_part, sizeof rank_part, "rank %d: ", rank);
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "backprop: %s%s%s\n", rank_part, label, msg);
    fflush(stderr);
}

/* Another rank than 0, about to fail: up to ten seconds for the launcher
 * to end the job (a stopping signal caught, or the default action), which
 * it does as soon as rank 0 has exited with the same error; rank 0's exit
 * may take seconds (a leak check, a loaded machine). 1 when it did. */
static int job_ending(void)
{
    if (cli_launcher_size() <= 1 || cli_launcher_rank() == 0)
        return 0;
    const struct timespec tick = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 200 && !cli_signals_caught(); i++)
        nanosleep(&tick, NULL);
    return cli_signals_caught() != 0;
}

int cli_error(const char *fmt, ...)
{
    if (job_ending())
        return -1;
    va_list ap;
    va_start(ap, fmt);
    say("", fmt, ap);
    va_end(ap);
    return -1;
}

void cli_warning(const char *fmt, ...)
{
    if (cli_launcher_rank() != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    say("warning: ", fmt, ap);
    va_end(ap);
}

void cli_note(int quiet, const char *fmt, ...)
{
    if (quiet || cli_launcher_rank() != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    say("note: ", fmt, ap);
    va_end(ap);
}
