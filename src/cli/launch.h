/*
 * launch.h — data-parallel `backprop train`: the ranks an MPI launcher
 * started (recognised by the environment it gives its processes, so that a
 * plain `backprop train` never starts MPI) or the GPUs of a --device list.
 * The library does the work (bp_comm_create_world, the trainer's devices);
 * this file only finds out which, and keeps ranks other than 0 quiet.
 */
#ifndef BP_CLI_LAUNCH_H
#define BP_CLI_LAUNCH_H

#include "backprop.h"
#include "common.h"

typedef struct cli_launch {
    bp_comm *comm;  /* under a launcher: the ranks (bp_comm_create_world) */
    int rank, size; /* 0 and 1 alone */
    int n_devices;  /* --device cuda:A,B,.. or cuda:all: the GPUs, else 0 */
    int devices[64];
} cli_launch;

/* The --device spec of rank 0's network: "cuda:A" for a list "cuda:A,B,.."
 * or for "cuda:all", else spec itself. buf holds the result. */
const char *cli_launch_device_spec(const char *spec, char *buf, size_t size);

/* After the device is chosen: a launcher's ranks (more than one) get their
 * communicator, and a CUDA rank the GPU of its local rank (dev->ordinal);
 * ranks other than 0 are quiet, write no files (each output set to NULL)
 * and have standard output silenced; or the --device list is read.
 * Returns 0, or prints an error and returns 1. */
int cli_launch_begin(cli_launch *l, const char *spec, device_choice *dev, int *quiet,
                     const char **outputs[], int n_outputs);

/* The trainer's data-parallel fields, and (rank 0) a line saying how the
 * global batch is split. */
void cli_launch_configure(const cli_launch *l, bp_trainer_config *tc, const char *device);

/* Frees the communicator (finalising MPI if it was started for it). */
void cli_launch_end(cli_launch *l);

/* This rank's run failed with status (not 0): the other ranks are told at
 * once (their collectives fail, bp_comm_abort), and cli_launch_end does not
 * wait for them in MPI's finalize. */
void cli_launch_fail(cli_launch *l, int status);

#endif
