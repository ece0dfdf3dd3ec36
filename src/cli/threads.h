/* threads.h — --threads N: how many CPU threads the products use. */
#ifndef BP_CLI_THREADS_H
#define BP_CLI_THREADS_H

/* Asks the BLAS library the process runs with for n threads. Returns 0,
 * or warns (the run goes on with the BLAS library's own count) and
 * returns -1 when it offers no way. */
int cli_set_threads(long n);

#endif
