/* commands.h — the backprop subcommands; each returns the exit status. */
#ifndef BP_CLI_COMMANDS_H
#define BP_CLI_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_info(int argc, char **argv);

#endif
