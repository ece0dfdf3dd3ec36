/*
 * train_report.c — the trainer's callbacks for `backprop train`
 * (train_run.h): the progress bar after each step, the epoch's line, log
 * row and curves after each epoch (with the test set's figures), and the
 * question the trainer asks after each step: stop? (Ctrl-C, SIGTERM,
 * SIGHUP, --stop-after, or a report that could not be written).
 */
#include <math.h>
#include <stdio.h>

#include "args.h"
#include "epoch_line.h"
#include "scaling.h"
#include "signals.h"
#include "train_run.h"

void train_report_step(void *user, const bp_trainer_step *s)
{
    training_run *run = user;
    if (s->epoch != run->epoch) { /* a new epoch (or the resumed one) */
        progress_start(&run->bar, run->show_progress);
        run->loss_sum = 0;
        run->loss_count = 0;
    }
    run->epoch = (long)s->epoch;
    run->step = (long)s->step;
    run->steps_per_epoch = (long)s->steps_per_epoch;
    if (!isnan(s->loss)) {
        run->loss_sum += s->loss;
        run->loss_count++;
    }
    progress_update(&run->bar, (int)s->epoch + 1, (int)run->options.epochs, (long)s->step,
                    (long)s->steps_per_epoch,
                    run->loss_count ? run->loss_sum / (double)run->loss_count : NAN,
                    (long)s->samples);
    long stop_after = run->options.optim.stop_after;
    if (stop_after > 0 && s->step == s->steps_per_epoch && s->epoch + 1 >= stop_after)
        run->stop_after_reached = 1; /* after this epoch's end */
}

/* The test set's figures after an epoch (rank 0 alone reports). */
static int evaluate_test_set(training_run *run, bp_network *net, double *loss, double *accuracy)
{
    *loss = *accuracy = NAN;
    if (!run->have_test_set)
        return 0;
    if (cli_evaluate(net, &run->test_set, NULL, &run->evaluation) != 0)
        return -1;
    run->have_evaluation = 1;
    *loss = run->evaluation.loss;
    *accuracy = run->classify ? run->evaluation.accuracy : NAN;
    return 0;
}

/* The epoch's line, fitted to a terminal (epoch_line.c). */
static void print_epoch(const training_run *run, const bp_trainer_epoch *e, double test_loss,
                        double test_accuracy, double rate)
{
    const epoch_figures fig = {.epoch = (int)e->epoch,
                               .epochs = (int)run->options.epochs,
                               .train_loss = e->train_loss,
                               .have_val = e->val_samples > 0,
                               .val_loss = e->val_loss,
                               .val_accuracy = e->val_accuracy,
                               .have_test = run->have_test_set,
                               .have_accuracy = run->classify,
                               .test_loss = test_loss,
                               .test_accuracy = test_accuracy,
                               .seconds = e->seconds,
                               .rate = rate};
    char line[320];
    epoch_line_format(line, sizeof line, epoch_line_columns(), &fig);
    printf("%s\n", line);
    fflush(stdout);
}

/* The run's first epoch: a loss far above a guess's says why (scaling.c). */
static void check_first_epoch(training_run *run, const bp_trainer_epoch *e)
{
    if (run->epochs_reported++ > 0)
        return;
    bp_network_desc nd;
    bp_network_describe(e->network, &nd);
    double reference = cli_reference_loss(&run->train_set, nd.loss, nd.sizes[nd.n_layers]);
    cli_warn_exploding(e->train_loss, reference, run->max_abs, run->meta.scaling.n > 0);
}

void train_report_epoch(void *user, const bp_trainer_epoch *e)
{
    training_run *run = user;
    progress_clear(&run->bar);
    if (run->failed || run->launch.rank != 0)
        return;
    double test_loss, test_accuracy;
    if (evaluate_test_set(run, e->network, &test_loss, &test_accuracy) != 0) {
        run->failed = 1;
        return;
    }
    int i = (int)e->epoch - 1;
    run->curves.train_loss[i] = e->train_loss;
    run->curves.test_loss[i] = test_loss;
    run->curves.test_accuracy[i] = test_accuracy;
    run->curves.n = i + 1;
    double rate = (double)e->samples / (e->seconds > 0 ? e->seconds : 1e-9);
    check_first_epoch(run, e);
    if (!run->options.quiet)
        print_epoch(run, e, test_loss, test_accuracy, rate);
    if (run->log == NULL)
        return;
    bp_file_replace_printf(run->log, "%lld,%.6g,%.6g,%.6g,%.3f,%.1f,%.6g,%.6g",
                           (long long)e->epoch, e->train_loss, test_loss, test_accuracy,
                           e->seconds, rate, e->lr, e->train_accuracy);
    if (run->options.validation_fraction > 0)
        bp_file_replace_printf(run->log, ",%.6g,%.6g", e->val_loss, e->val_accuracy);
    bp_file_replace_printf(run->log, "\n");
    if (bp_file_replace_flush(run->log) != BP_OK)
        run->failed = cli_error("--log: %s", bp_last_error()) != 0;
}

int train_report_should_stop(void *user)
{
    training_run *run = user;
    /* From the first signal to the end the others wait (cmd_train releases
     * them), so that a second one cannot cut the checkpoint the trainer now
     * writes short and leave its temporary file (issue 21, item 5). */
    if (cli_signals_caught() && !run->holding) {
        run->held = cli_signals_hold();
        run->holding = 1;
    }
    return cli_signals_caught() || run->stop_after_reached || run->failed;
}
