/*
 * train.c — `backprop train`, in the order it runs:
 *
 *   parse    the flags (train_options.c), the device and the dtype, the
 *            ranks of an MPI launcher or a --device list (launch.c)
 *   load     the training and test data (files, Fashion-MNIST or generated)
 *   build    the network and the library's trainer over the training set
 *   fit      the trainer's run; its callbacks (train_report.c) draw the
 *            progress bar, print and log each epoch and ask about Ctrl-C
 *   finish   the final checks and summary, then save, log and plot (each
 *            replaced whole, and only when the run succeeded)
 *
 * Every loss and accuracy printed is the library's (the trainer's epoch
 * figures, bp_network_evaluate_dataset).
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "gpu_flags.h"
#include "log_resume.h"
#include "messages.h"
#include "outputs.h"
#include "report.h"
#include "signals.h"
#include "train_run.h"

static void training_run_free(training_run *run)
{
    bp_trainer_free(run->trainer);
    bp_network_free(run->net);
    cli_data_free(&run->train_set);
    cli_data_free(&run->test_set);
    cli_meta_free(&run->meta);
    free(run->curves.train_loss);
    free(run->curves.test_loss);
    free(run->curves.test_accuracy);
    bp_file_replace_abort(run->log); /* a failed run leaves the old log */
    train_options_free(&run->options);
}

/* ---- parse ---------------------------------------------------------------- */

/* The device and the dtype the data is loaded in. Returns an exit status. */
static int choose_device_and_dtype(training_run *run)
{
    train_options *o = &run->options;
    char first_device[32]; /* rank 0's device of a --device list */
    if (cli_choose_device(cli_launch_device_spec(o->device, first_device, sizeof first_device),
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
    /* Under mpirun rank 0 alone prints and writes. */
    const char **outputs[] = {&o->save_path, &o->log_path, &o->plot_path, &o->save_16bit_path};
    return cli_launch_begin(&run->launch, o->device, &run->device, &o->quiet, outputs, 4);
}

/* ---- load ----------------------------------------------------------------- */

static void adopt(loaded_data *d, bp_dataset *ds)
{
    d->dataset = ds;
    bp_dataset_describe(ds, &d->desc);
}

/* No --data: Fashion-MNIST where the library finds it, else three
 * generated spirals. */
static int load_default_data(training_run *run)
{
    const char *dir = bp_fashion_mnist_dir(NULL);
    bp_dataset *train = NULL, *test = NULL;
    run->have_test_set = 1;
    if (bp_dataset_load_fashion_mnist(NULL, run->dtype, &train, &test) == BP_OK) {
        adopt(&run->train_set, train);
        adopt(&run->test_set, test);
        snprintf(run->data_summary, sizeof run->data_summary,
                 "Fashion-MNIST from %s/ (%d train, %d test)", dir, run->train_set.desc.n_samples,
                 run->test_set.desc.n_samples);
        return 0;
    }
    if (bp_dataset_load_fashion_mnist(NULL, run->dtype, NULL, NULL) == BP_OK) /* there, bad */
        return cli_lib_error("Fashion-MNIST", BP_ERR_FORMAT);
    uint64_t seed = (uint64_t)run->options.seed;
    if (bp_dataset_spirals(3000, seed, run->dtype, &train) != BP_OK ||
        (adopt(&run->train_set, train),
         bp_dataset_spirals(1500, seed + 1000003, run->dtype, &test)) != BP_OK)
        return cli_lib_error("generated data", BP_ERR_OUT_OF_MEMORY);
    adopt(&run->test_set, test);
    snprintf(run->data_summary, sizeof run->data_summary,
             "no --data given and Fashion-MNIST is not in %s/ (apt-get install "
             "dataset-fashion-mnist): a generated set of three spirals (3000 train, 1500 test)",
             dir);
    return 0;
}

/* --standardize or --scale fitted on the training data and applied to
 * both sets; without them, a warning when the features look unscaled. */
static int scale_inputs(training_run *run)
{
    const train_options *o = &run->options;
    const char *name = o->data_path ? o->data_path : "the training data";
    if (!o->standardize && o->scale == 0.0)
        return cli_warn_unscaled(&run->train_set, name, &run->max_abs);
    if (cli_scaling_fit(&run->train_set, o->standardize, o->scale, &run->meta.scaling) != 0 ||
        cli_scaling_apply(&run->meta.scaling, &run->train_set, name) != 0)
        return -1;
    if (run->have_test_set && run->test_set.desc.n_features == run->train_set.desc.n_features &&
        cli_scaling_apply(&run->meta.scaling, &run->test_set, o->test_path) != 0)
        return -1;
    return 0;
}

static int load_data(training_run *run)
{
    train_options *o = &run->options;
    /* With --layers (or --init's), the input count is checked at the
     * data's first row; cli_build_architecture checks the rest. */
    long first = o->architecture.layers != NULL ? strtol(o->architecture.layers, NULL, 10) : 0;
    o->columns.n_features = first >= 1 && first <= BP_MAX_WIDTH ? first : 0;
    if (o->data_path == NULL) {
        if (load_default_data(run) != 0)
            return -1;
        return scale_inputs(run);
    }
    if (cli_load_data(o->data_path, run->dtype, &o->columns, &run->train_set) != 0 ||
        cli_check_classes(&run->train_set, o->data_path) != 0 ||
        cli_meta_take_class_names(&run->train_set, &run->meta) != 0)
        return -1;
    run->meta.label_column = run->train_set.desc.label_column;
    run->meta.n_targets = run->train_set.desc.n_targets;
    if (o->columns.delimiter && strcmp(o->columns.delimiter, ",") != 0)
        snprintf(run->meta.delimiter, sizeof run->meta.delimiter, "%s", o->columns.delimiter);
    snprintf(run->data_summary, sizeof run->data_summary, "%s (%d samples, %d features%s)",
             o->data_path, run->train_set.desc.n_samples, run->train_set.desc.n_features,
             run->meta.n_class_names ? ", labels that are names" : "");
    if (o->test_path) {
        /* The test set's labels: the training set's column and names. */
        data_options test = o->columns;
        if (test.label_column < 0 && run->meta.label_column >= 0)
            test.label_column = run->meta.label_column;
        test.class_names = (const char *const *)run->meta.class_names;
        test.n_class_names = run->meta.n_class_names;
        if (cli_load_data(o->test_path, run->dtype, &test, &run->test_set) != 0)
            return -1;
        run->have_test_set = 1;
    }
    return scale_inputs(run);
}

/* ---- build ---------------------------------------------------------------- */

/* The architecture (widths from the data unless --layers says otherwise),
 * checked against both sets' labels or targets. */
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

/* The run's first lines say how it trains: optimizer, learning rate and
 * schedule, batch, epochs, validation, scaling and precision (the device is
 * on the "network:" line). */
static void echo_configuration(const training_run *run, const bp_network_desc *nd)
{
    const train_options *o = &run->options;
    if (o->quiet)
        return;
    const bp_optimizer *opt = &o->optim.opt;
    printf("training: %s, lr %g (%s schedule)", bp_optimizer_name(opt->type), o->lr, o->schedule);
    if (opt->type == BP_OPTIMIZER_SGD)
        printf(", momentum %g", opt->momentum);
    if (opt->weight_decay > 0)
        printf(", weight decay %g", opt->weight_decay);
    printf(", batch %ld, %ld epoch%s", o->batch, o->epochs, o->epochs == 1 ? "" : "s");
    if (o->validation_fraction > 0)
        printf(", validation fraction %g", o->validation_fraction);
    printf(", inputs %s, %s\n",
           run->meta.scaling.n == 0                      ? "as read"
           : strcmp(run->meta.scaling.how, "scale") == 0 ? "divided by --scale"
                                                         : "standardized",
           nd->precision == BP_PRECISION_BF16_MIXED || nd->precision == BP_PRECISION_16_MIXED
               ? bp_precision_name(nd->precision)
           : nd->dtype == BP_F32 ? "float32"
                                 : "float64");
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
    cfg.threads = (int)o->threads; /* the CPU backend's pool; 0: bp_cpu_thread_count */
    bp_status st = bp_network_create(&cfg, &run->net);
    if (st != BP_OK)
        return cli_lib_error("creating the network", st);
    if (o->init_path && (st = bp_model_load_params(run->net, o->init_path)) != BP_OK)
        return cli_lib_error("--init", st);
    if (optim_setup(&run->options.optim, run->net) != 0) /* train_optim.c */
        return -1;
    /* What eval, predict and PyTorch need to read data as this run did. */
    if (cli_meta_store(run->net, &run->meta) != 0)
        return -1;
    bp_network_desc nd;
    bp_network_describe(run->net, &nd);
    cli_network_summary(&nd, run->network_summary, sizeof run->network_summary);
    /* the count the network runs on: --threads, else the library's */
    if (run->device.backend == BP_BACKEND_CPU && (run->threads = (int)o->threads) == 0)
        bp_cpu_thread_count(&run->threads);
    char threads[32] = "";
    if (run->threads > 0)
        snprintf(threads, sizeof threads, ", %d thread%s", run->threads,
                 run->threads > 1 ? "s" : "");
    if (!o->quiet)
        printf("network: %s, %zu parameters; backend: %s%s\n", run->network_summary, nd.n_params,
               run->device.description, threads);
    echo_configuration(run, &nd);
    fflush(stdout); /* the run's first lines show at its start through a pipe or a file too */
    if (run->device.why_not_gpu[0] != '\0')
        cli_note(o->quiet, "no GPU, so training runs on the CPU: %s", run->device.why_not_gpu);
    return 0;
}

/* The values a data set gives to bp_comm_agree: its features and its
 * labels or targets, named after the flag that gave the file. */
static int data_values(const loaded_data *d, const char *flag_name, bp_comm_value *v)
{
    const bp_dataset_desc *ds = &d->desc;
    size_t n = (size_t)ds->n_samples, es = bp_dtype_size(ds->dtype);
    v[0] = (bp_comm_value){flag_name, 0, ds->x, n * (size_t)ds->n_features * es};
    v[1] = (bp_comm_value){flag_name, 0, ds->labels ? (const void *)ds->labels : ds->targets,
                           ds->labels ? n * sizeof(int32_t) : n * (size_t)ds->n_targets * es};
    if (v[1].bytes == NULL)
        v[1].n_bytes = 0; /* unlabeled */
    return 2;
}

/* Data-parallel ranks must train the same run (issue 21, item 1): the
 * flags that shape it, named as the flags (each optimizer field as the
 * flag that sets it), where a --resume starts, what the join's comparison
 * of the parameters cannot show, and the data itself. */
static int agree_across_ranks(training_run *run)
{
    const train_options *o = &run->options;
    if (run->launch.comm == NULL)
        return 0;
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD);
    bp_network_get_optimizer(run->net, &opt);
    bp_network_desc nd;
    bp_network_describe(run->net, &nd);
    bp_comm_value v[48] = {
        {"--epochs", (double)o->epochs, NULL, 0},
        {"--stop-after", (double)o->optim.stop_after, NULL, 0},
        {"--batch", (double)o->batch, NULL, 0},
        {"--seed", (double)o->seed, NULL, 0},
        {"--no-shuffle", o->no_shuffle, NULL, 0},
        {"--schedule", 0, o->schedule, strlen(o->schedule)},
        {"--warmup", (double)o->warmup, NULL, 0},
        {"--validation-fraction", o->validation_fraction, NULL, 0},
        {"--early-stopping", (double)o->patience, NULL, 0},
        {"--min-delta", o->min_delta, NULL, 0},
        {"--step-epochs", (double)o->step_epochs, NULL, 0},
        {"--step-gamma", o->step_gamma, NULL, 0},
        {"--plateau-patience", (double)o->plateau_patience, NULL, 0},
        {"--plateau-factor", o->plateau_factor, NULL, 0},
        {"--lr", o->lr, NULL, 0},
        {"--optimizer", opt.type, NULL, 0},
        {"the optimizer's current learning rate", opt.lr, NULL, 0},
        {"--momentum", opt.momentum, NULL, 0},
        {"the optimizer's dampening", opt.dampening, NULL, 0},
        {"the optimizer's nesterov", opt.nesterov, NULL, 0},
        {"--weight-decay", opt.weight_decay, NULL, 0},
        {"--beta1", opt.beta1, NULL, 0},
        {"--beta2", opt.beta2, NULL, 0},
        {"--eps", opt.eps, NULL, 0},
        {"--amsgrad", opt.amsgrad, NULL, 0},
        {"--clip-grad-norm", opt.clip_grad_norm, NULL, 0},
        {"--resume (its epoch)", (double)o->optim.start.epoch, NULL, 0},
        {"--resume (its step in the epoch)", (double)o->optim.start.step_in_epoch, NULL, 0},
        {"--resume (its shuffling state)", 0, &o->optim.start.shuffle_state,
         sizeof o->optim.start.shuffle_state},
        {"--dtype", nd.dtype, NULL, 0},
        {"--precision", nd.precision, NULL, 0},
        {"--math", nd.math_mode, NULL, 0},
        {"--loss", nd.loss, NULL, 0},
        {"--activations", 0, nd.activations, (size_t)nd.n_layers * sizeof *nd.activations},
    };
    int n = 34;
    n += data_values(&run->train_set, o->data_path ? "--data" : "the training data", v + n);
    if (run->have_test_set)
        n += data_values(&run->test_set, o->test_path ? "--test" : "the test data", v + n);
    else /* as many values, so that a rank with --test is named */
        for (int i = 0; i < 2; i++)
            v[n++] = (bp_comm_value){"--test", 0, NULL, 0};
    bp_status st = bp_comm_agree(run->launch.comm, v, n);
    return st == BP_OK ? 0 : cli_lib_error("data-parallel ranks", st);
}

/* The library's trainer over the training set, its callbacks this run's;
 * with --resume, the checkpoint's run continued. */
static int create_trainer(training_run *run)
{
    const train_options *o = &run->options;
    bp_trainer_config tc;
    train_options_trainer(o, &tc);
    /* Reading the loss waits for the device: every step on the CPU, every
     * 16th on a GPU. */
    tc.report_every = run->device.backend == BP_BACKEND_CPU ? 1 : 16;
    tc.on_step = train_report_step;
    tc.on_epoch = train_report_epoch;
    tc.should_stop = train_report_should_stop;
    tc.user = run;
    if (agree_across_ranks(run) != 0)
        return -1;
    cli_launch_configure(&run->launch, &tc, run->device.description);
    bp_status st = bp_trainer_create(run->net, run->train_set.dataset, NULL, &tc, &run->trainer);
    if (st != BP_OK)
        return cli_lib_error(run->launch.rank == 0 ? "the training run" : "a data-parallel rank",
                             st);
    if (o->optim.resume == NULL)
        return 0;
    if ((st = bp_trainer_resume(run->trainer, o->optim.resume)) != BP_OK)
        return cli_lib_error("--resume", st);
    bp_trainer_config r; /* the run the checkpoint holds: its flags may only be repeated */
    bp_trainer_config_init(&r);
    if ((st = bp_trainer_get_config(run->trainer, &r)) != BP_OK)
        return cli_lib_error("--resume", st);
    const optim_run_value v[] = {
        {"--validation-fraction", o->validation_fraction, r.validation_fraction},
        {"--no-shuffle", o->no_shuffle, !r.shuffle},
        {"--warmup", (double)o->warmup, (double)r.warmup_epochs},
        {"--step-epochs", (double)o->step_epochs, (double)r.step_epochs},
        {"--step-gamma", o->step_gamma, r.step_gamma},
        {"--plateau-factor", o->plateau_factor, r.plateau_factor},
        {"--plateau-patience", (double)o->plateau_patience, (double)r.plateau_patience},
        {"--early-stopping", (double)o->patience, (double)r.patience},
        {"--min-delta", o->min_delta, r.min_delta},
    };
    return optim_resume_compare(&o->optim, v, (int)(sizeof v / sizeof v[0]));
}

/* The per-epoch curves and the log file. */
static int prepare_reports(training_run *run)
{
    const train_options *o = &run->options;
    run->curves.train_loss = calloc((size_t)o->epochs, sizeof(double));
    run->curves.test_loss = calloc((size_t)o->epochs, sizeof(double));
    run->curves.test_accuracy = calloc((size_t)o->epochs, sizeof(double));
    if (!run->curves.train_loss || !run->curves.test_loss || !run->curves.test_accuracy)
        return cli_error("no memory for the training curves");
    for (long e = 0; e < o->epochs; e++) /* epochs before a resumed one: unknown */
        run->curves.train_loss[e] = run->curves.test_loss[e] = run->curves.test_accuracy[e] = NAN;
    run->epoch = -1;
    run->show_progress = isatty(fileno(stderr)) && !o->quiet;
    if (o->log_path == NULL)
        return 0;
    if (bp_file_replace_begin(o->log_path, &run->log) != BP_OK)
        return cli_error("--log: %s", bp_last_error());
    /* validation columns with --validation-fraction only */
    char header[128];
    snprintf(header, sizeof header,
             "epoch,train_loss,test_loss,test_accuracy,seconds,samples_per_s,lr,"
             "train_accuracy%s\n",
             o->validation_fraction > 0 ? ",val_loss,val_accuracy" : "");
    /* --resume continues the interrupted run's log up to its checkpoint */
    int continued = o->optim.resume != NULL ? cli_log_resume(o->log_path, run->log, header,
                                                             (long)o->optim.start.epoch, o->quiet)
                                            : 0;
    if (continued < 0)
        return -1;
    if (!continued)
        bp_file_replace_write(run->log, header, strlen(header));
    return 0;
}

static int build(training_run *run)
{
    architecture a;
    if (build_architecture(run, &a) != 0 || create_network(run, &a) != 0 ||
        create_trainer(run) != 0 || prepare_reports(run) != 0)
        return -1;
    return 0;
}

/* ---- fit ------------------------------------------------------------------ */

/* The trainer's run, and what ended it. Returns 0 (also after Ctrl-C), or
 * -1 with the message printed. */
static int fit(training_run *run)
{
    const train_options *o = &run->options;
    run->started = cli_now();
    run->result.struct_size = sizeof run->result;
    bp_status st = bp_trainer_fit(run->trainer, &run->result);
    progress_clear(&run->bar);
    if (st == BP_ERR_NUMERIC)
        return cli_error("training diverged at %s; nothing was saved (try a smaller --lr)",
                         bp_last_error());
    if (st != BP_OK)
        return cli_lib_error("training", st);
    if (run->failed)
        return -1;
    if (cli_signals_caught()) {
        cli_note(0, "interrupted at epoch %ld, step %ld", run->epoch + 1, run->step);
        if (o->optim.checkpoint)
            cli_note(o->quiet, "wrote %s; continue with --resume %s", o->optim.checkpoint,
                     o->optim.checkpoint);
    }
    const bp_trainer_result *r = &run->result;
    if (r->early_stopped && !o->quiet)
        printf("early stopping: no improvement for %ld epochs; the parameters are those of epoch "
               "%lld (%s loss %.4f)\n",
               o->patience, (long long)r->best_epoch,
               o->validation_fraction > 0 ? "validation" : "training", r->best_loss);
    return 0;
}

/* ---- finish --------------------------------------------------------------- */

/* The summary line: the test set's figures (the last epoch's unless the
 * run ended elsewhere), or the training set's without a test set. Figures
 * that are missing or not finite fail the run: nothing is saved. */
static int print_summary(training_run *run)
{
    int last_is_final = run->have_evaluation && !run->result.stopped &&
                        !(run->options.patience > 0 && run->result.best_epoch > 0);
    if (!run->have_test_set || !last_is_final) {
        const loaded_data *set = run->have_test_set ? &run->test_set : &run->train_set;
        if (cli_evaluate(run->net, set, NULL, &run->evaluation) != 0)
            return -1;
    }
    const bp_evaluation *ev = &run->evaluation;
    if (ev->n_samples <= 0 || !isfinite(ev->loss))
        return cli_error("the final evaluation gave loss %g over %d samples; training diverged, "
                         "nothing was saved (try a smaller --lr)",
                         ev->loss, ev->n_samples);
    if (run->options.json)
        return 0; /* print_json, once the outputs are written */
    double total = cli_now() - run->started;
    const char *which = run->have_test_set ? "test" : "training";
    int partial = run->result.stopped && run->step > 0 && run->step < run->steps_per_epoch;
    long long epochs = (long long)run->result.epochs + partial; /* begun */
    if (run->classify)
        printf("%s accuracy %.2f%% (%d/%d), %s loss %.4f, %lld epoch%s in %.1fs on %s\n", which,
               100 * ev->accuracy, ev->correct, ev->n_samples, which, ev->loss, epochs,
               epochs == 1 ? "" : "s", total, run->device.description);
    else
        printf("%s loss %.6g, %lld epoch%s in %.1fs on %s\n", which, ev->loss, epochs,
               epochs == 1 ? "" : "s", total, run->device.description);
    bp_loss_scale ls; /* 16-mixed: what the loss scaler did */
    bp_network_desc d;
    if (bp_network_describe(run->net, &d) == BP_OK && d.precision == BP_PRECISION_16_MIXED &&
        bp_network_get_loss_scale(run->net, &ls) == BP_OK)
        printf("16-mixed loss scaling: %lld step%s skipped for float16 overflow, scale now %g\n",
               (long long)ls.skipped_steps, ls.skipped_steps == 1 ? "" : "s", ls.scale);
    return 0;
}

/* --json: the summary as one object, after the files are in place. */
static void print_json(const training_run *run)
{
    const train_options *o = &run->options;
    const bp_evaluation *ev = &run->evaluation;
    int partial = run->result.stopped && run->step > 0 && run->step < run->steps_per_epoch;
    json_out j;
    json_begin(&j, stdout);
    json_string(&j, "command", "train");
    json_string(&j, "evaluated_on", run->have_test_set ? "test" : "training");
    json_int(&j, "samples", ev->n_samples);
    json_number(&j, "loss", ev->loss);
    if (run->classify) {
        json_number(&j, "accuracy", ev->accuracy);
        json_int(&j, "correct", ev->correct);
    }
    json_int(&j, "epochs", (long)run->result.epochs + partial);
    json_number(&j, "seconds", cli_now() - run->started);
    json_string(&j, "network", run->network_summary);
    json_string(&j, "device", run->device.description);
    if (run->threads > 0)
        json_int(&j, "threads", run->threads);
    json_string(&j, "model", o->save_path);
    json_int(&j, "stopped_by_signal", cli_signals_caught());
    json_end(&j);
}

/* --save, then --log and --plot put in place: the plot is written before
 * the model is saved and committed after it, so a failure leaves every
 * output as it was. */
static int write_outputs(training_run *run)
{
    const train_options *o = &run->options;
    bp_file_replace *plot = NULL;
    if (o->plot_path && run->curves.n > 0 &&
        plot_prepare_svg(o->plot_path, &run->curves, run->network_summary, o->log_y, &plot) != 0)
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
    if (!run->holding)
        run->held = cli_signals_hold();
    run->holding = 1;
    if (cli_check_finite(run->net, "the trained network",
                         "; training diverged, nothing was saved (try a smaller --lr)") != 0 ||
        print_summary(run) != 0 || write_outputs(run) != 0)
        return 1;
    if (run->options.json)
        print_json(run);
    int sig = cli_signals_caught();
    return sig ? 128 + sig : 0;
}

/* ---- the command ---------------------------------------------------------- */

static int train(training_run *run)
{
    /* SIGINT, SIGTERM, SIGHUP stop after a step (one caught while loading
     * or building stops the run after its first); SIGPIPE ignored */
    cli_signals_catch();
    int status = choose_device_and_dtype(run);
    if (status != 0)
        return status;
    if (load_data(run) != 0)
        return 1;
    if (!run->options.quiet)
        printf("data: %s\n", run->data_summary);
    if (build(run) != 0 || fit(run) != 0)
        return 1;
    return finish(run);
}

int cmd_train(int argc, char **argv)
{
    training_run run;
    memset(&run, 0, sizeof run);
    int status = 0;
    if (parse_train_options(argc, argv, &run.options, &status) == 0)
        status = train(&run);
    /* Under mpirun, a rank that fails tells the others at once (and does
     * not wait for them in MPI's finalize): the job ends within seconds. */
    cli_launch_fail(&run.launch, status);
    training_run_free(&run);
    cli_launch_end(&run.launch); /* after the trainer and network: the ranks, MPI */
    if (run.holding) {           /* a signal held while finishing acts now */
        cli_signals_release(run.held);
        if (status == 0 && cli_signals_caught())
            status = 128 + cli_signals_caught();
    }
    return status;
}
