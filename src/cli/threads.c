/* threads.c — --threads N (threads.h). The library has no thread control
 * of its own yet: the CPU backend's threads are the BLAS library's, so the
 * count goes to whichever setter the loaded BLAS exports (OpenBLAS, BLIS,
 * MKL, or OpenMP for OpenMP-threaded builds), found at run time so that
 * the command links no BLAS itself. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

#include "args.h"
#include "threads.h"

int cli_set_threads(long n)
{
    static const char *const int_setters[] = {"openblas_set_num_threads", "MKL_Set_Num_Threads",
                                              "omp_set_num_threads"};
    int done = 0;
    for (size_t i = 0; i < sizeof int_setters / sizeof int_setters[0]; i++) {
        void *sym = dlsym(RTLD_DEFAULT, int_setters[i]);
        if (sym == NULL)
            continue;
        void (*set)(int);
        *(void **)&set = sym;
        set((int)n);
        done = 1;
    }
    void *blis = dlsym(RTLD_DEFAULT, "bli_thread_set_num_threads");
    if (blis != NULL) {
        void (*set)(long);
        *(void **)&set = blis;
        set(n);
        done = 1;
    }
    if (!done)
        cli_warning("--threads %ld: the BLAS library this program runs with offers no thread "
                    "control; it uses its own count (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS)",
                    n);
    return done ? 0 : -1;
}
