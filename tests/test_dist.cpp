// test_dist.cpp — the communicator API in one process: engine info, config
// defaults, argument errors, the engines not built, leaving a communicator.
// Training across ranks is tested under mpiexec (test_dist_mpi.cpp).
#include "test_util.h"

TEST(DistApi, EngineInfoSaysWhatIsBuilt)
{
    int built = -1;
    char version[256];
    ASSERT_EQ(bp_comm_engine_info(BP_COMM_MPI, &built, version, sizeof version), BP_OK);
#ifdef BP_TEST_HAVE_MPI
    EXPECT_EQ(built, 1);
    EXPECT_NE(std::string(version), "");
#else
    EXPECT_EQ(built, 0);
    EXPECT_EQ(std::string(version), "");
#endif
    ASSERT_EQ(bp_comm_engine_info(BP_COMM_NCCL, &built, version, sizeof version), BP_OK);
#ifdef BP_TEST_HAVE_NCCL
    EXPECT_EQ(built, 1);
    EXPECT_NE(std::string(version).find("NCCL"), std::string::npos) << version;
#else
    EXPECT_EQ(built, 0);
#endif
    EXPECT_EQ(bp_comm_engine_info(BP_COMM_MPI, &built, nullptr, 0), BP_OK);
    EXPECT_FAILS(bp_comm_engine_info(BP_COMM_MPI, nullptr, nullptr, 0), BP_ERR_INVALID_ARGUMENT,
                 "built");
    EXPECT_FAILS(bp_comm_engine_info((bp_comm_engine)7, &built, nullptr, 0),
                 BP_ERR_INVALID_ARGUMENT, "unknown engine 7");
    EXPECT_STRNE(bp_status_string(BP_ERR_COMM), "unknown status");
}

TEST(DistApi, ConfigDefaults)
{
    bp_comm_config c;
    std::memset(&c, 0x5a, sizeof c);
    bp_comm_config_init(&c);
    EXPECT_EQ(c.backend, BP_BACKEND_CPU);
    EXPECT_EQ(c.device, 0);
    EXPECT_EQ(c.timeout_s, 300.0);
}

TEST(DistApi, BadArgumentsAreNamed)
{
    bp_comm *comm = reinterpret_cast<bp_comm *>(1);
    bp_nccl_id id;
    std::memset(&id, 0, sizeof id);
    EXPECT_FAILS(bp_comm_create_nccl(nullptr, 0, 1, nullptr, &comm), BP_ERR_INVALID_ARGUMENT,
                 "'id'");
    EXPECT_FAILS(bp_comm_create_nccl(&id, 2, 2, nullptr, &comm), BP_ERR_INVALID_ARGUMENT,
                 "rank 2 of size 2");
    bp_comm_config c;
    bp_comm_config_init(&c);
    EXPECT_FAILS(bp_comm_create_nccl(&id, 0, 1, &c, &comm), BP_ERR_INVALID_ARGUMENT,
                 "BP_BACKEND_CUDA");
    c.backend = BP_BACKEND_CUDA;
    c.timeout_s = 0;
    EXPECT_FAILS(bp_comm_create_nccl(&id, 0, 1, &c, &comm), BP_ERR_INVALID_ARGUMENT, "timeout_s 0");
    c.timeout_s = 1;
    c.device = -1;
    EXPECT_FAILS(bp_comm_create_nccl(&id, 0, 1, &c, &comm), BP_ERR_INVALID_ARGUMENT, "device -1");
    EXPECT_FAILS(bp_comm_create_mpi(nullptr, nullptr, nullptr), BP_ERR_INVALID_ARGUMENT, "out");
    EXPECT_FAILS(bp_comm_rank(nullptr, nullptr, nullptr), BP_ERR_INVALID_ARGUMENT, "comm");
    EXPECT_FAILS(bp_network_join(nullptr, nullptr), BP_ERR_INVALID_ARGUMENT, "net");
    bp_comm_free(nullptr);
}

// bp_comm_launcher_size and _rank read the launcher's variables (the first set one),
// 0 without any; a value that is not a count is named, not taken for 0.
TEST(DistApi, LauncherSizeAndRankComeFromTheEnvironment)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE"};
    std::string saved[4];
    bool had[4];
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(vars[i]);
        had[i] = v != nullptr;
        saved[i] = v ? v : "";
        unsetenv(vars[i]);
    }
    int size = -1;
    EXPECT_EQ(bp_comm_launcher_size(&size), BP_OK);
    EXPECT_EQ(size, 0);
    setenv("PMIX_SIZE", "3", 1);
    EXPECT_EQ(bp_comm_launcher_size(&size), BP_OK);
    EXPECT_EQ(size, 3);
    setenv("PMI_SIZE", "2x", 1);
    EXPECT_FAILS(bp_comm_launcher_size(&size), BP_ERR_INVALID_ARGUMENT, "PMI_SIZE='2x'");
    EXPECT_FAILS(bp_comm_launcher_size(nullptr), BP_ERR_INVALID_ARGUMENT, "size");
    for (int i = 0; i < 4; i++)
        unsetenv(vars[i]);
    // The rank, from the same launchers: 0 without one, never below 0.
    const char *ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK"};
    std::string saved_rank[4];
    bool had_rank[4];
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(ranks[i]);
        had_rank[i] = v != nullptr;
        saved_rank[i] = v ? v : "";
        unsetenv(ranks[i]);
    }
    int rank = -1;
    EXPECT_EQ(bp_comm_launcher_rank(&rank), BP_OK);
    EXPECT_EQ(rank, 0);
    setenv("MV2_COMM_WORLD_RANK", "2", 1);
    EXPECT_EQ(bp_comm_launcher_rank(&rank), BP_OK);
    EXPECT_EQ(rank, 2);
    setenv("OMPI_COMM_WORLD_RANK", "-1", 1);
    EXPECT_FAILS(bp_comm_launcher_rank(&rank), BP_ERR_INVALID_ARGUMENT, "OMPI_COMM_WORLD_RANK='-1'");
    EXPECT_FAILS(bp_comm_launcher_rank(nullptr), BP_ERR_INVALID_ARGUMENT, "rank");
    for (int i = 0; i < 4; i++)
        if (had_rank[i])
            setenv(ranks[i], saved_rank[i].c_str(), 1);
        else
            unsetenv(ranks[i]);
    for (int i = 0; i < 4; i++)
        if (had[i])
            setenv(vars[i], saved[i].c_str(), 1);
        else
            unsetenv(vars[i]);
}

TEST(DistApi, MpiWithoutInitIsAnError)
{
    bp_comm *comm = nullptr;
#ifdef BP_TEST_HAVE_MPI
    // This process never called MPI_Init.
    EXPECT_FAILS(bp_comm_create_mpi(nullptr, nullptr, &comm), BP_ERR_INVALID_ARGUMENT, "MPI_Init");
#else
    EXPECT_FAILS(bp_comm_create_mpi(nullptr, nullptr, &comm), BP_ERR_NOT_BUILT, "BP_MPI");
#endif
    EXPECT_EQ(comm, nullptr);
}

TEST(DistApi, NcclNotBuiltOrNoDevice)
{
    bp_comm *comms[2] = {nullptr, nullptr};
#ifdef BP_TEST_HAVE_NCCL
    int count = 0;
    if (bp_cuda_device_count(&count) == BP_OK && count > 0)
        GTEST_SKIP() << "a CUDA device is present: the NCCL cases run in the GPU tests";
    EXPECT_NE(bp_comm_create_nccl_all(2, nullptr, nullptr, comms), BP_OK);
#else
    bp_nccl_id id;
    EXPECT_FAILS(bp_nccl_id_create(&id), BP_ERR_NOT_BUILT, "BP_NCCL");
    EXPECT_FAILS(bp_comm_create_nccl_all(2, nullptr, nullptr, comms), BP_ERR_NOT_BUILT, "BP_NCCL");
#endif
    EXPECT_EQ(comms[0], nullptr);
}

TEST(DistApi, LeavingWhenAloneIsANoOp)
{
    const int sizes[] = {2, 3, 1};
    const bp_activation acts[] = {BP_ACT_TANH, BP_ACT_SIGMOID};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 2;
    cfg.sizes = sizes;
    cfg.activations = acts;
    bp_network *net = nullptr;
    ASSERT_EQ(bp_network_create(&cfg, &net), BP_OK) << bp_last_error();
    EXPECT_EQ(bp_network_join(net, nullptr), BP_OK);
    float x[2] = {1, 2}, y[1] = {1};
    bp_optimizer opt = bpt::sgd();
    double loss = 0;
    EXPECT_EQ(bpt::sgd_step(net, x, y, 1, &opt, &loss), BP_OK) << bp_last_error();
    bp_network_free(net);
}

// On a real GPU (gpu_check.sh runs the whole suite there): NCCL with one
// rank (NCCL refuses two ranks on one GPU) trains exactly as the network
// alone.
TEST(DistNccl, OneRankOnAGpuEqualsTheNetworkAlone)
{
#ifndef BP_TEST_HAVE_NCCL
    GTEST_SKIP() << "NCCL is not built into this library";
#else
    int count = 0;
    if (bp_cuda_device_count(&count) != BP_OK || count == 0)
        GTEST_SKIP() << "no CUDA device";
    const int sizes[] = {6, 32, 16, 4};
    const bp_activation acts[] = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 3;
    cfg.sizes = sizes;
    cfg.activations = acts;
    cfg.loss = BP_LOSS_CROSS_ENTROPY;
    cfg.dtype = BP_F64;
    cfg.backend = BP_BACKEND_CUDA;
    cfg.max_batch = 32;
    bp_network *joined = nullptr, *alone = nullptr;
    ASSERT_EQ(bp_network_create(&cfg, &joined), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_network_create(&cfg, &alone), BP_OK) << bp_last_error();
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = BP_BACKEND_CUDA;
    bp_comm *comm = nullptr;
    ASSERT_EQ(bp_comm_create_nccl_all(1, nullptr, &cc, &comm), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_network_join(joined, comm), BP_OK) << bp_last_error();
    std::mt19937_64 g(3);
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> x(32 * 6);
    std::vector<int32_t> y(32);
    bp_optimizer opt = bpt::sgd();
    opt.momentum = 0.9;
    for (int step = 0; step < 20; step++) {
        for (double &v : x)
            v = u(g);
        for (int32_t &v : y)
            v = (int32_t)(g() % 4);
        double la = 0, lb = 0;
        ASSERT_EQ(bpt::sgd_step(joined, x.data(), y.data(), 32, &opt, &la), BP_OK)
            << bp_last_error();
        ASSERT_EQ(bpt::sgd_step(alone, x.data(), y.data(), 32, &opt, &lb), BP_OK) << bp_last_error();
        EXPECT_NEAR(la, lb, 1e-12 * std::fabs(lb));
    }
    for (int l = 1; l <= 3; l++) {
        std::vector<double> wa((size_t)sizes[l] * sizes[l - 1]), wb(wa.size());
        ASSERT_EQ(bp_network_get_params(joined, l, wa.data(), nullptr), BP_OK);
        ASSERT_EQ(bp_network_get_params(alone, l, wb.data(), nullptr), BP_OK);
        for (size_t i = 0; i < wa.size(); i++)
            EXPECT_NEAR(wa[i], wb[i], 1e-12 * (std::fabs(wb[i]) + 1e-3)) << "layer " << l;
    }
    bp_network_free(joined);
    bp_network_free(alone);
    bp_comm_free(comm);
#endif
}
