/*
 * train.c — `backprop train`: load or generate data, build the network,
 * train with shuffled mini-batches gathered on the device, report per
 * epoch, and save, log and plot.
 */

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "outputs.h"
#include "plot.h"
#include "progress.h"
#include "signals.h"
#include "synthetic.h"

/* Where Debian's dataset-fashion-mnist puts the files; the environment
 * variable names another directory (tests use it to reach the fallback). */
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define FASHION_ENV "BACKPROP_FASHION_MNIST_DIR"

typedef struct train_flags {
    const char *data, *test, *init, *save, *log, *plot, *device, *schedule;
    arch_flags arch;
    long epochs, batch, seed, label_column, targets;
    double lr, momentum, weight_decay;
    int no_shuffle, quiet;
} train_flags;

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* The learning rate of an epoch (0-based) under the schedule. */
static double epoch_lr(const train_flags *f, int epoch)
{
    if (strcmp(f->schedule, "cosine") == 0)
        return f->lr * (0.5 * (1.0 + cos(M_PI * epoch / (double)f->epochs))); /* HOOK(h11hard): factor first, so a subnormal --lr does not round to 0 */
    return f->lr;
}

typedef struct run {
    bp_network *net;
    bp_buffer *x, *y;
    data train, test;
    int have_test;
    history hist;
    bp_file_replace *log; /* HOOK(h11hard): written beside --log, put in place at the end */
} run;

static void run_free(run *r)
{
    bp_buffer_free(r->x);
    bp_buffer_free(r->y);
    bp_network_free(r->net);
    cli_data_free(&r->train);
    cli_data_free(&r->test);
    free(r->hist.train_loss);
    free(r->hist.test_loss);
    free(r->hist.test_accuracy);
    bp_file_replace_abort(r->log); /* HOOK(h11hard): a failed run leaves the old log */
}

static int load_inputs(const train_flags *f, bp_dtype dtype, run *r, char *what, size_t what_size)
{
    data_flags df = {f->label_column, f->targets, 0};
    if (f->data) {
        if (cli_load_data(f->data, dtype, &df, &r->train) != 0)
            return -1;
        snprintf(what, what_size, "%s (%d samples, %d features)", f->data, r->train.d.n_samples,
                 r->train.d.n_features);
        if (f->test) {
            if (cli_load_data(f->test, dtype, &df, &r->test) != 0)
                return -1;
            r->have_test = 1;
        }
        return 0;
    }
    if (f->test)
        return cli_error("--test needs --data");
    const char *dir = getenv(FASHION_ENV);
    if (dir == NULL || dir[0] == '\0')
        dir = FASHION_DIR;
    char train_path[4200], test_path[4200];
    snprintf(train_path, sizeof train_path, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(test_path, sizeof test_path, "%s/t10k-images-idx3-ubyte.gz", dir);
    if (file_exists(train_path)) {
        if (cli_load_data(train_path, dtype, &df, &r->train) != 0 ||
            cli_load_data(test_path, dtype, &df, &r->test) != 0)
            return -1;
        r->have_test = 1;
        snprintf(what, what_size, "Fashion-MNIST from %s/ (%d train, %d test)", dir,
                 r->train.d.n_samples, r->test.d.n_samples);
        return 0;
    }
    if (cli_make_spirals(3000, (uint64_t)f->seed, dtype, &r->train) != 0 ||
        cli_make_spirals(1500, (uint64_t)f->seed + 1000003, dtype, &r->test) != 0)
        return -1;
    r->have_test = 1;
    snprintf(what, what_size,
             "no --data given and Fashion-MNIST is not in %s/ (apt-get install "
             "dataset-fashion-mnist): a generated set of three spirals (3000 train, 1500 test)",
             dir);
    return 0;
}

static int check_flags(const train_flags *f)
{
    if (f->epochs < 1 || f->epochs > 1000000)
        return cli_error("--epochs: %ld is out of range (1..1000000)", f->epochs);
    if (f->batch < 1 || f->batch > (1 << 24))
        return cli_error("--batch: %ld is out of range (1..%d)", f->batch, 1 << 24);
    if (!(f->lr > 0))
        return cli_error("--lr: %g must be > 0", f->lr);
    if (!(f->momentum >= 0 && f->momentum < 1))
        return cli_error("--momentum: %g must be in [0, 1)", f->momentum);
    if (!(f->weight_decay >= 0))
        return cli_error("--weight-decay: %g must be >= 0", f->weight_decay);
    if (f->seed < 0)
        return cli_error("--seed: %ld must be >= 0", f->seed);
    if (f->targets < 0)
        return cli_error("--targets: %ld must be >= 0", f->targets);
    if (f->label_column < -1)
        return cli_error("--label-column: %ld must be >= 0 (or -1 for the last)", f->label_column);
    if (strcmp(f->schedule, "cosine") != 0 && strcmp(f->schedule, "constant") != 0)
        return cli_error("--schedule: '%s' is not cosine or constant", f->schedule);
    return 0;
}

/* --init without --layers: the network is the one the model file describes
 * (its sizes, and its activations, loss and dtype unless flags say
 * otherwise). The strings are written to the caller's buffers. */
static int adopt_model_arch(train_flags *f, char *layers, size_t layers_size, char *acts,
                            size_t acts_size)
{
    if (f->init == NULL || f->arch.layers != NULL)
        return 0;
    bp_network_config base;
    bp_network_config_init(&base);
    base.max_batch = 1;
    bp_network *m = NULL;
    bp_status st = bp_model_load(f->init, &base, &m);
    if (st != BP_OK)
        return cli_error("--init: %s (%s); without --layers the network is read from the model "
                         "file",
                         bp_last_error(), bp_status_string(st));
    bp_network_desc d;
    bp_network_describe(m, &d);
    size_t o = 0, p = 0;
    for (int i = 0; i <= d.n_layers && o < layers_size; i++)
        o += (size_t)snprintf(layers + o, layers_size - o, "%s%d", i ? "," : "", d.sizes[i]);
    for (int l = 0; l < d.n_layers && p < acts_size; l++)
        p += (size_t)snprintf(acts + p, acts_size - p, "%s%s", l ? "," : "",
                              bp_activation_name(d.activations[l]));
    f->arch.layers = layers;
    if (f->arch.activation == NULL && f->arch.activations == NULL)
        f->arch.activations = acts;
    if (f->arch.loss == NULL)
        f->arch.loss = bp_loss_name(d.loss);
    if (f->arch.dtype == NULL)
        f->arch.dtype = bp_dtype_name(d.dtype);
    bp_network_free(m);
    return 0;
}

static int save_model(const bp_network *net, const char *path)
{
    bp_status st = bp_model_save(net, path);
    if (st != BP_OK)
        return cli_lib_error("--save", st);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_flags f = {0};
    f.device = "auto";
    f.schedule = "cosine";
    f.epochs = 15, f.batch = 32, f.seed = 1, f.label_column = -1;
    f.lr = 0.02, f.momentum = 0.9;
    const flag flags[] = {
        {"--data", FLAG_STRING, &f.data, "PATH", "IDX images file (labels beside it) or CSV"},
        {"--test", FLAG_STRING, &f.test, "PATH", "test set, same format"},
        {"--layers", FLAG_STRING, &f.arch.layers, "N,N,..", "layer sizes, inputs first (default: data,256,128,classes)"},
        {"--activation", FLAG_STRING, &f.arch.activation, "NAME", "hidden activation: relu (default), leaky_relu, tanh, sigmoid, identity"},
        {"--activations", FLAG_STRING, &f.arch.activations, "A,B,..", "one activation per layer"},
        {"--loss", FLAG_STRING, &f.arch.loss, "ce|mse|bce", "loss (default ce)"},
        {"--epochs", FLAG_INT, &f.epochs, "N", "epochs (default 15)"},
        {"--batch", FLAG_INT, &f.batch, "N", "mini-batch size (default 32)"},
        {"--lr", FLAG_DOUBLE, &f.lr, "X", "learning rate (default 0.02)"},
        {"--schedule", FLAG_STRING, &f.schedule, "cosine|constant", "learning-rate schedule over the epochs (default cosine)"},
        {"--momentum", FLAG_DOUBLE, &f.momentum, "X", "SGD momentum (default 0.9)"},
        {"--weight-decay", FLAG_DOUBLE, &f.weight_decay, "X", "L2 weight decay (default 0)"},
        {"--seed", FLAG_INT, &f.seed, "N", "initialisation and shuffling seed (default 1)"},
        {"--dtype", FLAG_STRING, &f.arch.dtype, "f32|f64", "precision (default f32)"},
        {"--device", FLAG_STRING, &f.device, "auto|cpu|cuda[:N]", "where to train (default auto)"},
        {"--no-shuffle", FLAG_SWITCH, &f.no_shuffle, NULL, "samples in file order"},
        {"--init", FLAG_STRING, &f.init, "MODEL", "start from a saved model's parameters"},
        {"--save", FLAG_STRING, &f.save, "MODEL", "save the trained model (safetensors)"},
        {"--log", FLAG_STRING, &f.log, "CSV", "one row per epoch: epoch,train_loss,test_loss,test_accuracy,seconds,samples_per_s"},
        {"--plot", FLAG_STRING, &f.plot, "SVG", "loss and accuracy curves"},
        {"--label-column", FLAG_INT, &f.label_column, "N", "CSV label column, 0-based (default last)"},
        {"--targets", FLAG_INT, &f.targets, "K", "CSV regression: the last K columns are targets"},
        {"--quiet", FLAG_SWITCH, &f.quiet, NULL, "print only the final result"},
    };
    static const command cmd = {
        "train", "Trains a network by backpropagation and reports test accuracy.",
        "With no --data, trains on Fashion-MNIST when the Debian package dataset-fashion-mnist\n"
        "is installed (or from the directory in $" FASHION_ENV "), else on a generated\n"
        "data set. Without --layers the sizes come from the data (inputs, 256, 128, outputs),\n"
        "or from the --init model. Ctrl-C, SIGTERM or SIGHUP stop after the current step (and\n"
        "save with --save; exit status 128 + the signal); a second one ends the program once\n"
        "the files are in place. A run whose loss, parameters or final outputs become NaN or\n"
        "infinite stops with an error and saves nothing. Outputs are replaced whole or not at\n"
        "all, and never name an input or each other."}; /* HOOK(h11hard): text */
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    if (check_flags(&f) != 0)
        return 2;
    /* HOOK(h11hard): outputs replaceable and never an input or each other. */
    const cli_path ins[] = {{"--data", f.data}, {"--test", f.test}, {"--init", f.init}};
    const cli_path outs[] = {{"--save", f.save}, {"--log", f.log}, {"--plot", f.plot}};
    if (cli_check_paths(ins, 3, outs, 3) != 0)
        return 1;
    char init_layers[BP_MAX_LAYERS * 8 + 8], init_acts[BP_MAX_LAYERS * 16];
    if (adopt_model_arch(&f, init_layers, sizeof init_layers, init_acts, sizeof init_acts) != 0)
        return 1;

    device_choice dev;
    if (cli_choose_device(f.device, &dev) != 0)
        return 2;
    bp_dtype dtype = BP_F32;
    if (f.arch.dtype && bp_dtype_parse(f.arch.dtype, &dtype) != BP_OK)
        return cli_error("--dtype: %s", bp_last_error()), 2;
    if (dtype == BP_F32 && (float)f.lr == 0.0f) /* HOOK(h11hard): say why, not "lr 0" */
        return cli_error("--lr: %g is below the smallest f32 number (1.4e-45) and would be 0; "
                         "use --dtype f64 or a larger --lr",
                         f.lr),
               2;

    run r;
    memset(&r, 0, sizeof r);
    sigset_t held; /* HOOK(h11hard): stopping signals held from the end of training */
    int holding = 0;
    int rc = 1;
    char what[512];
    if (load_inputs(&f, dtype, &r, what, sizeof what) != 0)
        goto out;
    if (!f.quiet)
        printf("data: %s\n", what);

    /* The network: widths from the data unless --layers says otherwise. */
    int classify = r.train.d.n_targets == 0;
    int n_out = classify ? r.train.d.n_classes : r.train.d.n_targets;
    if (r.have_test && classify && r.test.d.n_classes > n_out)
        n_out = r.test.d.n_classes;
    const int hidden[] = {256, 128};
    arch a;
    if (cli_build_arch(&f.arch, r.train.d.n_features, f.arch.layers ? -1 : n_out, hidden, 2,
                       classify ? "ce" : "mse", "f32", &a) != 0)
        goto out;
    n_out = a.sizes[a.n_layers];
    if (cli_prepare_targets(&r.train, a.loss, n_out, f.data ? f.data : "training data") != 0)
        goto out;
    if (r.have_test) {
        if (r.test.d.n_features != r.train.d.n_features) {
            cli_error("--test: %d features, the training data has %d", r.test.d.n_features,
                      r.train.d.n_features);
            goto out;
        }
        if (cli_prepare_targets(&r.test, a.loss, n_out, f.test ? f.test : "test data") != 0)
            goto out;
    }
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cli_arch_config(&a, &cfg);
    cfg.backend = dev.backend;
    cfg.device = dev.ordinal;
    cfg.seed = (uint64_t)f.seed;
    cfg.max_batch = f.batch > 1024 ? (int)f.batch : 1024;
    /* HOOK(h11hard): never a batch larger than the data; memory checked first. */
    if (cfg.max_batch > r.train.d.n_samples)
        cfg.max_batch = r.train.d.n_samples;
    if (cli_check_memory(&cfg, (size_t)r.train.d.n_samples *
                                   ((size_t)r.train.d.n_features * bp_dtype_size(dtype) +
                                    r.train.target_row)) != 0)
        goto out;
    bp_status st = bp_network_create(&cfg, &r.net);
    if (st != BP_OK) {
        cli_lib_error("creating the network", st);
        goto out;
    }
    if (f.init && (st = bp_model_load_params(r.net, f.init)) != BP_OK) {
        cli_lib_error("--init", st);
        goto out;
    }
    bp_network_desc nd;
    bp_network_describe(r.net, &nd);
    char desc[512];
    cli_arch_describe(&nd, desc, sizeof desc);
    if (!f.quiet)
        printf("network: %s, %zu parameters; backend: %s\n", desc, nd.n_params, dev.description);

    /* The training set goes to the device once; batches are gathered there. */
    size_t n = (size_t)r.train.d.n_samples, es = bp_dtype_size(dtype);
    size_t xb = n * (size_t)r.train.d.n_features * es, yb = n * r.train.target_row;
    if ((st = bp_buffer_create(r.net, xb, &r.x)) != BP_OK ||
        (st = bp_buffer_upload(r.x, 0, r.train.d.x, xb)) != BP_OK ||
        (st = bp_buffer_create(r.net, yb, &r.y)) != BP_OK ||
        (st = bp_buffer_upload(r.y, 0, r.train.targets, yb)) != BP_OK) {
        cli_lib_error("uploading the training set", st);
        goto out;
    }
    r.hist.train_loss = calloc((size_t)f.epochs, sizeof(double));
    r.hist.test_loss = calloc((size_t)f.epochs, sizeof(double));
    r.hist.test_accuracy = calloc((size_t)f.epochs, sizeof(double));
    int32_t *order = malloc(n * sizeof(int32_t));
    if (!r.hist.train_loss || !r.hist.test_loss || !r.hist.test_accuracy || !order) {
        free(order);
        cli_error("no memory for the training loop");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    if (f.log) {
        if (bp_file_replace_begin(f.log, &r.log) != BP_OK) { /* HOOK(h11hard) */
            free(order);
            cli_error("--log: %s", bp_last_error());
            goto out;
        }
        bp_file_replace_printf(r.log, "epoch,train_loss,test_loss,test_accuracy,seconds,samples_per_s\n");
    }

    cli_signals_catch(); /* HOOK(h11hard): SIGINT, SIGTERM, SIGHUP; SIGPIPE ignored */
    progress bar;
    int tty = isatty(fileno(stderr)) && !f.quiet;
    /* Reading the loss waits for the device: every step on the CPU, every
     * 16th on a GPU. */
    long read_every = dev.backend == BP_BACKEND_CPU ? 1 : 16;
    uint64_t rng = (uint64_t)f.seed ^ 0x5DEECE66Dull;
    double t0 = cli_now();
    long samples_done = 0;
    int epoch = 0, stopped = 0;
    long steps_per_epoch = (long)((n + (size_t)f.batch - 1) / (size_t)f.batch);
    eval_result ev = {0};
    for (epoch = 0; epoch < f.epochs && !stopped; epoch++) {
        if (!f.no_shuffle)
            for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t)(cli_next_random(&rng) % (i + 1));
                int32_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        bp_sgd opt;
        bp_sgd_init(&opt);
        opt.lr = epoch_lr(&f, epoch);
        opt.momentum = f.momentum;
        opt.weight_decay = f.weight_decay;
        double loss_sum = 0, loss = NAN;
        long loss_count = 0;
        double e0 = cli_now();
        progress_start(&bar, tty);
        for (long s = 0; s < steps_per_epoch; s++) {
            size_t start = (size_t)s * (size_t)f.batch;
            int b = (int)(n - start < (size_t)f.batch ? n - start : (size_t)f.batch);
            int want = (s % read_every == 0) || s == steps_per_epoch - 1;
            st = bp_network_train_step_buffer(r.net, r.x, r.y, order + start, b, &opt,
                                              want ? &loss : NULL);
            if (st == BP_ERR_NUMERIC || (st == BP_OK && want && !isfinite(loss))) {
                progress_clear(&bar);
                cli_error("training diverged at epoch %d, step %ld: the loss is %g; nothing was "
                          "saved (try a smaller --lr)",
                          epoch + 1, s + 1, loss);
                free(order);
                goto out;
            }
            if (st != BP_OK) {
                progress_clear(&bar);
                cli_lib_error("training step", st);
                free(order);
                goto out;
            }
            samples_done += b;
            if (want) {
                loss_sum += loss;
                loss_count++;
            }
            progress_update(&bar, epoch + 1, (int)f.epochs, s + 1, steps_per_epoch,
                            loss_count ? loss_sum / loss_count : NAN, (long)(start + (size_t)b));
            if (cli_signals_caught()) { /* HOOK(h11hard) */
                stopped = 1;
                progress_clear(&bar);
                fprintf(stderr, "backprop: interrupted at epoch %d, step %ld\n", epoch + 1, s + 1);
                break;
            }
        }
        progress_clear(&bar);
        double seconds = cli_now() - e0;
        double train_loss = loss_count ? loss_sum / loss_count : NAN;
        r.hist.train_loss[epoch] = train_loss;
        r.hist.test_loss[epoch] = NAN;
        r.hist.test_accuracy[epoch] = NAN;
        if (r.have_test && !stopped) {
            if (cli_evaluate(r.net, &r.test, &ev, NULL) != 0) {
                free(order);
                goto out;
            }
            r.hist.test_loss[epoch] = ev.loss;
            r.hist.test_accuracy[epoch] = ev.accuracy;
        }
        r.hist.n = epoch + 1;
        double rate = (double)n / (seconds > 0 ? seconds : 1e-9);
        if (!f.quiet && !stopped) {
            printf("epoch %d/%ld  train loss %.4f", epoch + 1, f.epochs, train_loss);
            if (r.have_test) {
                printf("  test loss %.4f", ev.loss);
                if (classify)
                    printf("  test accuracy %.2f%%", 100 * ev.accuracy);
            }
            printf("  %.1fs  %.0f samples/s\n", seconds, rate);
            fflush(stdout);
        }
        if (r.log && !stopped)
            bp_file_replace_printf(r.log, "%d,%.6g,%.6g,%.6g,%.3f,%.1f\n", epoch + 1, train_loss,
                    r.have_test ? ev.loss : NAN, r.have_test && classify ? ev.accuracy : NAN,
                    seconds, rate);
        if (r.log && bp_file_replace_flush(r.log) != BP_OK) { /* HOOK(h11hard) */
            free(order);
            cli_error("--log: %s", bp_last_error());
            goto out;
        }
    }
    free(order);
    double total = cli_now() - t0;
    /* HOOK(h11hard): from here to the end a stopping signal waits, so a
     * second Ctrl-C cannot cut a save short or leave a temporary file. */
    cli_signals_hold(&held);
    holding = 1;
    /* HOOK(h11hard): the last step too must leave finite parameters and
     * outputs, and the final figures must exist, or nothing is saved. */
    if (cli_check_finite(r.net, "the trained network",
                         "; training diverged, nothing was saved (try a smaller --lr)") != 0)
        goto out;
    if ((!r.have_test || stopped) &&
        cli_evaluate(r.net, r.have_test ? &r.test : &r.train, &ev, NULL) != 0)
        goto out;
    if (ev.n <= 0 || !isfinite(ev.loss)) {
        cli_error("the final evaluation gave loss %g over %ld samples; training diverged, nothing "
                  "was saved (try a smaller --lr)",
                  ev.loss, ev.n);
        goto out;
    }
    const char *which = r.have_test ? "test" : "training";
    if (classify)
        printf("%s accuracy %.2f%% (%ld/%ld), %s loss %.4f, %d epoch%s in %.1fs on %s\n", which,
               100 * ev.accuracy, ev.correct, ev.n, which, ev.loss, epoch, epoch == 1 ? "" : "s",
               total, dev.description);
    else
        printf("%s loss %.6g, %d epoch%s in %.1fs on %s\n", which, ev.loss, epoch,
               epoch == 1 ? "" : "s", total, dev.description);
    /* HOOK(h11hard): the plot is written before the model is saved and put
     * in place after it, so a failure leaves every output as it was. */
    bp_file_replace *plot = NULL;
    if (f.plot && r.hist.n > 0 && plot_prepare_svg(f.plot, &r.hist, desc, &plot) != 0)
        goto out;
    rc = 0;
    if (f.save) {
        if (save_model(r.net, f.save) != 0)
            rc = 1;
        else if (!f.quiet)
            printf("saved %s\n", f.save);
    }
    if (r.log && rc == 0) {
        bp_file_replace *log = r.log;
        r.log = NULL;
        if (bp_file_replace_commit(log) != BP_OK) {
            cli_error("--log: %s", bp_last_error());
            rc = 1;
        }
    }
    if (plot != NULL && rc != 0)
        bp_file_replace_abort(plot);
    else if (plot != NULL && bp_file_replace_commit(plot) != BP_OK) {
        cli_error("--plot: %s", bp_last_error());
        rc = 1;
    }
    if (cli_signals_caught() && rc == 0) /* HOOK(h11hard): 130, 143, 129 */
        rc = 128 + cli_signals_caught();
out:
    run_free(&r);
    if (holding) { /* HOOK(h11hard): a held signal acts now */
        cli_signals_release(&held);
        if (rc == 0 && cli_signals_caught())
            rc = 128 + cli_signals_caught();
    }
    return rc;
}
