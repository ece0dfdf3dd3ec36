/* main.c — the `backprop` command: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

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
    fprintf(out, "usage: backprop COMMAND [flags]   (backprop COMMAND --help for its flags)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
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
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return cli_finish_stdout(commands[i].run(argc - 2, argv + 2));
    fprintf(stderr, "backprop: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
