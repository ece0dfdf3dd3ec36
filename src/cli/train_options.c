/* train_options.c — the flags of `backprop train`: defaults, the table the
 * help is printed from, and the checks made before any data is read. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "outputs.h"
#include "train_options.h"

static void train_options_defaults(train_options *o)
{
    memset(o, 0, sizeof *o);
    o->columns.label_column = -1;
    o->epochs = 15;
    o->batch = 32;
    o->seed = 1;
    o->schedule = "cosine";
    o->step_epochs = 10;
    o->step_gamma = 0.1;
    o->plateau_factor = 0.1;
    o->plateau_patience = 10;
    o->device = "auto";
    o->math = "fp32";
    optim_flags_init(&o->optim);
}

static int check_values(const train_options *o)
{
    if (o->epochs < 1 || o->epochs > OPTIM_MAX_EPOCHS)
        return cli_error("--epochs: %ld is out of range (1..%d)", o->epochs, OPTIM_MAX_EPOCHS);
    if (o->batch < 1 || o->batch > OPTIM_MAX_BATCH)
        return cli_error("--batch: %ld is out of range (1..%d)", o->batch, OPTIM_MAX_BATCH);
    if (o->seed < 0)
        return cli_error("--seed: %ld must be >= 0", o->seed);
    if (cli_check_columns(&o->columns) != 0)
        return -1;
    if (o->warmup < 0 || o->warmup >= o->epochs)
        return cli_error("--warmup: %ld must be in [0, --epochs %ld)", o->warmup, o->epochs);
    if (!(o->validation_fraction >= 0 && o->validation_fraction < 1))
        return cli_error("--validation-fraction: %g must be in [0, 1)", o->validation_fraction);
    if (o->patience < 0 || !(o->min_delta >= 0))
        return cli_error("--early-stopping %ld and --min-delta %g must be >= 0", o->patience,
                         o->min_delta);
    if (o->step_epochs < 1 || !(o->step_gamma > 0 && o->step_gamma <= 1))
        return cli_error("--step-epochs %ld must be >= 1 and --step-gamma %g in (0, 1]",
                         o->step_epochs, o->step_gamma);
    if (o->plateau_patience < 1 || !(o->plateau_factor > 0 && o->plateau_factor < 1))
        return cli_error("--plateau-patience %ld must be >= 1 and --plateau-factor %g in (0, 1)",
                         o->plateau_patience, o->plateau_factor);
    return 0;
}

/* Without --layers, the network a file holds (--resume's checkpoint, else
 * the --init model): its sizes, and its activations, loss and dtype unless
 * flags say otherwise. */
static int adopt_architecture(train_options *o, const bp_network_config *c)
{
    architecture_flags *a = &o->architecture;
    size_t n = 0, m = 0, n_size = sizeof o->init_layers, m_size = sizeof o->init_activations;
    for (int i = 0; i <= c->n_layers && n < n_size; i++)
        n += (size_t)snprintf(o->init_layers + n, n_size - n, "%s%d", i ? "," : "", c->sizes[i]);
    for (int l = 0; l < c->n_layers && m < m_size; l++)
        m += (size_t)snprintf(o->init_activations + m, m_size - m, "%s%s", l ? "," : "",
                              bp_activation_name(c->activations[l]));
    a->layers = o->init_layers;
    if (a->activation == NULL && a->activations == NULL)
        a->activations = o->init_activations;
    if (a->loss == NULL)
        a->loss = bp_loss_name(c->loss);
    if (a->dtype == NULL && a->precision == NULL) /* --precision implies its own dtype */
        a->dtype = bp_dtype_name(c->dtype);
    return 0;
}

static int adopt_file_architecture(train_options *o)
{
    if (o->architecture.layers != NULL || (o->init_path == NULL && o->optim.ckpt == NULL))
        return 0;
    bp_network_config c;
    bp_network_config_init(&c);
    if (o->optim.ckpt != NULL) { /* the checkpoint opened by optim_resume_peek */
        bp_status st = bp_checkpoint_network(o->optim.ckpt, &c);
        return st == BP_OK ? adopt_architecture(o, &c) : cli_lib_error("--resume", st);
    }
    c.max_batch = 1;
    bp_network *model = NULL;
    bp_status st = bp_model_load(o->init_path, &c, &model);
    if (st != BP_OK)
        return cli_error("--init: %s (%s); without --layers the network is read from the model "
                         "file",
                         bp_last_error(), bp_status_string(st));
    bp_network_desc d;
    bp_network_describe(model, &d);
    c.n_layers = d.n_layers, c.sizes = d.sizes, c.activations = d.activations;
    c.loss = d.loss, c.dtype = d.dtype;
    int r = adopt_architecture(o, &c);
    bp_network_free(model);
    return r;
}

/* --resume of a finished run trains nothing, so it writes nothing: with an
 * output asked for, that is an error (it used to exit 0 silently). */
static int finished_with_outputs(const train_options *o)
{
    const char *outputs[][2] = {{"--save", o->save_path},
                                {"--log", o->log_path},
                                {"--plot", o->plot_path},
                                {"--checkpoint", o->optim.checkpoint}};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++)
        if (outputs[i][1] != NULL && strcmp(outputs[i][1], o->optim.resume) != 0)
            return cli_error("%s: nothing was trained, so '%s' was not written (a checkpoint is a "
                             "model file: eval and predict take --model %s)",
                             outputs[i][0], outputs[i][1], o->optim.resume);
    return 0;
}

/* --resume: the checkpoint (opened once here) gives the optimizer, seed and
 * batch (the trainer takes its schedule and state: bp_trainer_resume). A
 * run that already finished ends here: exit 0, said so, unless an output
 * was asked for (none is written). Returns -1 with *status set to end. */
static int resume_peek(train_options *o, int argc, char **argv, int *status)
{
    if (o->optim.resume != NULL && o->init_path != NULL) {
        *status = 2;
        return cli_error("--init %s: a resumed run's parameters are its checkpoint's (leave "
                         "--init out with --resume)",
                         o->init_path);
    }
    int resumed = optim_resume_peek(&o->optim, argc, argv, o->epochs, o->schedule, &o->seed,
                                    &o->batch);
    if (resumed > 0 && finished_with_outputs(o) != 0)
        resumed = -1;
    if (resumed != 0)
        *status = resumed > 0 ? 0 : 1;
    return resumed != 0 ? -1 : 0;
}

static const command train_command = {
    "train", "Trains a network by backpropagation and reports its accuracy (or loss).",
    "With no --data, trains on Fashion-MNIST when the Debian package dataset-fashion-mnist "
    "is installed (or from the directory in $" BP_FASHION_MNIST_ENV "), else on a generated data set. "
    "Without --layers the sizes come from the data (inputs, 256, 128, outputs), or from the "
    "--init model.\n\n"
    "CSV: a header cell label, class, target or y names the label column, else it is the last; "
    "labels may be class numbers or names (kept in the model, printed by predict). Columns "
    "count from 0. Features larger than a few tens train poorly: --standardize.\n\n"
    "Ctrl-C stops after the current step (and saves with --save); a second Ctrl-C ends the "
    "program at once. A run whose loss becomes NaN or infinite stops with an error and saves "
    "nothing. Early stopping and the plateau schedule watch the validation loss (else the "
    "training loss). Exit status: 0 trained, 1 failed, 2 a bad flag or value (found before any data "
    "is read), 128+N stopped by signal N.",
    "backprop train                          # Fashion-MNIST, on a GPU if present\n"
    "backprop train --data my.csv --test t.csv --standardize --save m.safetensors\n"
    "backprop train --data digits.csv --label-column 0 --layers 784,128,10\n"
    "backprop train --data moons.csv --layers 2,16,1 --loss bce  # binary: 0/1\n"
    "backprop train --optimizer adamw --log log.csv --plot curves.svg -q"};

/* The data, the network and what is written. */
static size_t data_flags(train_options *o, flag *f)
{
    const flag table[] = {
        {"--data", FLAG_STRING, &o->data_path, "PATH", "IDX images file (labels beside it) or CSV"},
        {"--test", FLAG_STRING, &o->test_path, "PATH", "test set, same format"},
        {"--label-column", FLAG_INT, &o->columns.label_column, "N",
         "CSV label column, counted from 0 (default: the header's label, class, target or y "
         "column, else the last)"},
        {"--targets", FLAG_INT, &o->columns.n_targets, "K",
         "CSV regression: the last K columns are real-valued targets"},
        {"--delimiter", FLAG_STRING, &o->columns.delimiter, "C",
         "CSV field separator: ',' (default), ';', tab, '|' or space"},
        {"--standardize", FLAG_SWITCH, &o->standardize, NULL,
         "scale each feature to mean 0 and standard deviation 1 (measured on --data, kept in "
         "the model file: eval, predict and PyTorch apply it)"},
        {"--scale", FLAG_DOUBLE, &o->scale, "X", "divide every feature by X (kept in the model)"},
        {"--layers", FLAG_STRING, &o->architecture.layers, "N,N,..",
         "layer sizes, inputs first (default: data,256,128,classes)"},
        {"--activation", FLAG_STRING, &o->architecture.activation, "NAME",
         "hidden activation: relu (default), leaky_relu, tanh, sigmoid, identity"},
        {"--activations", FLAG_STRING, &o->architecture.activations, "A,B,..",
         "one activation per layer"},
        {"--loss", FLAG_STRING, &o->architecture.loss, "ce|mse|bce",
         "loss (default ce; bce with one output: binary, labels 0 and 1)"},
        {"--dtype", FLAG_STRING, &o->architecture.dtype, "f32|f64",
         "real type of the data (default f32; f64 is --precision 64-true)"},
        {"--precision", FLAG_STRING, &o->architecture.precision,
         "64-true|32-true|bf16-mixed|16-mixed",
         "storage and arithmetic (default 32-true); mixed: 16-bit activations and working "
         "weights, float32 master weights"},
        {"--init", FLAG_STRING, &o->init_path, "MODEL", "start from a saved model's parameters"},
        {"--save", FLAG_STRING, &o->save_path, "MODEL", "save the trained model (safetensors)"},
        {"--save-16bit", FLAG_STRING, &o->save_16bit_path, "MODEL",
         "bf16-mixed, 16-mixed: also save the weights rounded to BF16 or F16 (for inference "
         "elsewhere; --save keeps the float32 masters)"},
        {"--log", FLAG_STRING, &o->log_path, "CSV",
         "one row per epoch: losses, test accuracy, seconds, samples/s, learning rate, "
         "training accuracy"},
        {"--plot", FLAG_STRING, &o->plot_path, "SVG", "loss and accuracy curves"},
        {"--plot-log", FLAG_SWITCH, &o->log_y, NULL, "--plot: the loss on a log scale"},
        {"--json", FLAG_SWITCH, &o->json, NULL,
         "the final report as one JSON object on standard output (implies --quiet)"},
        {"--quiet", FLAG_SWITCH, &o->quiet, NULL, "print only the final result: no notes"},
    };
    memcpy(f, table, sizeof table);
    return sizeof table / sizeof table[0];
}

/* How it trains and where. */
static size_t run_flags(train_options *o, flag *f)
{
    const flag table[] = {
        {"--epochs", FLAG_INT, &o->epochs, "N", "epochs (default 15)"},
        {"--batch", FLAG_INT, &o->batch, "N", "mini-batch size (default 32)"},
        {"--schedule", FLAG_STRING, &o->schedule, "cosine|constant|step|plateau",
         "learning-rate schedule over the epochs (default cosine)"},
        {"--warmup", FLAG_INT, &o->warmup, "EPOCHS", "linear warm-up epochs before the schedule"},
        {"--step-epochs", FLAG_INT, &o->step_epochs, "N", "step: decay every N epochs (10)"},
        {"--step-gamma", FLAG_DOUBLE, &o->step_gamma, "X", "step: the decay factor (0.1)"},
        {"--plateau-patience", FLAG_INT, &o->plateau_patience, "N",
         "plateau: epochs without improvement before a cut (10)"},
        {"--plateau-factor", FLAG_DOUBLE, &o->plateau_factor, "X", "plateau: the cut (0.1)"},
        {"--validation-fraction", FLAG_DOUBLE, &o->validation_fraction, "F",
         "hold this fraction of --data out and evaluate it every epoch"},
        {"--early-stopping", FLAG_INT, &o->patience, "PATIENCE",
         "stop after PATIENCE epochs without improvement; keep the best epoch"},
        {"--min-delta", FLAG_DOUBLE, &o->min_delta, "X",
         "the smallest fall of the loss that counts as improvement (0)"},
        {"--seed", FLAG_INT, &o->seed, "N", "initialisation and shuffling seed (default 1)"},
        {"--no-shuffle", FLAG_SWITCH, &o->no_shuffle, NULL, "samples in file order"},
        {"--device", FLAG_STRING, &o->device, "DEVICE",
         "where to train: auto (default: a GPU if there is one), cpu, cuda, cuda:N; a list "
         "cuda:N,N,.. or cuda:all trains data-parallel on those GPUs"},
        {"--threads", FLAG_INT, &o->threads, "N",
         "CPU backend threads (default: the processors this process may use, shared among the "
         "ranks of a node; every count gives the same results)"},
        {"--math", FLAG_STRING, &o->math, "fp32|tf32|bf16",
         "GEMM math on the GPU for 32-true (default fp32: exact)"},
        {"--no-graphs", FLAG_SWITCH, &o->no_graphs, NULL,
         "issue each GPU kernel from the host (no CUDA graphs)"},
        {"--no-fused-epilogues", FLAG_SWITCH, &o->no_fused, NULL,
         "f32: GEMM, then bias+ReLU as a pass (no fused ReLU epilogues)"},
    };
    memcpy(f, table, sizeof table);
    return sizeof table / sizeof table[0];
}

/* Every value that can be checked without the data: exit status 2. */
static int check_words(train_options *o)
{
    static const char *const schedules[] = {"cosine", "constant", "step", "plateau"};
    bp_math_mode mode;
    char delimiter;
    const char *loss = o->init_path ? NULL : o->columns.n_targets > 0 ? "mse" : "ce";
    int schedule = cli_parse_choice("--schedule", o->schedule, schedules, 4);
    if (schedule < 0 || cli_check_architecture_flags(&o->architecture, loss) != 0 ||
        cli_check_device_spec(o->device, 1) != 0)
        return -1;
    o->schedule = schedules[schedule]; /* a prefix ("const") stands for the name */
    if (bp_math_mode_parse(o->math, &mode) != BP_OK)
        return cli_error("--math: %s", bp_last_error());
    if (o->columns.delimiter && cli_parse_delimiter(o->columns.delimiter, &delimiter) != 0)
        return -1;
    if (o->standardize && o->scale != 0.0)
        return cli_error("give --standardize or --scale, not both");
    if (o->scale < 0.0 || (o->scale == 0.0 && o->scale_given))
        return cli_error("--scale: %g must be > 0 (the inputs are divided by it)", o->scale);
    if (o->threads < 0 || o->threads > BP_MAX_THREADS)
        return cli_error("--threads: %ld is out of range (1..%d, or 0: automatic)", o->threads,
                         BP_MAX_THREADS);
    bp_precision p = BP_PRECISION_AUTO;
    if (o->save_16bit_path != NULL && (o->architecture.precision == NULL ||
                                       bp_precision_parse(o->architecture.precision, &p) != BP_OK ||
                                       (p != BP_PRECISION_BF16_MIXED && p != BP_PRECISION_16_MIXED)))
        return cli_error("--save-16bit needs --precision bf16-mixed or 16-mixed");
    if (o->test_path && !o->data_path)
        return cli_error("--test needs --data (without --data the test set is Fashion-MNIST's "
                         "or the generated one)");
    return 0;
}

/* Parses and checks the flags: 0, or 1 after --help, or -1 (printed).
 * canonical receives the flags' full names (cli_canonical_argv). */
static int parse_flags(int argc, char **argv, train_options *o, char **canonical)
{
    flag flags[64 + OPTIM_MAX_FLAGS + 4]; /* room for every entry the three add */
    size_t n = data_flags(o, flags);
    n += run_flags(o, flags + n);
    /* --optimizer and the hyperparameters, from the library's tables */
    (void)optim_flag_entries(&o->optim, flags, &n, sizeof flags / sizeof flags[0]);
    int parsed = cli_parse(&train_command, argc, argv, flags, n);
    if (parsed != 0)
        return parsed;
    cli_canonical_argv(argc, argv, flags, n, canonical);
    for (int i = 0; i < argc; i++)
        o->scale_given |= strcmp(canonical[i], "--scale") == 0;
    if (o->json)
        o->quiet = 1;
    o->columns.quiet = o->quiet;
    if (check_values(o) != 0 || check_words(o) != 0 ||
        optim_check(&o->optim, argc, canonical, &o->lr, o->epochs) != 0)
        return -1;
    return 0;
}

/* Every output replaceable, and never an input or another output (by
 * device and inode); --resume may be --checkpoint (it is read first). */
static int check_paths(const train_options *o)
{
    const cli_path inputs[] = {
        {"--data", o->data_path}, {"--test", o->test_path}, {"--init", o->init_path}};
    const cli_path outputs[] = {{"--save", o->save_path},
                                {"--log", o->log_path},
                                {"--plot", o->plot_path},
                                {"--checkpoint", o->optim.checkpoint},
                                {"--save-16bit", o->save_16bit_path}};
    if (cli_check_paths(inputs, 3, outputs, 5) != 0)
        return -1;
    if (o->optim.resume == NULL)
        return 0;
    const cli_path resume[] = {{"--resume", o->optim.resume}};
    const cli_path others[] = {
        {"--save", o->save_path}, {"--log", o->log_path}, {"--plot", o->plot_path}};
    return cli_check_paths(resume, 1, others, 3);
}

int parse_train_options(int argc, char **argv, train_options *o, int *status)
{
    train_options_defaults(o);
    /* the flags' full names, which --resume compares until the trainer is
     * built (optim_resume_compare); freed by train_options_free */
    o->canonical = calloc((size_t)argc + 1, sizeof *o->canonical);
    if (o->canonical == NULL) {
        *status = 1;
        return cli_error("no memory");
    }
    int parsed = parse_flags(argc, argv, o, o->canonical);
    *status = parsed > 0 ? 0 : 2;
    if (parsed != 0)
        return -1;
    *status = 1;
    if (check_paths(o) != 0 || resume_peek(o, argc, o->canonical, status) != 0 ||
        adopt_file_architecture(o) != 0)
        return -1;
    *status = 0;
    return 0;
}

void train_options_free(train_options *o)
{
    optim_flags_free(&o->optim);
    free(o->canonical);
    o->canonical = NULL;
}

void train_options_trainer(const train_options *o, bp_trainer_config *tc)
{
    bp_trainer_config_init(tc);
    tc->epochs = o->epochs;
    tc->batch = (int)o->batch;
    tc->seed = (uint64_t)o->seed;
    tc->shuffle = !o->no_shuffle;
    tc->validation_fraction = o->validation_fraction;
    bp_schedule_parse(o->schedule, &tc->schedule); /* checked when parsed (check_words) */
    tc->warmup_epochs = o->warmup;
    tc->step_epochs = o->step_epochs;
    tc->step_gamma = o->step_gamma;
    tc->plateau_factor = o->plateau_factor;
    tc->plateau_patience = o->plateau_patience;
    tc->patience = o->patience;
    tc->min_delta = o->min_delta;
    tc->checkpoint = o->optim.checkpoint;
}
