/* messages.h — what the command says on standard error, and how it is
 * labelled: errors "backprop: MESSAGE", warnings "backprop: warning:
 * MESSAGE", notes "backprop: note: MESSAGE". Results go to standard
 * output, never here.
 *
 * Under an MPI launcher (mpirun, srun) rank 0 alone prints notes and
 * warnings. Another rank's error is prefixed with its rank ("backprop:
 * rank 2: ...") and held back for up to ten seconds first: when rank 0
 * failed too (the same file missing on every rank, say) the launcher ends
 * the job meanwhile, and the message rank 0 printed is the only one. The
 * rank is read from the launcher's environment, so the messages need no
 * state of their own. */
#ifndef BP_CLI_MESSAGES_H
#define BP_CLI_MESSAGES_H

/* Prints an error; returns -1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning: something is likely wrong, the run goes on. Never silenced
 * by --quiet. */
void cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A note: harmless information, silenced when quiet. */
void cli_note(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* This process's rank and the world's size as the launcher announces them
 * (0 and 1 without a launcher). */
int cli_launcher_rank(void);
int cli_launcher_size(void);

#endif
