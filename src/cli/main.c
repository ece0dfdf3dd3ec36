/* main.c — the `backprop` command: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "backprop.h"
#include "commands.h"
#include "outputs.h"
#include "signals.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "train a network (Fashion-MNIST by default) and report accuracy"},
    {"eval", cmd_eval, "loss, accuracy and confusion matrix of a saved model"},
    {"predict", cmd_predict, "one CSV row of outputs per sample"},
    {"compare", cmd_compare, "CPU-vs-GPU gradients of the same network, per layer"},
    {"gradcheck", cmd_gradcheck, "backprop gradients against finite differences"},
    {"trace", cmd_trace, "every quantity of one backprop step on a tiny network"},
    {"info", cmd_info, "version, backends and CUDA devices"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: backprop COMMAND [flags]   (backprop COMMAND --help for its flags)\n"
                 "       backprop --version\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nexamples:\n"
                 "  backprop train                      # Fashion-MNIST, or a generated set\n"
                 "  backprop train --data my.csv --standardize --save m.safetensors\n"
                 "  backprop predict --model m.safetensors --data new.csv --unlabeled -o p.csv\n"
                 "\nExit status: 0 success, 1 a run failed, 2 a bad flag or value, 128+N stopped\n"
                 "by signal N (130 Ctrl-C).\n");
}

int main(int argc, char **argv)
{
    cli_signals_ignore_file_limit(); /* a write past `ulimit -f` is a write error */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("backprop %s\n", bp_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        /* Under mpirun only train is data-parallel: the others run once, on
         * rank 0 (the rest would print the same report again). */
        if (commands[i].run != cmd_train && cli_launcher_size() > 1 && cli_launcher_rank() != 0)
            return 0;
        return cli_finish_stdout(commands[i].run(argc - 2, argv + 2));
    }
    const char *near = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (near == NULL && (cli_edit_distance(argv[1], commands[i].name) <= 2 ||
                             strncmp(argv[1], commands[i].name, strlen(argv[1])) == 0))
            near = commands[i].name;
    if (near)
        cli_error("unknown command '%s'; did you mean %s?", argv[1], near);
    else
        cli_error("unknown command '%s'", argv[1]);
    usage(stderr);
    return 2;
}
