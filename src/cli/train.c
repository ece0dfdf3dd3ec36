/*
 * train.c — `backprop train`, in the order it runs:
 *
 *   parse    the flags (train_options.c), the device and the dtype
 *   load     the training and test data (files, Fashion-MNIST or generated)
 *   build    the network, its targets, and the training set on the device
 *   run      one epoch: shuffle, then SGD steps on batches gathered there
 *   report   the epoch: evaluate the test set, print, log
 *   finish   the final checks and summary, then save, log and plot (each
 *            replaced whole, and only when the run succeeded)
 *
 * Every loss and accuracy printed is the library's (bp_network_evaluate_dataset).
 */

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "bp_math.h"
#include "commands.h"
#include "common.h"
#include "dist.h"
#include "gpu_flags.h"
#include "outputs.h"
#include "plot.h"
#include "progress.h"
#include "signals.h"
#include "synthetic.h"
#include "train_options.h"

/* Everything a training run holds, from parsing to finishing. */
typedef struct training_run {
    train_options options;
    device_choice device;
    bp_dtype dtype;
    cli_dist dist; /* data-parallel under mpirun or over a --device list (dist.c) */

    /* load */
    loaded_data train_set, test_set;
    int have_test_set;
    char data_summary[512]; /* what the "data:" line says */

    /* build */
    bp_network *net;
    int classify;                       /* class labels: accuracy is reported */
    char network_summary[512];          /* "3-16-2 relu,identity ce f32" */
    bp_buffer *train_x, *train_targets; /* the training set on the device */

    /* run */
    int32_t *order;         /* the samples of the current epoch, in order */
    uint64_t shuffle_state; /* SplitMix64 stream of the shuffles */
    long steps_per_epoch;
    long read_loss_every; /* steps between reads of the loss (a device wait) */
    int show_progress;    /* a progress bar on stderr */
    progress bar;         /* the current epoch's */
    double started;       /* cli_now() when the first epoch began */
    int epochs_begun;
    int resumed_shuffled; /* --resume inside an epoch: its order is shuffled already */
    long long steps_done; /* training steps since the network was created */
    int stopped;          /* by Ctrl-C, SIGTERM or SIGHUP (signals.c) */
    sigset_t held;        /* the stopping signals, held while finishing */
    int holding;

    /* report */
    bp_evaluation evaluation; /* the last evaluation printed */
    history curves;           /* per epoch, for --plot */
    bp_file_replace *log;     /* --log, put in place when the run succeeds */
} training_run;

static void training_run_free(training_run *run)
{
    bp_buffer_free(run->train_x);
    bp_buffer_free(run->train_targets);
    bp_network_free(run->net);
    cli_data_free(&run->train_set);
    cli_data_free(&run->test_set);
    free(run->order);
    free(run->curves.train_loss);
    free(run->curves.test_loss);
    free(run->curves.test_accuracy);
    bp_file_replace_abort(run->log); /* a failed run leaves the old log */
    optim_flags_free(&run->options.optim);
}

/* ---- parse ---------------------------------------------------------------- */

/* The device and the dtype the data is loaded in. Returns an exit status. */
static int choose_device_and_dtype(training_run *run)
{
    train_options *o = &run->options;
    char first_device[32]; /* rank 0's device of a --device list */
    if (cli_choose_device(cli_dist_device_spec(o->device, first_device, sizeof first_device),
                          &run->device) != 0)
        return 2;
    bp_precision precision;
    if (cli_precision_dtype(o->architecture.precision, o->architecture.dtype, "f32", &run->dtype,
                            &precision) != 0)
        return 2;
    if (run->dtype == BP_F32 && o->lr > 0 && (float)o->lr == 0.0f) /* say why, not "lr 0" */
        return cli_error("--lr: %g is below the smallest f32 number (1.4e-45) and would be 0; "
                         "use --dtype f64 or a larger --lr",
                         o->lr),
               2;
    /* Under mpirun (or with several GPUs) rank 0 alone prints and writes. */
    if (cli_dist_begin(&run->dist, o->device, &o->quiet, &o->save_path, &o->log_path,
                       &o->plot_path) != 0)
        return 1;
    return 0;
}

/* ---- load ----------------------------------------------------------------- */

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* No --data: Fashion-MNIST where the Debian package (or $FASHION_ENV) puts
 * it, else three generated spirals. */
static int load_default_data(training_run *run)
{
    const train_options *o = &run->options;
    const char *dir = getenv(FASHION_ENV);
    if (dir == NULL || dir[0] == '\0')
        dir = FASHION_DIR;
    char train_path[4200], test_path[4200];
    snprintf(train_path, sizeof train_path, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(test_path, sizeof test_path, "%s/t10k-images-idx3-ubyte.gz", dir);
    run->have_test_set = 1;
    if (file_exists(train_path)) {
        if (cli_load_data(train_path, run->dtype, &o->columns, &run->train_set) != 0 ||
            cli_load_data(test_path, run->dtype, &o->columns, &run->test_set) != 0)
            return -1;
        snprintf(run->data_summary, sizeof run->data_summary,
                 "Fashion-MNIST from %s/ (%d train, %d test)", dir, run->train_set.desc.n_samples,
                 run->test_set.desc.n_samples);
        return 0;
    }
    if (cli_make_spirals(3000, (uint64_t)o->seed, run->dtype, &run->train_set) != 0 ||
        cli_make_spirals(1500, (uint64_t)o->seed + 1000003, run->dtype, &run->test_set) != 0)
        return -1;
    snprintf(run->data_summary, sizeof run->data_summary,
             "no --data given and Fashion-MNIST is not in %s/ (apt-get install "
             "dataset-fashion-mnist): a generated set of three spirals (3000 train, 1500 test)",
             dir);
    return 0;
}

static int load_data(training_run *run)
{
    const train_options *o = &run->options;
    if (o->data_path == NULL) {
        if (o->test_path)
            return cli_error("--test needs --data");
        return load_default_data(run);
    }
    if (cli_load_data(o->data_path, run->dtype, &o->columns, &run->train_set) != 0)
        return -1;
    snprintf(run->data_summary, sizeof run->data_summary, "%s (%d samples, %d features)",
             o->data_path, run->train_set.desc.n_samples, run->train_set.desc.n_features);
    if (o->test_path) {
        if (cli_load_data(o->test_path, run->dtype, &o->columns, &run->test_set) != 0)
            return -1;
        run->have_test_set = 1;
    }
    return 0;
}

/* ---- build ---------------------------------------------------------------- */

/* The architecture (widths from the data unless --layers says otherwise)
 * and the targets of both sets for its loss. */
static int build_architecture(training_run *run, architecture *a)
{
    const train_options *o = &run->options;
    const bp_dataset_desc *train = &run->train_set.desc, *test = &run->test_set.desc;
    run->classify = train->n_targets == 0;
    int n_out = run->classify ? train->n_classes : train->n_targets;
    if (run->have_test_set && run->classify && test->n_classes > n_out)
        n_out = test->n_classes;
    const int hidden[] = {256, 128};
    if (cli_build_architecture(&o->architecture, train->n_features,
                               o->architecture.layers ? -1 : n_out, hidden, 2,
                               run->classify ? "ce" : "mse", "f32", a) != 0)
        return -1;
    n_out = a->sizes[a->n_layers];
    if (cli_prepare_targets(&run->train_set, a->loss, n_out,
                            o->data_path ? o->data_path : "training data") != 0)
        return -1;
    if (!run->have_test_set)
        return 0;
    if (test->n_features != train->n_features)
        return cli_error("--test: %d features, the training data has %d", test->n_features,
                         train->n_features);
    return cli_prepare_targets(&run->test_set, a->loss, n_out,
                               o->test_path ? o->test_path : "test data");
}

static int create_network(training_run *run, const architecture *a)
{
    const train_options *o = &run->options;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cli_architecture_config(a, &cfg);
    cfg.backend = run->device.backend;
    cfg.device = run->device.ordinal;
    cfg.seed = (uint64_t)o->seed;
    cfg.max_batch = o->batch > 1024 ? (int)o->batch : 1024;
    /* Never a batch larger than the data; the memory checked before any
     * allocation. */
    const bp_dataset_desc *train = &run->train_set.desc;
    if (cfg.max_batch > train->n_samples)
        cfg.max_batch = train->n_samples;
    if (cli_check_memory(&cfg, (size_t)train->n_samples *
                                   ((size_t)train->n_features * bp_dtype_size(run->dtype) +
                                    run->train_set.target_row_bytes)) != 0)
        return -1;
    if (cli_parse_math_mode("--math", o->math, &cfg.math_mode) != 0)
        return -1;
    cfg.cuda_graphs = !o->no_graphs;
    cfg.fused_epilogues = !o->no_fused;
    cli_dist_configure(&run->dist, &cfg);
    bp_status st = bp_network_create(&cfg, &run->net);
    if (st != BP_OK)
        return cli_lib_error("creating the network", st);
    if (o->init_path && (st = bp_model_load_params(run->net, o->init_path)) != BP_OK)
        return cli_lib_error("--init", st);
    /* The optimizer; with --resume, the checkpoint's state (train_optim.c). */
    if (optim_setup(&run->options.optim, run->net) != 0)
        return -1;
    if (cli_dist_join(&run->dist, run->net, &cfg, o->batch, run->device.description) != 0)
        return -1;
    bp_network_desc nd;
    bp_network_describe(run->net, &nd);
    cli_network_summary(&nd, run->network_summary, sizeof run->network_summary);
    if (!o->quiet)
        printf("network: %s, %zu parameters; backend: %s\n", run->network_summary, nd.n_params,
               run->device.description);
    if (!o->quiet && run->device.why_not_gpu[0] != '\0')
        printf("no GPU: %s\n", run->device.why_not_gpu);
    return 0;
}

/* The training set goes to the device once; batches are gathered there. */
static int upload_training_set(training_run *run)
{
    const loaded_data *train = &run->train_set;
    size_t n = (size_t)train->desc.n_samples;
    size_t x_bytes = n * (size_t)train->desc.n_features * bp_dtype_size(run->dtype);
    size_t y_bytes = n * train->target_row_bytes;
    bp_status st;
    if ((st = bp_buffer_create(run->net, x_bytes, &run->train_x)) != BP_OK ||
        (st = bp_buffer_upload(run->train_x, 0, train->desc.x, x_bytes)) != BP_OK ||
        (st = bp_buffer_create(run->net, y_bytes, &run->train_targets)) != BP_OK ||
        (st = bp_buffer_upload(run->train_targets, 0, train->targets, y_bytes)) != BP_OK)
        return cli_lib_error("uploading the training set", st);
    return 0;
}

/* --resume: the old log's rows first in the new one. 1 when there were
 * rows, 0 when there is no old log, -1 (printed) on a read error. */
static int copy_old_log(const char *path, bp_file_replace *log)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    char buf[65536];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (bp_file_replace_write(log, buf, n) != BP_OK) {
            fclose(f);
            return cli_error("--log: %s", bp_last_error());
        }
        total += n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return cli_error("--log: cannot read '%s'", path);
    return total > 0;
}

/* The sample order, the per-epoch curves, the log file and the pacing of
 * the loop. */
static int prepare_loop(training_run *run)
{
    const train_options *o = &run->options;
    size_t n = (size_t)run->train_set.desc.n_samples;
    run->curves.train_loss = calloc((size_t)o->epochs, sizeof(double));
    run->curves.test_loss = calloc((size_t)o->epochs, sizeof(double));
    run->curves.test_accuracy = calloc((size_t)o->epochs, sizeof(double));
    run->order = malloc(n * sizeof(int32_t));
    if (!run->curves.train_loss || !run->curves.test_loss || !run->curves.test_accuracy ||
        !run->order)
        return cli_error("no memory for the training loop");
    for (size_t i = 0; i < n; i++)
        run->order[i] = (int32_t)i;
    if (o->log_path) {
        if (bp_file_replace_begin(o->log_path, &run->log) != BP_OK)
            return cli_error("--log: %s", bp_last_error());
        /* --resume continues the interrupted run's log */
        int continued = o->optim.resume != NULL ? copy_old_log(o->log_path, run->log) : 0;
        if (continued < 0)
            return -1;
        if (!continued)
            bp_file_replace_printf(
                run->log, "epoch,train_loss,test_loss,test_accuracy,seconds,samples_per_s\n");
    }
    run->shuffle_state = (uint64_t)o->seed ^ 0x5DEECE66Dull;
    /* --resume: the shuffles of the epochs before the checkpoint replayed,
     * so the order and the generator are the interrupted run's. */
    if (optim_replay(&o->optim, run->order, n, &run->shuffle_state, o->no_shuffle,
                     &run->resumed_shuffled) != 0)
        return -1;
    for (long e = 0; e < o->optim.start.epoch && e < o->epochs; e++) /* before the resumed */
        run->curves.train_loss[e] = run->curves.test_loss[e] = run->curves.test_accuracy[e] = NAN;
    run->steps_per_epoch = (long)((n + (size_t)o->batch - 1) / (size_t)o->batch);
    /* Reading the loss waits for the device: every step on the CPU, every
     * 16th on a GPU. */
    run->read_loss_every = run->device.backend == BP_BACKEND_CPU ? 1 : 16;
    run->show_progress = isatty(fileno(stderr)) && !o->quiet;
    return 0;
}

static int build(training_run *run)
{
    architecture a;
    if (build_architecture(run, &a) != 0 || create_network(run, &a) != 0 ||
        upload_training_set(run) != 0 || prepare_loop(run) != 0)
        return -1;
    return 0;
}

/* ---- run one epoch -------------------------------------------------------- */

/* The epoch's learning rate (the schedule's) for the network's optimizer
 * (set once by optim_setup); the optimizer the data-parallel step passes
 * to the other GPUs' networks. */
static int epoch_optimizer(training_run *run, int epoch, bp_optimizer *opt)
{
    bp_optimizer_init(opt, BP_OPTIMIZER_SGD); /* struct_size: this header's */
    bp_status st = bp_network_set_lr(run->net, train_options_epoch_lr(&run->options, epoch));
    if (st == BP_OK)
        st = bp_network_get_optimizer(run->net, opt);
    return st == BP_OK ? 0 : cli_lib_error("--lr", st);
}

/* One step on the samples order[start, start + b): alone, the next rows
 * of the epoch's order on the device (no upload, no wait); data-parallel,
 * this rank's part of the global batch (dist.c). With loss non-NULL the
 * batch loss is read (a wait for the device) and checked. Returns 0, or -1
 * with the message printed. */
static int train_step(training_run *run, const bp_optimizer *opt, int epoch, long step,
                      size_t start, int b, double *loss)
{
    bp_status st = run->dist.active
                       ? cli_dist_train_step(&run->dist, run->net, run->train_x,
                                             run->train_targets, run->order + start, b, opt, loss)
                       : bp_network_epoch_step(run->net, b, loss);
    if (st != BP_OK || (loss != NULL && !isfinite(*loss)))
        progress_clear(&run->bar);
    if (st == BP_ERR_NUMERIC || (st == BP_OK && loss != NULL && !isfinite(*loss)))
        return cli_error("training diverged at epoch %d, step %ld: the loss is %g; nothing was "
                         "saved (try a smaller --lr)",
                         epoch + 1, step + 1, loss != NULL ? *loss : NAN);
    if (st != BP_OK)
        return cli_lib_error("training step", st);
    return 0;
}

/* --checkpoint: `epoch` epochs done and `step` steps of the next. */
static int save_checkpoint(const training_run *run, int epoch, long step)
{
    const train_options *o = &run->options;
    return optim_save(&o->optim, run->net, epoch, step, run->steps_per_epoch, o->epochs, o->batch,
                      (uint64_t)o->seed, run->shuffle_state, o->schedule, o->lr);
}

/* One pass over the training set. *train_loss receives the mean of the
 * losses read. Returns 0 (also when Ctrl-C stopped it: run->stopped), or -1
 * with the message printed. */
static int run_epoch(training_run *run, int epoch, double *train_loss)
{
    const train_options *o = &run->options;
    size_t n = (size_t)run->train_set.desc.n_samples;
    if (!o->no_shuffle && !run->resumed_shuffled) /* a resumed epoch is shuffled already */
        optim_shuffle(run->order, n, &run->shuffle_state);
    run->resumed_shuffled = 0;
    bp_optimizer opt;
    if (epoch_optimizer(run, epoch, &opt) != 0)
        return -1;
    /* --resume inside an epoch: its first steps were done before. */
    long first = epoch == o->optim.start.epoch ? (long)o->optim.start.step_in_epoch : 0;
    size_t skipped = (size_t)first * (size_t)o->batch;
    double loss_sum = 0, loss = NAN;
    long loss_count = 0, steps = 0;
    /* The epoch's order goes to the device once; each step takes its rows
     * there and sums its loss there. */
    bp_status st;
    if (!run->dist.active && (st = bp_network_set_epoch(run->net, run->train_x, run->train_targets,
                                                        run->order + skipped, n - skipped)) != BP_OK)
        return cli_lib_error("starting an epoch", st);
    progress_start(&run->bar, run->show_progress);
    for (long s = first; s < run->steps_per_epoch; s++) {
        size_t start = (size_t)s * (size_t)o->batch;
        int b = (int)(n - start < (size_t)o->batch ? n - start : (size_t)o->batch);
        int want = (s % run->read_loss_every == 0) || s == run->steps_per_epoch - 1;
        if (train_step(run, &opt, epoch, s, start, b, want ? &loss : NULL) != 0)
            return -1;
        steps++;
        if (want) {
            loss_sum += loss;
            loss_count++;
        }
        progress_update(&run->bar, epoch + 1, (int)o->epochs, s + 1, run->steps_per_epoch,
                        loss_count ? loss_sum / loss_count : NAN, (long)(start + (size_t)b));
        if (cli_signals_caught()) {
            run->stopped = 1;
            progress_clear(&run->bar);
            fprintf(stderr, "backprop: interrupted at epoch %d, step %ld\n", epoch + 1, s + 1);
            if (save_checkpoint(run, epoch, s + 1) == 0 && o->optim.checkpoint && !o->quiet)
                fprintf(stderr, "backprop: wrote %s; continue with --resume %s\n",
                        o->optim.checkpoint, o->optim.checkpoint);
            break;
        }
    }
    progress_clear(&run->bar);
    *train_loss = loss_count ? loss_sum / loss_count : NAN;
    /* The epoch's mean loss over every step, summed on the device (a rank's
     * sums are its own: data-parallel runs keep the global losses read). */
    run->steps_done += steps;
    bp_train_metrics metrics;
    st = bp_network_read_metrics(run->net, &metrics);
    if (st == BP_ERR_NUMERIC)
        return cli_error("training diverged at epoch %d, step %lld: the loss or a gradient is not "
                         "finite; nothing was saved (try a smaller --lr)",
                         epoch + 1, metrics.bad_step - (run->steps_done - metrics.steps));
    if (st != BP_OK)
        return cli_lib_error("reading the epoch's loss", st);
    if (!run->dist.active && metrics.samples > 0)
        *train_loss = metrics.mean_loss;
    return 0;
}

/* ---- report --------------------------------------------------------------- */

/* The epoch's figures: its train loss, and the test set's loss and accuracy
 * (not after Ctrl-C), printed, logged and kept for the plot. */
static int report_epoch(training_run *run, int epoch, double train_loss, double seconds)
{
    const train_options *o = &run->options;
    run->curves.train_loss[epoch] = train_loss;
    run->curves.test_loss[epoch] = NAN;
    run->curves.test_accuracy[epoch] = NAN;
    if (run->have_test_set && !run->stopped) {
        if (cli_evaluate(run->net, &run->test_set, NULL, &run->evaluation) != 0)
            return -1;
        run->curves.test_loss[epoch] = run->evaluation.loss;
        run->curves.test_accuracy[epoch] = run->evaluation.accuracy;
    }
    run->curves.n = epoch + 1;
    double rate = (double)run->train_set.desc.n_samples / (seconds > 0 ? seconds : 1e-9);
    double test_loss = run->have_test_set ? run->evaluation.loss : NAN;
    double test_accuracy = run->have_test_set && run->classify ? run->evaluation.accuracy : NAN;
    if (!o->quiet && !run->stopped) {
        printf("epoch %d/%ld  train loss %.4f", epoch + 1, o->epochs, train_loss);
        if (run->have_test_set) {
            printf("  test loss %.4f", test_loss);
            if (run->classify)
                printf("  test accuracy %.2f%%", 100 * test_accuracy);
        }
        printf("  %.1fs  %.0f samples/s\n", seconds, rate);
        fflush(stdout);
    }
    if (run->log && !run->stopped)
        bp_file_replace_printf(run->log, "%d,%.6g,%.6g,%.6g,%.3f,%.1f\n", epoch + 1, train_loss,
                               test_loss, test_accuracy, seconds, rate);
    if (run->log && bp_file_replace_flush(run->log) != BP_OK)
        return cli_error("--log: %s", bp_last_error());
    return 0;
}

/* ---- finish --------------------------------------------------------------- */

/* The summary line: the test set's figures (the last epoch's unless a
 * signal cut it short), or the training set's without a test set. Figures
 * that are missing or not finite fail the run: nothing is saved. */
static int print_summary(training_run *run)
{
    if (!run->have_test_set || run->stopped) {
        const loaded_data *set = run->have_test_set ? &run->test_set : &run->train_set;
        if (cli_evaluate(run->net, set, NULL, &run->evaluation) != 0)
            return -1;
    }
    const bp_evaluation *ev = &run->evaluation;
    if (ev->n_samples <= 0 || !isfinite(ev->loss))
        return cli_error("the final evaluation gave loss %g over %d samples; training diverged, "
                         "nothing was saved (try a smaller --lr)",
                         ev->loss, ev->n_samples);
    double total = cli_now() - run->started;
    const char *which = run->have_test_set ? "test" : "training";
    int epochs = run->epochs_begun;
    if (run->classify)
        printf("%s accuracy %.2f%% (%d/%d), %s loss %.4f, %d epoch%s in %.1fs on %s\n", which,
               100 * ev->accuracy, ev->correct, ev->n_samples, which, ev->loss, epochs,
               epochs == 1 ? "" : "s", total, run->device.description);
    else
        printf("%s loss %.6g, %d epoch%s in %.1fs on %s\n", which, ev->loss, epochs,
               epochs == 1 ? "" : "s", total, run->device.description);
    bp_loss_scale ls; /* 16-mixed: what the loss scaler did */
    bp_network_desc d;
    if (bp_network_describe(run->net, &d) == BP_OK && d.precision == BP_PRECISION_16_MIXED &&
        bp_network_get_loss_scale(run->net, &ls) == BP_OK)
        printf("16-mixed loss scaling: %lld step%s skipped for float16 overflow, scale now %g\n",
               (long long)ls.skipped_steps, ls.skipped_steps == 1 ? "" : "s", ls.scale);
    return 0;
}

/* --save, then --log and --plot put in place: the plot is written before
 * the model is saved and committed after it, so a failure leaves every
 * output as it was. */
static int write_outputs(training_run *run)
{
    const train_options *o = &run->options;
    bp_file_replace *plot = NULL;
    if (o->plot_path && run->curves.n > 0 &&
        plot_prepare_svg(o->plot_path, &run->curves, run->network_summary, &plot) != 0)
        return -1;
    if (o->save_path) {
        bp_status st = bp_model_save(run->net, o->save_path);
        if (st != BP_OK) {
            bp_file_replace_abort(plot);
            return cli_lib_error("--save", st);
        }
        if (!o->quiet)
            printf("saved %s\n", o->save_path);
    }
    if (o->save_16bit_path) { /* the weights as the mixed forward pass multiplies them */
        bp_network_desc d;
        bp_network_describe(run->net, &d);
        bp_status st = bp_model_save_16bit(run->net, o->save_16bit_path, d.precision);
        if (st != BP_OK) {
            bp_file_replace_abort(plot);
            return cli_lib_error("--save-16bit", st);
        }
        if (!o->quiet)
            printf("saved %s (%s weights)\n", o->save_16bit_path,
                   d.precision == BP_PRECISION_16_MIXED ? "F16" : "BF16");
    }
    int failed = 0;
    if (run->log != NULL) {
        bp_file_replace *log = run->log;
        run->log = NULL;
        if (bp_file_replace_commit(log) != BP_OK)
            failed = cli_error("--log: %s", bp_last_error());
    }
    if (plot != NULL && failed)
        bp_file_replace_abort(plot);
    else if (plot != NULL && bp_file_replace_commit(plot) != BP_OK)
        failed = cli_error("--plot: %s", bp_last_error());
    return failed;
}

/* From here to the end a stopping signal waits (so a second Ctrl-C cannot
 * cut a save short or leave a temporary file): the last step too must have
 * left finite parameters, the final figures must exist, and only then are
 * the outputs written. The exit status: 128 + the signal after one stopped
 * the run (the model is saved all the same), 1 when something failed. */
static int finish(training_run *run)
{
    cli_signals_hold(&run->held);
    run->holding = 1;
    if (cli_check_finite(run->net, "the trained network",
                         "; training diverged, nothing was saved (try a smaller --lr)") != 0 ||
        print_summary(run) != 0 || write_outputs(run) != 0)
        return 1;
    int sig = cli_signals_caught();
    return sig ? 128 + sig : 0;
}

/* ---- the command ---------------------------------------------------------- */

static int train(training_run *run)
{
    int status = choose_device_and_dtype(run);
    if (status != 0)
        return status;
    if (load_data(run) != 0)
        return 1;
    if (!run->options.quiet)
        printf("data: %s\n", run->data_summary);
    if (build(run) != 0)
        return 1;
    cli_signals_catch(); /* SIGINT, SIGTERM, SIGHUP stop after a step; SIGPIPE ignored */
    run->started = cli_now();
    const train_options *o = &run->options;
    long stop = o->optim.stop_after > 0 && o->optim.stop_after < o->epochs ? o->optim.stop_after
                                                                           : o->epochs;
    for (int epoch = (int)o->optim.start.epoch; epoch < stop && !run->stopped; epoch++) {
        double e0 = cli_now(), train_loss = NAN;
        run->epochs_begun = epoch + 1;
        if (run_epoch(run, epoch, &train_loss) != 0 ||
            report_epoch(run, epoch, train_loss, cli_now() - e0) != 0)
            return 1;
        /* --checkpoint after every epoch */
        if (!run->stopped && save_checkpoint(run, epoch + 1, 0) != 0)
            return 1;
    }
    return finish(run);
}

int cmd_train(int argc, char **argv)
{
    training_run run;
    memset(&run, 0, sizeof run);
    int status = 0;
    if (parse_train_options(argc, argv, &run.options, &status) == 0)
        status = train(&run);
    training_run_free(&run);
    cli_dist_end(&run.dist); /* after the network: the communicators, MPI */
    if (run.holding) {       /* a signal held while finishing acts now */
        cli_signals_release(&run.held);
        if (status == 0 && cli_signals_caught())
            status = 128 + cli_signals_caught();
    }
    return status;
}
