/* signals.c — SIGINT, SIGTERM, SIGHUP stop a run; SIGPIPE is ignored. */
#include <signal.h>
#include <string.h>

#include "signals.h"

/* A signal handler can only reach file-scope state: the command's only
 * globals are these two (the stopping signal caught; a terminal resize
 * since the progress line last looked). */
static volatile sig_atomic_t caught;
static volatile sig_atomic_t resized;

static void on_resize(int sig)
{
    (void)sig;
    resized = 1;
}

void cli_signals_watch_resize(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_resize;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
}

int cli_signals_resized(void)
{
    int was = resized;
    resized = 0;
    return was;
}

static const int stopping[] = {SIGINT, SIGTERM, SIGHUP};

static void on_signal(int sig)
{
    if (caught == 0)
        caught = sig;
    /* The next one of any of them ends the program (sigaction is
     * async-signal-safe). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (size_t i = 0; i < sizeof stopping / sizeof stopping[0]; i++)
        sigaction(stopping[i], &dfl, NULL);
}

void cli_signals_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof stopping / sizeof stopping[0]; i++)
        sigaddset(&sa.sa_mask, stopping[i]);
    for (size_t i = 0; i < sizeof stopping / sizeof stopping[0]; i++)
        sigaction(stopping[i], &sa, NULL);
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

int cli_signals_caught(void) { return caught; }

void cli_signals_hold(sigset_t *saved)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof stopping / sizeof stopping[0]; i++)
        sigaddset(&set, stopping[i]);
    sigprocmask(SIG_BLOCK, &set, saved);
}

void cli_signals_release(const sigset_t *saved) { sigprocmask(SIG_SETMASK, saved, NULL); }
