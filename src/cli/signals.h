/* signals.h — what signals do to a run of the command.
 *
 * SIGINT, SIGTERM and SIGHUP all stop a training run after the current
 * step; it then saves (--save), writes its log and plot, and exits with
 * 128 + the signal's number (130, 143, 129). A second one of them while
 * the run is finishing ends the program at once — except inside a save,
 * where it is held until the file is complete and in place (so no
 * temporary file is left). SIGPIPE is ignored during training, so a
 * closed standard output cannot lose the save: the write error is
 * reported at the end instead. SIGXFSZ (a write beyond `ulimit -f`) is
 * ignored by every command, so such a write fails with EFBIG and is
 * reported like any write error: exit status 1, a message, no temporary
 * file left. */
#ifndef BP_CLI_SIGNALS_H
#define BP_CLI_SIGNALS_H

void cli_signals_catch(void);
/* Makes writes past the file size limit errors (EFBIG), not SIGXFSZ. */
void cli_signals_ignore_file_limit(void);
/* The first stopping signal caught, or 0. */
int cli_signals_caught(void);
/* Holds the stopping signals around a file replacement: a second one
 * then waits until cli_signals_release, which ends the program with it
 * (a handler, not a blocked mask: the signal may be delivered to any
 * thread, BLAS threads included). Holds nest: hold returns the previous
 * state, which release restores. */
int cli_signals_hold(void);
void cli_signals_release(int previous);

/* SIGWINCH (the terminal was resized) noted for the progress line;
 * cli_signals_resized says whether one came since it last asked. */
void cli_signals_watch_resize(void);
int cli_signals_resized(void);

#endif
