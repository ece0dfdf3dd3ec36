/*
 * absent.c — the engines not built into this library: their calls return
 * BP_ERR_NOT_BUILT with a message that says how to build them.
 */
#include "parallel/comm.h"
#include "api/error.h"

#ifndef BP_HAVE_MPI
/* No MPI, no alarm channel: bp_comm_abort only breaks this rank's
 * communicator, and the others time out. */
bp_status bp_dist_alarm_open(const void *mpi_comm, bp_alarm **out)
{
    (void)mpi_comm;
    *out = NULL;
    return BP_OK;
}

int bp_dist_alarm_heard(bp_alarm *a, char *msg, size_t size)
{
    (void)a, (void)msg, (void)size;
    return 0;
}

void bp_dist_alarm_raise(bp_alarm *a, const char *why) { (void)a, (void)why; }

void bp_dist_alarm_close(bp_alarm *a) { (void)a; }

bp_status bp_dist_mpi_version(int *built, char *version, size_t size)
{
    (void)version;
    (void)size;
    *built = 0;
    return BP_OK;
}

bp_status bp_comm_create_mpi(const void *mpi_comm, const bp_comm_config *cfg, bp_comm **out)
{
    (void)mpi_comm;
    (void)cfg;
    BP_CHECK_PTR("bp_comm_create_mpi", out);
    *out = NULL;
    return bp_fail(BP_ERR_NOT_BUILT,
                   "bp_comm_create_mpi: MPI is not built into this library (install an MPI "
                   "such as Debian's libopenmpi-dev and configure with -DBP_MPI=ON)");
}

bp_status bp_dist_mpi_world(const bp_comm_config *cfg, bp_comm **out)
{
    (void)cfg;
    *out = NULL;
    return bp_fail(BP_ERR_NOT_BUILT,
                   "bp_comm_create_world: MPI is not built into this library (install an MPI "
                   "such as Debian's libopenmpi-dev and configure with -DBP_MPI=ON)");
}

void bp_dist_mpi_finalize(void) {}
#endif

#ifndef BP_HAVE_NCCL
static bp_status nccl_absent(const char *fn)
{
    return bp_fail(BP_ERR_NOT_BUILT,
                   "%s: NCCL is not built into this library (it needs the CUDA backend and "
                   "NCCL's headers and library; configure with -DBP_NCCL=ON)",
                   fn);
}

bp_status bp_dist_nccl_version(int *built, char *version, size_t size)
{
    (void)version;
    (void)size;
    *built = 0;
    return BP_OK;
}

bp_status bp_nccl_id_create(bp_nccl_id *id)
{
    BP_CHECK_PTR("bp_nccl_id_create", id);
    return nccl_absent("bp_nccl_id_create");
}

bp_status bp_dist_nccl_create(const char *fn, const bp_nccl_id *id, int rank, int size,
                              const bp_comm_config *cfg, bp_comm **out)
{
    (void)id;
    (void)rank;
    (void)size;
    (void)cfg;
    (void)out;
    return nccl_absent(fn);
}

bp_status bp_comm_create_nccl_all(int n_devices, const int *devices, const bp_comm_config *cfg,
                                  bp_comm **comms)
{
    (void)n_devices;
    (void)devices;
    (void)cfg;
    BP_CHECK_PTR("bp_comm_create_nccl_all", comms);
    for (int i = 0; i < n_devices; i++)
        comms[i] = NULL;
    return nccl_absent("bp_comm_create_nccl_all");
}
#endif
