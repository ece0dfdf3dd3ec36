/*
 * agree.c — bp_comm_agree: the values every rank must share (the
 * hyperparameters, the schedule, the epochs, the data), compared before a
 * run starts, since bp_network_join compares only the parameters.
 *
 * Every value becomes 64 bits (a number's bits, or a checksum of bytes);
 * the values fold into one digest, compared in one MAX all-reduce of its
 * halves and their negations (equal everywhere exactly when max == -max of
 * the negation). Only when the digests differ are the values compared one
 * by one, and for the first that differs, rank 0's value is broadcast (a
 * MAX all-reduce where the other ranks give -1) and the differing ranks
 * counted, so that every rank's message names the value and the ranks.
 * All through the engine's host all-reduce, at most 8 doubles a call
 * (NCCL's scratch).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "parallel/comm.h"

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

/* A value as 64 bits: a number's bits (so 0.1 and 0.1 + 1 ulp differ, and
 * -0 from 0), or a checksum of bytes, word by word (every bit counts,
 * position included), mixed with their length. */
static uint64_t value_bits(const bp_comm_value *v)
{
    uint64_t h;
    if (v->bytes == NULL) {
        memcpy(&h, &v->number, sizeof h);
        return h;
    }
    const unsigned char *p = v->bytes;
    size_t words = v->n_bytes / 8;
    h = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        h = (h ^ w) * 0x100000001B3ull + i;
    }
    for (size_t i = words * 8; i < v->n_bytes; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;
    return mix(h, (uint64_t)v->n_bytes);
}

/* Whether bits is the same on every rank (one all-reduce). */
static bp_status same_everywhere(bp_comm *c, uint64_t bits, int *same)
{
    double hi = (double)(bits >> 32), lo = (double)(bits & 0xFFFFFFFFu);
    double v[4] = {hi, lo, -hi, -lo};
    BP_TRY(c->ops->allreduce_host(c, v, 4, BP_DIST_MAX));
    *same = v[0] == -v[2] && v[1] == -v[3];
    return BP_OK;
}

/* Rank 0's bits, and how many ranks (and which, lowest and highest) hold
 * other bits than rank 0. */
static bp_status compare_to_rank0(bp_comm *c, uint64_t bits, uint64_t *rank0, int *count,
                                  int *lowest, int *highest)
{
    double mine[2] = {(double)(bits >> 32), (double)(bits & 0xFFFFFFFFu)};
    double v[2] = {c->rank == 0 ? mine[0] : -1, c->rank == 0 ? mine[1] : -1};
    BP_TRY(c->ops->allreduce_host(c, v, 2, BP_DIST_MAX));
    *rank0 = (uint64_t)v[0] << 32 | (uint64_t)v[1];
    int differs = bits != *rank0;
    double who[2] = {differs ? (double)c->rank : -1.0, differs ? -(double)c->rank : -1e300};
    BP_TRY(c->ops->allreduce_host(c, who, 2, BP_DIST_MAX));
    double n = differs ? 1.0 : 0.0;
    BP_TRY(c->ops->allreduce_host(c, &n, 1, BP_DIST_SUM));
    *count = (int)n;
    *highest = (int)who[0];
    *lowest = (int)-who[1];
    return BP_OK;
}

/* x in the fewest digits that read back as x. */
static void shortest(char *buf, size_t size, double x)
{
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

/* The message for the value v that differs. */
static bp_status differs(bp_comm *c, const bp_comm_value *v, uint64_t bits)
{
    uint64_t rank0 = 0;
    int count = 0, lowest = 0, highest = 0;
    BP_TRY(compare_to_rank0(c, bits, &rank0, &count, &lowest, &highest));
    const char *name = v->name != NULL ? v->name : "a value";
    char ranks[160];
    if (lowest == highest)
        snprintf(ranks, sizeof ranks, "%d of the %d ranks differ from rank 0 (rank %d)", count,
                 c->size, lowest);
    else
        snprintf(ranks, sizeof ranks, "%d of the %d ranks differ from rank 0 (ranks %d to %d)",
                 count, c->size, lowest, highest);
    if (v->bytes == NULL) {
        double at0;
        memcpy(&at0, &rank0, sizeof at0);
        char a[32], b[32];
        shortest(a, sizeof a, at0);
        shortest(b, sizeof b, v->number);
        if (c->rank == 0)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "bp_comm_agree: %s differs between the ranks: %s here on rank 0; %s",
                           name, a, ranks);
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_comm_agree: %s differs between the ranks: %s on rank 0, %s here on "
                       "rank %d; %s",
                       name, a, b, c->rank, ranks);
    }
    return bp_fail(BP_ERR_INVALID_ARGUMENT,
                   "bp_comm_agree: %s differs between the ranks (%zu bytes here on rank %d, "
                   "checksum %016llx; rank 0's %016llx); %s",
                   name, v->n_bytes, c->rank, (unsigned long long)bits, (unsigned long long)rank0,
                   ranks);
}

bp_status bp_comm_agree(bp_comm *comm, const bp_comm_value *values, int n)
{
    const char *fn = "bp_comm_agree";
    BP_CHECK_PTR(fn, comm);
    if (n < 0 || (n > 0 && values == NULL))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: %d values at %p", fn, n, (const void *)values);
    for (int i = 0; i < n; i++)
        if (values[i].bytes == NULL && values[i].n_bytes != 0)
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: values[%d] has %zu bytes at NULL", fn, i,
                           values[i].n_bytes);
    if (comm->broken)
        return bp_fail(BP_ERR_COMM, "%s: the communicator is broken by an earlier error", fn);
    uint64_t digest = mix(0x6167726565ull, (uint64_t)n);
    for (int i = 0; i < n; i++)
        digest = mix(digest, value_bits(&values[i]));
    /* The count first (every rank must then make the same calls below),
     * in the same all-reduce as the digest. */
    double v[8] = {(double)n, -(double)n, (double)(digest >> 32), (double)(digest & 0xFFFFFFFFu)};
    v[4] = -v[2], v[5] = -v[3], v[6] = v[7] = 0;
    BP_TRY(comm->ops->allreduce_host(comm, v, 8, BP_DIST_MAX));
    if (v[0] != -v[1])
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the ranks pass different numbers of values (%d here on rank %d, from "
                       "%.0f to %.0f)",
                       fn, n, comm->rank, -v[1], v[0]);
    if (v[2] == -v[4] && v[3] == -v[5])
        return BP_OK;
    for (int i = 0; i < n; i++) {
        uint64_t bits = value_bits(&values[i]);
        int same = 0;
        BP_TRY(same_everywhere(comm, bits, &same));
        if (!same)
            return differs(comm, &values[i], bits);
    }
    /* Different digests come from a value that differs: not reached. */
    return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: the ranks' values differ", fn);
}
