/*
 * api_hostile.c — the C API driven with hostile but legal values: every
 * argument is of the right type and every pointer valid, but counts, enums,
 * sizes, step counters and hyperparameters sit at and beyond their edges.
 * Each call must return one of the statuses listed for it (never crash,
 * hang, overflow or accept what it then cannot do); CI runs it under
 * AddressSanitizer and UndefinedBehaviorSanitizer, where any report fails
 * it. Prints every failing call and how many calls held; exits 1 if any
 * failed.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backprop.h"

typedef struct probe {
    int tried, held;
} probe;

/* Status st is one of the allowed ones (a 1 << status mask). */
#define ALLOW(s) (1u << (unsigned)(s))
static void expect(probe *p, const char *what, bp_status st, unsigned allowed)
{
    p->tried++;
    if ((unsigned)st < 32 && (ALLOW(st) & allowed)) {
        p->held++;
        return;
    }
    printf("FAILED: %s -> %s (%s)\n", what, bp_status_string(st), bp_last_error());
}

/* A 2-4-3 network of dtype dt on the CPU, or NULL. */
static bp_network *small_net(bp_dtype dt, bp_loss loss, int max_batch)
{
    static const int sizes[] = {2, 4, 3};
    static const bp_activation acts[] = {BP_ACT_TANH, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 2, cfg.sizes = sizes, cfg.activations = acts;
    cfg.loss = loss, cfg.dtype = dt, cfg.max_batch = max_batch;
    bp_network *net = NULL;
    return bp_network_create(&cfg, &net) == BP_OK ? net : NULL;
}

static bp_status create(int n_layers, const int *sizes, const bp_activation *acts, bp_loss loss,
                        bp_dtype dt, int max_batch, double slope)
{
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = n_layers, cfg.sizes = sizes, cfg.activations = acts;
    cfg.loss = loss, cfg.dtype = dt, cfg.max_batch = max_batch, cfg.leaky_slope = slope;
    bp_network *net = NULL;
    bp_status st = bp_network_create(&cfg, &net);
    bp_network_free(net);
    return st;
}

/* Networks: sizes, enums and batches at their edges. */
static void probe_networks(probe *p)
{
    const unsigned ok_or_bad = ALLOW(BP_OK) | ALLOW(BP_ERR_INVALID_ARGUMENT);
    const unsigned bad = ALLOW(BP_ERR_INVALID_ARGUMENT);
    const unsigned too_big = ALLOW(BP_ERR_INVALID_ARGUMENT) | ALLOW(BP_ERR_OUT_OF_MEMORY);
    bp_activation acts[BP_MAX_LAYERS + 1];
    int sizes[BP_MAX_LAYERS + 2];
    for (int i = 0; i < BP_MAX_LAYERS + 2; i++)
        sizes[i] = 1;
    for (int i = 0; i <= BP_MAX_LAYERS; i++)
        acts[i] = BP_ACT_RELU;
    expect(p, "create: BP_MAX_LAYERS layers of width 1",
           create(BP_MAX_LAYERS, sizes, acts, BP_LOSS_MSE, BP_F64, 1, 0.01), ALLOW(BP_OK));
    expect(p, "create: BP_MAX_LAYERS + 1 layers",
           create(BP_MAX_LAYERS + 1, sizes, acts, BP_LOSS_MSE, BP_F64, 1, 0.01), bad);
    expect(p, "create: 0 layers", create(0, sizes, acts, BP_LOSS_MSE, BP_F64, 1, 0.01), bad);
    expect(p, "create: INT_MIN layers", create(INT_MIN, sizes, acts, BP_LOSS_MSE, BP_F64, 1, 0.01),
           bad);
    int wide[] = {BP_MAX_WIDTH, BP_MAX_WIDTH, BP_MAX_WIDTH};
    expect(p, "create: two BP_MAX_WIDTH x BP_MAX_WIDTH layers (16 TiB)",
           create(2, wide, acts, BP_LOSS_MSE, BP_F64, 1, 0.01), too_big);
    int over[] = {BP_MAX_WIDTH + 1, 1};
    expect(p, "create: width BP_MAX_WIDTH + 1",
           create(1, over, acts, BP_LOSS_MSE, BP_F64, 1, 0.01), bad);
    int neg[] = {INT_MIN, 1};
    expect(p, "create: width INT_MIN", create(1, neg, acts, BP_LOSS_MSE, BP_F64, 1, 0.01), bad);
    int one[] = {1, 1};
    expect(p, "create: max_batch INT_MAX (activations beyond any memory)",
           create(1, one, acts, BP_LOSS_MSE, BP_F64, INT_MAX, 0.01), too_big);
    expect(p, "create: max_batch 0", create(1, one, acts, BP_LOSS_MSE, BP_F64, 0, 0.01), bad);
    expect(p, "create: max_batch INT_MIN",
           create(1, one, acts, BP_LOSS_MSE, BP_F64, INT_MIN, 0.01), bad);
    int wide_batch[] = {BP_MAX_WIDTH, 1};
    expect(p, "create: width BP_MAX_WIDTH, max_batch 1 << 20",
           create(1, wide_batch, acts, BP_LOSS_MSE, BP_F64, 1 << 20, 0.01), too_big);
    bp_activation odd[] = {(bp_activation)99};
    expect(p, "create: activation 99", create(1, one, odd, BP_LOSS_MSE, BP_F64, 1, 0.01), bad);
    odd[0] = (bp_activation)-1;
    expect(p, "create: activation -1", create(1, one, odd, BP_LOSS_MSE, BP_F64, 1, 0.01), bad);
    expect(p, "create: loss 99", create(1, one, acts, (bp_loss)99, BP_F64, 1, 0.01), bad);
    expect(p, "create: dtype -7", create(1, one, acts, BP_LOSS_MSE, (bp_dtype)-7, 1, 0.01), bad);
    bp_activation leaky[] = {BP_ACT_LEAKY_RELU};
    expect(p, "create: leaky slope NaN", create(1, one, leaky, BP_LOSS_MSE, BP_F64, 1, NAN), bad);
    expect(p, "create: leaky slope inf", create(1, one, leaky, BP_LOSS_MSE, BP_F64, 1, INFINITY),
           bad);
    expect(p, "create: leaky slope 1e308", create(1, one, leaky, BP_LOSS_MSE, BP_F64, 1, 1e308),
           ok_or_bad);
    expect(p, "create: leaky slope -DBL_MAX",
           create(1, one, leaky, BP_LOSS_MSE, BP_F64, 1, -DBL_MAX), ok_or_bad);
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 1, cfg.sizes = one, cfg.activations = acts;
    bp_network *net = NULL;
    cfg.struct_size = 3;
    expect(p, "create: struct_size 3", bp_network_create(&cfg, &net), bad);
    bp_network_free(net);
    net = NULL;
    cfg.struct_size = sizeof cfg;
    cfg.seed = UINT64_MAX;
    expect(p, "create: seed UINT64_MAX", bp_network_create(&cfg, &net), ALLOW(BP_OK));
    bp_network_free(net);
    net = NULL;
    cfg.seed = 1, cfg.device = INT_MIN;
    expect(p, "create: CPU network with device INT_MIN", bp_network_create(&cfg, &net), ok_or_bad);
    bp_network_free(net);
    net = NULL;
    cfg.device = 0, cfg.math_mode = (bp_math_mode)77;
    expect(p, "create: math_mode 77", bp_network_create(&cfg, &net), bad);
    bp_network_free(net);
}

/* Calls on a live network with counts and layer numbers at their edges. */
static void probe_calls(probe *p)
{
    const unsigned bad = ALLOW(BP_ERR_INVALID_ARGUMENT);
    bp_network *net = small_net(BP_F64, BP_LOSS_CROSS_ENTROPY, 4);
    expect(p, "a small network", net ? BP_OK : BP_ERR_INVALID_ARGUMENT, ALLOW(BP_OK));
    if (net == NULL)
        return;
    double x[8] = {0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8}, out[12], w[16], b[4], loss = 0;
    int32_t labels[4] = {0, 1, 2, 1};
    const int batches[] = {0, -1, 5, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "forward: batch %d", batches[i]);
        expect(p, what, bp_network_forward(net, x, batches[i], out), bad);
        snprintf(what, sizeof what, "gradients: batch %d", batches[i]);
        expect(p, what, bp_network_gradients(net, x, labels, batches[i], &loss), bad);
        snprintf(what, sizeof what, "step: batch %d", batches[i]);
        expect(p, what, bp_network_step(net, x, labels, batches[i], &loss), bad);
    }
    const int layers[] = {0, 3, -1, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "get_params: layer %d", layers[i]);
        expect(p, what, bp_network_get_params(net, layers[i], w, b), bad);
        snprintf(what, sizeof what, "set_params: layer %d", layers[i]);
        expect(p, what, bp_network_set_params(net, layers[i], w, b), bad);
        snprintf(what, sizeof what, "get_gradients: layer %d", layers[i]);
        expect(p, what, bp_network_get_gradients(net, layers[i], w, b), bad);
        snprintf(what, sizeof what, "get_layer_state: layer %d", layers[i]);
        expect(p, what, bp_network_get_layer_state(net, layers[i], 1, w, w, w), bad);
        snprintf(what, sizeof what, "get_optimizer_state: layer %d", layers[i]);
        expect(p, what,
               bp_network_get_optimizer_state(net, BP_STATE_MOMENTUM_BUFFER, layers[i], w, b), bad);
    }
    expect(p, "get_layer_state: batch 5 > max_batch",
           bp_network_get_layer_state(net, 1, 5, w, w, w), bad);
    expect(p, "get_layer_state: batch -1", bp_network_get_layer_state(net, 1, -1, w, w, w), bad);
    expect(p, "get_optimizer_state: state 99",
           bp_network_get_optimizer_state(net, (bp_optimizer_state)99, 1, w, b), bad);
    expect(p, "get_optimizer_state: state -1",
           bp_network_get_optimizer_state(net, (bp_optimizer_state)-1, 1, w, b), bad);
    /* Labels outside [0, n_L): a cross-entropy step must not read past its row. */
    int32_t wild[4] = {0, 3, INT32_MAX, INT32_MIN};
    expect(p, "gradients: labels 3, INT32_MAX, INT32_MIN for 3 classes",
           bp_network_gradients(net, x, wild, 4, &loss), bad);
    expect(p, "step: label INT32_MAX", bp_network_step(net, x, wild, 4, &loss), bad);
    bp_evaluation ev;
    expect(p, "evaluate: labels out of range",
           bp_network_evaluate(net, x, wild, NULL, 4, NULL, &ev), bad);
    expect(p, "evaluate: n 0", bp_network_evaluate(net, x, labels, NULL, 0, NULL, &ev),
           ALLOW(BP_OK) | bad);
    expect(p, "evaluate: n INT_MIN", bp_network_evaluate(net, x, labels, NULL, INT_MIN, NULL, &ev),
           bad);
    bp_gradcheck_config gc;
    bp_gradcheck_config_init(&gc);
    double rel[2];
    gc.eps = 0.0; /* 0: the dtype's default step (bp_gradcheck_defaults) */
    expect(p, "gradcheck: eps 0", bp_network_gradcheck(net, x, labels, 4, &gc, rel), ALLOW(BP_OK));
    const double eps[] = {-1e-5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        char what[96];
        gc.eps = eps[i];
        snprintf(what, sizeof what, "gradcheck: eps %g", eps[i]);
        expect(p, what, bp_network_gradcheck(net, x, labels, 4, &gc, rel), bad);
    }
    gc.eps = 1e308; /* legal, if useless: the differences are what they are */
    expect(p, "gradcheck: eps 1e308", bp_network_gradcheck(net, x, labels, 4, &gc, rel),
           ALLOW(BP_OK) | bad);
    gc.eps = 1e-5, gc.floor = NAN;
    expect(p, "gradcheck: floor NaN", bp_network_gradcheck(net, x, labels, 4, &gc, rel), bad);
    gc.floor = 1e-3, gc.max_per_layer = INT_MIN;
    expect(p, "gradcheck: max_per_layer INT_MIN",
           bp_network_gradcheck(net, x, labels, 4, &gc, rel), bad);
    gc.max_per_layer = INT_MAX;
    expect(p, "gradcheck: max_per_layer INT_MAX",
           bp_network_gradcheck(net, x, labels, 4, &gc, rel), ALLOW(BP_OK));
    bp_network_free(net);
}

/* The optimizer: hyperparameters and the step counter at their edges. */
static void probe_optimizer(probe *p)
{
    const unsigned bad = ALLOW(BP_ERR_INVALID_ARGUMENT);
    bp_network *net = small_net(BP_F64, BP_LOSS_MSE, 4);
    if (net == NULL)
        return;
    double x[8] = {0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8}, y[12] = {0}, loss = 0;
    const double lrs[] = {NAN, INFINITY, -1.0, -0.0, DBL_MAX, DBL_MIN / 4};
    const unsigned lr_ok[] = {bad, bad, bad, ALLOW(BP_OK), ALLOW(BP_OK) | bad, ALLOW(BP_OK)};
    for (size_t i = 0; i < sizeof lrs / sizeof lrs[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "set_lr %g", lrs[i]);
        expect(p, what, bp_network_set_lr(net, lrs[i]), lr_ok[i]);
    }
    bp_network_set_lr(net, 0.01);
    for (int k = 0; k < 9; k++) {
        bp_optimizer o;
        bp_optimizer_init(&o, k < 5 ? BP_OPTIMIZER_SGD : BP_OPTIMIZER_ADAM);
        const char *what = "";
        switch (k) {
        case 0: o.momentum = 1.0, what = "sgd momentum 1"; break;
        case 1: o.dampening = NAN, what = "sgd dampening NaN"; break;
        case 2: o.weight_decay = INFINITY, what = "sgd weight_decay inf"; break;
        case 3: o.nesterov = 2, what = "sgd nesterov 2"; break;
        case 4: o.clip_grad_norm = NAN, what = "clip_grad_norm NaN"; break;
        case 5: o.beta1 = 1.0, what = "adam beta1 1"; break;
        case 6: o.beta2 = NAN, what = "adam beta2 NaN"; break;
        case 7: o.eps = INFINITY, what = "adam eps inf"; break;
        case 8: o.type = (bp_optimizer_type)42, what = "optimizer type 42"; break;
        }
        expect(p, what, bp_network_set_optimizer(net, &o), bad);
    }
    bp_optimizer adam;
    bp_optimizer_init(&adam, BP_OPTIMIZER_ADAM);
    expect(p, "adam", bp_network_set_optimizer(net, &adam), ALLOW(BP_OK));
    /* The step counter: the largest accepted value still trains (and
     * saturates rather than overflowing); larger ones are refused. */
    const int64_t steps[] = {-1, INT64_MIN, INT64_MAX, INT64_MAX - 1, ((int64_t)1 << 53) + 1};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char what[80];
        snprintf(what, sizeof what, "set_optimizer_step %lld", (long long)steps[i]);
        expect(p, what, bp_network_set_optimizer_step(net, steps[i]), bad);
    }
    int64_t top = (int64_t)1 << 53, got = 0;
    expect(p, "set_optimizer_step 2^53", bp_network_set_optimizer_step(net, top), ALLOW(BP_OK));
    for (int i = 0; i < 3; i++)
        expect(p, "step at the largest step count", bp_network_step(net, x, y, 4, &loss),
               ALLOW(BP_OK));
    expect(p, "get_optimizer_step", bp_network_get_optimizer_step(net, &got), ALLOW(BP_OK));
    expect(p, "the step count stays at 2^53", got == top ? BP_OK : BP_ERR_NUMERIC, ALLOW(BP_OK));
    expect(p, "loss finite after steps at 2^53", isfinite(loss) ? BP_OK : BP_ERR_NUMERIC,
           ALLOW(BP_OK));
    bp_network_free(net);
}

/* Buffers and device epochs: offsets, sizes and row numbers at their edges. */
static void probe_buffers(probe *p)
{
    const unsigned bad = ALLOW(BP_ERR_INVALID_ARGUMENT);
    bp_network *net = small_net(BP_F32, BP_LOSS_CROSS_ENTROPY, 4);
    if (net == NULL)
        return;
    bp_buffer *huge = NULL, *x = NULL, *y = NULL;
    expect(p, "buffer_create SIZE_MAX", bp_buffer_create(net, SIZE_MAX, &huge),
           bad | ALLOW(BP_ERR_OUT_OF_MEMORY));
    bp_buffer_free(huge);
    expect(p, "buffer_create 0", bp_buffer_create(net, 0, &huge), ALLOW(BP_OK) | bad);
    bp_buffer_free(huge);
    float fx[8] = {0}, got[2];
    int32_t labels[4] = {0, 1, 2, 0};
    expect(p, "buffer x", bp_buffer_create(net, sizeof fx, &x), ALLOW(BP_OK));
    expect(p, "buffer y", bp_buffer_create(net, sizeof labels, &y), ALLOW(BP_OK));
    if (x == NULL || y == NULL) {
        bp_buffer_free(x);
        bp_buffer_free(y);
        bp_network_free(net);
        return;
    }
    expect(p, "upload offset SIZE_MAX", bp_buffer_upload(x, SIZE_MAX, fx, 2), bad);
    expect(p, "upload offset 1, SIZE_MAX bytes", bp_buffer_upload(x, 1, fx, SIZE_MAX), bad);
    expect(p, "download offset SIZE_MAX - 1, 4 bytes", bp_buffer_download(x, SIZE_MAX - 1, got, 4),
           bad);
    expect(p, "download one byte past the end", bp_buffer_download(x, sizeof fx - 3, got, 4), bad);
    bp_buffer_upload(x, 0, fx, sizeof fx);
    bp_buffer_upload(y, 0, labels, sizeof labels);
    int32_t rows[4] = {0, 1, 2, 3};
    int32_t wild[4] = {0, -1, 4, INT32_MAX};
    expect(p, "step_buffer: rows -1, 4, INT32_MAX of 4",
           bp_network_step_buffer(net, x, y, wild, 4, NULL), bad);
    expect(p, "forward_buffer: batch INT_MAX", bp_network_forward_buffer(net, x, rows, INT_MAX, x),
           bad);
    expect(p, "set_epoch: row INT32_MAX", bp_network_set_epoch(net, x, y, wild, 4), bad);
    expect(p, "set_epoch: SIZE_MAX rows", bp_network_set_epoch(net, x, y, rows, SIZE_MAX), bad);
    expect(p, "set_epoch: 4 rows", bp_network_set_epoch(net, x, y, rows, 4), ALLOW(BP_OK));
    expect(p, "epoch_step: batch 5 of 4 rows", bp_network_epoch_step(net, 5, NULL), bad);
    expect(p, "epoch_step: batch INT_MIN", bp_network_epoch_step(net, INT_MIN, NULL), bad);
    expect(p, "epoch_step: batch 4", bp_network_epoch_step(net, 4, NULL), ALLOW(BP_OK));
    expect(p, "epoch_step: past the epoch's end", bp_network_epoch_step(net, 1, NULL), bad);
    bp_buffer_free(x);
    bp_buffer_free(y);
    bp_network_free(net);
}

/* Data sets: counts and labels at their edges. */
static void probe_datasets(probe *p)
{
    const unsigned bad = ALLOW(BP_ERR_INVALID_ARGUMENT);
    float x[4] = {0, 1, 2, 3};
    bp_dataset *ds = NULL;
    const int32_t wild[][2] = {{0, INT32_MAX}, {0, -1}, {INT32_MIN, 0}, {0, 1000001}};
    for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "dataset_create: labels %d, %d", wild[i][0], wild[i][1]);
        expect(p, what, bp_dataset_create(2, 2, 0, BP_F32, x, wild[i], NULL, &ds), bad);
        bp_dataset_free(ds);
        ds = NULL;
    }
    int32_t fine[2] = {0, 1000000};
    expect(p, "dataset_create: label 1000000",
           bp_dataset_create(2, 2, 0, BP_F32, x, fine, NULL, &ds), ALLOW(BP_OK));
    bp_dataset_free(ds);
    ds = NULL;
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.label_column = INT_MAX;
    expect(p, "dataset_load: label_column INT_MAX", bp_dataset_load("/dev/null", &opt, &ds),
           bad | ALLOW(BP_ERR_FORMAT) | ALLOW(BP_ERR_IO));
    opt.label_column = -1, opt.n_targets = INT_MAX;
    expect(p, "dataset_load: n_targets INT_MAX", bp_dataset_load("/dev/null", &opt, &ds),
           bad | ALLOW(BP_ERR_FORMAT) | ALLOW(BP_ERR_IO));
    opt.n_targets = 0, opt.n_features = -5;
    expect(p, "dataset_load: n_features -5", bp_dataset_load("/dev/null", &opt, &ds), bad);
}

/* Names, parsers and small utilities with values outside their enums. */
static void probe_names(probe *p)
{
    const unsigned bad = ALLOW(BP_ERR_INVALID_ARGUMENT);
    expect(p, "activation_name 99",
           bp_activation_name((bp_activation)99) == NULL ||
                   strlen(bp_activation_name((bp_activation)99)) < 64
               ? BP_OK
               : BP_ERR_FORMAT,
           ALLOW(BP_OK));
    expect(p, "dtype_size -1", bp_dtype_size((bp_dtype)-1) == 0 ? BP_OK : BP_ERR_FORMAT,
           ALLOW(BP_OK));
    expect(p, "status_string 1000",
           bp_status_string((bp_status)1000) != NULL ? BP_OK : BP_ERR_FORMAT, ALLOW(BP_OK));
    char longname[5000];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    bp_loss loss;
    expect(p, "loss_parse of 4999 characters", bp_loss_parse(longname, &loss), bad);
    expect(p, "loss_parse of \"\"", bp_loss_parse("", &loss), bad);
    bp_math_mode mm;
    expect(p, "math_mode_parse \"fp32\\x1b[2J\"", bp_math_mode_parse("fp32\x1b[2J", &mm), bad);
    int built = 0;
    expect(p, "comm_engine_info 7", bp_comm_engine_info((bp_comm_engine)7, &built, NULL, 0), bad);
    bp_device_info info;
    expect(p, "cuda_device_info -1", bp_cuda_device_info(-1, &info),
           bad | ALLOW(BP_ERR_NO_DEVICE) | ALLOW(BP_ERR_NOT_BUILT));
    expect(p, "cuda_device_info INT_MAX", bp_cuda_device_info(INT_MAX, &info),
           bad | ALLOW(BP_ERR_NO_DEVICE) | ALLOW(BP_ERR_NOT_BUILT));
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    bp_comm *comm = NULL;
    bp_nccl_id id;
    memset(&id, 0, sizeof id);
    cc.backend = BP_BACKEND_CUDA;
    const int ranks[][2] = {{-1, 2}, {2, 2}, {0, 0}, {INT_MAX, INT_MIN}};
    for (size_t i = 0; i < sizeof ranks / sizeof ranks[0]; i++) {
        char what[80];
        snprintf(what, sizeof what, "comm_create_nccl rank %d of %d", ranks[i][0], ranks[i][1]);
        expect(p, what, bp_comm_create_nccl(&id, ranks[i][0], ranks[i][1], &cc, &comm),
               bad | ALLOW(BP_ERR_NOT_BUILT));
    }
    const double timeouts[] = {NAN, INFINITY, -1, 0};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        char what[80];
        cc.timeout_s = timeouts[i];
        snprintf(what, sizeof what, "comm_create_nccl timeout %g", timeouts[i]);
        expect(p, what, bp_comm_create_nccl(&id, 0, 1, &cc, &comm), bad | ALLOW(BP_ERR_NOT_BUILT));
    }
}

/* Checkpoints: counters at their edges, in both directions. */
static void probe_checkpoints(probe *p, const char *dir)
{
    const unsigned bad = ALLOW(BP_ERR_INVALID_ARGUMENT);
    bp_network *net = small_net(BP_F32, BP_LOSS_MSE, 2);
    if (net == NULL)
        return;
    char path[4200];
    snprintf(path, sizeof path, "%s/c.ckpt", dir);
    bp_checkpoint_info info;
    bp_checkpoint_info_init(&info);
    info.epoch = INT64_MAX;
    expect(p, "checkpoint_save: epoch INT64_MAX", bp_checkpoint_save(net, &info, path), bad);
    bp_checkpoint_info_init(&info);
    info.batch = (int64_t)INT32_MAX + 1;
    expect(p, "checkpoint_save: batch 2^31", bp_checkpoint_save(net, &info, path), bad);
    bp_checkpoint_info_init(&info);
    info.schedule_step = INT64_MAX;
    expect(p, "checkpoint_save: schedule_step INT64_MAX", bp_checkpoint_save(net, &info, path), bad);
    bp_checkpoint_info_init(&info);
    info.struct_size = 1;
    expect(p, "checkpoint_save: struct_size 1", bp_checkpoint_save(net, &info, path), bad);
    bp_checkpoint_info_init(&info);
    info.epoch = 3, info.batch = 2;
    expect(p, "checkpoint_save: a fine one", bp_checkpoint_save(net, &info, path), ALLOW(BP_OK));
    bp_checkpoint_info back;
    bp_checkpoint_info_init(&back);
    expect(p, "checkpoint_load", bp_checkpoint_load(net, path, &back), ALLOW(BP_OK));
    bp_network_free(net);
}

int main(void)
{
    char dir[] = "/tmp/bp_api_hostile_XXXXXX";
    if (mkdtemp(dir) == NULL)
        return perror("mkdtemp"), 1;
    probe p = {0, 0};
    probe_networks(&p);
    probe_calls(&p);
    probe_optimizer(&p);
    probe_buffers(&p);
    probe_datasets(&p);
    probe_names(&p);
    probe_checkpoints(&p, dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/c.ckpt", dir);
    unlink(path);
    rmdir(dir);
    printf("api_hostile: %d of %d calls held\n", p.held, p.tried);
    return p.held == p.tried ? 0 : 1;
}
