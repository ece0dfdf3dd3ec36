/* signals.c — SIGINT, SIGTERM, SIGHUP stop a run; SIGPIPE and SIGXFSZ are
 * ignored. */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "signals.h"

/* A signal handler can only reach file-scope state: the command's one
 * piece of global state, what the signals have done. Lock-free atomics,
 * as the handler may run on any thread (BLAS threads included) while the
 * main thread holds. */
static struct {
    atomic_int caught;   /* the first stopping signal, or 0 */
    atomic_int holding;  /* a save is in flight: a second signal waits */
    atomic_int deferred; /* a second signal that arrived while holding */
    atomic_int resized;  /* the terminal resized since the progress line looked */
} state;

static void on_resize(int sig)
{
    (void)sig;
    atomic_store(&state.resized, 1);
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

int cli_signals_resized(void) { return atomic_exchange(&state.resized, 0); }

static const int stopping[] = {SIGINT, SIGTERM, SIGHUP};

/* sig's disposition: SIG_DFL, SIG_IGN or a handler (async-signal-safe). */
static void set_disposition(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* Ends the program as sig's default action does (async-signal-safe). */
static void die_of(int sig)
{
    set_disposition(sig, SIG_DFL);
    raise(sig); /* delivered once this handler returns, or at once outside one */
}

static void on_signal(int sig)
{
    int none = 0;
    if (atomic_compare_exchange_strong(&state.caught, &none, sig))
        return; /* the first: the run stops after the current step */
    if (atomic_load(&state.holding)) {
        int zero = 0;
        atomic_compare_exchange_strong(&state.deferred, &zero, sig);
        return; /* a save is in flight: it ends the program once done */
    }
    die_of(sig);
}

void cli_signals_ignore_file_limit(void) { set_disposition(SIGXFSZ, SIG_IGN); }

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
    set_disposition(SIGPIPE, SIG_IGN);
}

int cli_signals_caught(void) { return atomic_load(&state.caught); }

int cli_signals_hold(void) { return atomic_exchange(&state.holding, 1); }

void cli_signals_release(int previous)
{
    atomic_store(&state.holding, previous);
    int sig = atomic_load(&state.deferred);
    if (!previous && sig != 0)
        die_of(sig);
}
