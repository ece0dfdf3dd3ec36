/* signals.h — what signals do to a run of the command.
 *
 * SIGINT, SIGTERM and SIGHUP all stop a training run after the current
 * step; it then saves (--save), writes its log and plot, and exits with
 * 128 + the signal's number (130, 143, 129). A second one of them while
 * the run is finishing ends the program at once — except inside a save,
 * where it is held until the file is complete and in place (so no
 * temporary file is left). SIGPIPE is ignored during training, so a
 * closed standard output cannot lose the save: the write error is
 * reported at the end instead. */
#ifndef BP_CLI_SIGNALS_H
#define BP_CLI_SIGNALS_H

#include <signal.h>

void cli_signals_catch(void);
/* The first stopping signal caught, or 0. */
int cli_signals_caught(void);
/* Hold (block) the stopping signals around a file replacement. */
void cli_signals_hold(sigset_t *saved);
void cli_signals_release(const sigset_t *saved);

/* SIGWINCH (the terminal was resized) noted for the progress line;
 * cli_signals_resized says whether one came since it last asked. */
void cli_signals_watch_resize(void);
int cli_signals_resized(void);

#endif
