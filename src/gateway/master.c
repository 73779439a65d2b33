/*
 * Worker processes: the master that csgi_server_run_until_signal() becomes
 * when the options ask for workers (include/csgi/server.h; the design is in
 * docs/architecture.md, "Worker processes").
 *
 * The master binds nothing itself: the server's engine bound the
 * listeners (csgi_server_listen) and never starts in the master; each
 * worker adopts those sockets (csgi_server__serve_worker) and the master
 * keeps them open until it returns, so a connection waits in the kernel's
 * queue while any worker lives and none is ever refused.
 *
 * A generation is one load of the source: the options its workers run
 * with and what they build their application from. The master keeps
 * `target` workers of the newest generation. SIGHUP loads a new one
 * (pending): its workers start next to the old ones, and only when all
 * of them said they accept does it become current and the old workers
 * get SIGTERM; if one of them fails, the pending generation goes and the
 * old workers never noticed.
 *
 * The master is one poll(2) loop, no libevent: signals arrive through a
 * self-pipe (the handler writes the signal's number), workers talk
 * through one pipe they all share (fixed-size messages, written whole:
 * they are smaller than PIPE_BUF), deaths are found with waitpid on each
 * worker's pid (never waitpid(-1): the host may have children of its
 * own), and timers are deadlines checked on each turn.
 */
#include "common/alloc.h"
#include "common/log.h"
#include "gateway/server_private.h"

#include <csgi/server.h>
#include <csgi/tls.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CSGI_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CSGI_LEAK_CHECK 1
#endif
#endif
#ifdef CSGI_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

/* Failed starts in a row after which the master gives up: a worker that
   dies before it accepts or within QUICK_DEATH_MS after failed to start;
   workers started together (a crash of all of them) count once. */
#define MAX_QUICK_DEATHS 5
#define QUICK_DEATH_MS   1000
/* The wait before starting a worker after the Nth quick death in a row:
   none after the first, then doubling from BACKOFF_MS. */
#define BACKOFF_MS     100
#define MAX_BACKOFF_MS 5000
/* A worker that has not said it accepts by then is killed. */
#define START_TIMEOUT_MS 60000
/* After a worker's grace period, before SIGKILL. */
#define KILL_MARGIN_MS 5000
/* INT and QUIT: workers cut their requests; SIGKILL after this. */
#define QUICK_STOP_MS 2000

/* What a worker tells its master, written in one piece. */
typedef struct message {
    int pid;
    int what; /* CSGI_SERVER__* */
    int code;
    csgi_load_error error; /* for CSGI_SERVER__FAILED */
} message;

_Static_assert(sizeof(message) <= PIPE_BUF, "a message is written atomically");

/* One load of the source. */
typedef struct generation {
    struct generation *next;
    void *state; /* the source's */
    csgi_server_options options;
    unsigned number;  /* 1, 2, ... */
    unsigned workers; /* living workers of it */
} generation;

enum worker_state { STARTING, READY, STOPPING };

typedef struct worker {
    pid_t pid;
    unsigned long long serial; /* 1, 2, ... in the order started */
    generation *generation;
    enum worker_state state;
    long long started_ms, ready_ms;
    long long kill_ms; /* STOPPING: SIGKILL at this time */
    int proven;        /* lived QUICK_DEATH_MS after ready */
    int recycle;       /* reached max_requests: replaced, then stopped */
    int failed;        /* said it could not build its application */
    int killed;        /* SIGKILL sent */
    /* With a timeout: a heartbeat per loop, shared with the worker. */
    _Atomic long long *beats;
    unsigned loops;
    csgi_server__board_slot *slot; /* its figures, or NULL */
    long long busy_asked_ms;       /* SIGXCPU sent: which request? (0: not) */
    int timed_out;                 /* killed for its timeout */
} worker;

enum stopping { RUNNING, GRACEFUL, QUICK };

typedef struct master {
    csgi_server *server;
    const csgi_server_source_type *type;
    void *source_state;
    generation *generations;   /* all living ones */
    generation *current;       /* what new workers run, unless a reload is pending */
    generation *pending;       /* a reload's, until all its workers accept */
    csgi_server__board *board; /* the workers' figures (stats.c), or NULL */
    unsigned next_number;
    worker *workers; /* oldest first */
    size_t count, capacity;
    unsigned target;
    unsigned target_before_reload; /* back to it when a reload fails */
    enum stopping stopping;
    int result;     /* what csgi_server_run_until_signal returns */
    int ever_ready; /* a worker accepted once: build failures are no longer fatal */
    unsigned quick_deaths;
    unsigned long long next_serial;    /* of the next worker started */
    unsigned long long counted_before; /* workers started before the last counted death */
    long long respawn_ms;              /* no worker starts before this time */
    int messages[2];                   /* workers write, the master reads */
    pid_t pid;
    /* USR2 (or HUP with reload_exec): the new master this one started,
       until it serves (then this one retires) or fails. */
    pid_t upgrade_pid;        /* 0: none to wait for */
    int upgrade_fd;           /* its "I serve" pipe, -1 when closed */
    long long upgrade_end_ms; /* it is killed if it does not serve by then */
    int upgraded;             /* it serves: this master retires */
    char oldbin[4096];        /* the pid file, renamed while an upgrade runs ("": none) */
} master;

/* The self-pipe the signal handler writes to: one master per process. */
static int signal_pipe[2] = {-1, -1};
static atomic_int master_active;

static const int master_signals[] = {SIGTERM, SIGINT,  SIGQUIT, SIGHUP, SIGTTIN,
                                     SIGTTOU, SIGUSR1, SIGUSR2, SIGCHLD};
#define SIGNAL_COUNT (sizeof(master_signals) / sizeof(master_signals[0]))

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define LOG(m, level, ...) csgi_server__log((m)->server, level, __VA_ARGS__)

/* The name operators use: "HUP", as in `kill -HUP`. */
static const char *signal_name(int number)
{
    switch (number) {
    case SIGTERM: return "TERM";
    case SIGINT: return "INT";
    case SIGQUIT: return "QUIT";
    case SIGHUP: return "HUP";
    case SIGTTIN: return "TTIN";
    case SIGTTOU: return "TTOU";
    case SIGUSR1: return "USR1";
    case SIGUSR2: return "USR2";
    case SIGCHLD: return "CHLD";
    default: return "?";
    }
}

static void on_master_signal(int number)
{
    int saved = errno;
    unsigned char byte = (unsigned char)number;
    if (write(signal_pipe[1], &byte, 1) < 0) {
        /* full: the master has plenty to read already */
    }
    errno = saved;
}

void csgi_server__stop_master(void)
{
    if (atomic_load(&master_active))
        on_master_signal(SIGTERM);
}

void csgi_server__reopen_master(void)
{
    if (atomic_load(&master_active))
        on_master_signal(SIGUSR1);
}

void csgi_server__tell_master(int fd, int what, int code, const csgi_load_error *error)
{
    message m;
    memset(&m, 0, sizeof(m));
    m.pid = (int)getpid();
    m.what = what;
    m.code = code;
    if (error)
        m.error = *error;
    ssize_t n;
    do
        n = write(fd, &m, sizeof(m));
    while (n < 0 && errno == EINTR);
}

/* "exited with status 3", "was killed by signal 9 (Killed)". */
static void describe_status(int status, char *buf, size_t size)
{
    if (status < 0)
        snprintf(buf, size, "is gone (reaped elsewhere)");
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
}

/* ---- generations ------------------------------------------------------------------- */

static generation *generation_add(master *m, void *state, const csgi_server_options *options)
{
    generation *g = csgi__calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->state = state;
    g->options = *options;
    g->number = ++m->next_number;
    g->next = m->generations;
    m->generations = g;
    return g;
}

static void generation_release(master *m, generation *g)
{
    for (generation **p = &m->generations; *p; p = &(*p)->next) {
        if (*p == g) {
            *p = g->next;
            break;
        }
    }
    if (m->type->release)
        m->type->release(m->source_state, g->state);
    csgi__free(g);
}

/* Release g if nothing needs it any more. */
static void generation_drop_if_unused(master *m, generation *g)
{
    if (g && g->workers == 0 && g != m->current && g != m->pending)
        generation_release(m, g);
}

/* ---- workers ----------------------------------------------------------------------- */

/* The end of a worker process. _exit, not exit: the atexit handlers are
   the host's, registered in the master for the master (removing a pid
   file, a directory), and must not run once per worker. What the worker
   made is freed by then; a sanitizer build still checks for leaks. */
static void worker_exit(int status) __attribute__((noreturn));

static void worker_exit(int status)
{
    fflush(NULL);
#ifdef CSGI_LEAK_CHECK
    __lsan_do_leak_check();
#endif
    _exit(status);
}

/* In the child, after fork: become a worker of g; never returns. */
static void worker_process(master *m, generation *g, const sigset_t *mask, _Atomic long long *beats,
                           csgi_server__board_slot *slot) __attribute__((noreturn));

static void worker_process(master *m, generation *g, const sigset_t *mask, _Atomic long long *beats,
                           csgi_server__board_slot *slot)
{
    /* Until the worker's loop watches its own signals, they do what they
       would to any process: the master's handler must not run here. */
    for (size_t i = 0; i < SIGNAL_COUNT; i++)
        signal(master_signals[i], SIG_DFL);
    /* But USR1, which the master passes on to every worker, would end one
       that is not watching it yet; its log files are opened after this
       anyway. */
    signal(SIGUSR1, SIG_IGN);
    pthread_sigmask(SIG_SETMASK, mask, NULL);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    signal_pipe[0] = signal_pipe[1] = -1;
    atomic_store(&master_active, 0);
    close(m->messages[0]);
    if (m->upgrade_fd >= 0)
        close(m->upgrade_fd);
    csgi_server__upgrade_forget(); /* the master says it serves, not a worker */
    csgi_server__board_join(m->board, slot);
    int fd = m->messages[1];
    /* A master that dies without stopping its workers (SIGKILL) stops them
       still. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != m->pid)
        worker_exit(0);

    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    /* The application is built, and serves, as the options' user. */
    int rc = csgi_server__drop_privileges(m->server, error.text, sizeof(error.text));
    if (rc != 0) {
        csgi_server__tell_master(fd, CSGI_SERVER__FAILED, rc, &error);
        worker_exit(3);
    }
    csgi_app *app = NULL;
    rc = m->type->build(m->source_state, &app, g->state, &error);
    if (rc == 0 && !app)
        rc = CSGI_EINVAL;
    if (rc != 0) {
        if (!error.text[0])
            snprintf(error.text, sizeof(error.text), "%s", csgi_strerror(rc));
        csgi_server__tell_master(fd, CSGI_SERVER__FAILED, rc, &error);
        worker_exit(3);
    }
    rc = csgi_server__serve_worker(m->server, app, &g->options, fd, beats);
    worker_exit(rc == 0 ? 0 : 1);
}

/* The heartbeats of a worker of g, one per loop, in memory the worker
   shares (NULL without a timeout, or when it cannot be had: logged). */
static _Atomic long long *beats_new(master *m, const generation *g, unsigned *loops)
{
    *loops = g->options.threads ? g->options.threads : 1;
    if (!g->options.busy_timeout_ms)
        return NULL;
    void *p = mmap(NULL, *loops * sizeof(_Atomic long long), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        LOG(m, CSGI_LOG_ERROR, "cannot watch a worker for its timeout: mmap: %s", strerror(errno));
        return NULL;
    }
    _Atomic long long *beats = p;
    long long now = now_ms();
    for (unsigned i = 0; i < *loops; i++)
        atomic_init(&beats[i], now);
    return beats;
}

static void beats_free(_Atomic long long *beats, unsigned loops)
{
    if (beats)
        munmap((void *)beats, loops * sizeof(*beats));
}

static int spawn(master *m, generation *g)
{
    if (m->count == m->capacity) {
        size_t capacity = m->capacity ? m->capacity * 2 : 8;
        worker *grown = csgi__realloc(m->workers, capacity * sizeof(*grown));
        if (!grown)
            return CSGI_ENOMEM;
        m->workers = grown;
        m->capacity = capacity;
    }
    unsigned loops = 0;
    _Atomic long long *beats = beats_new(m, g, &loops);
    csgi_server__board_slot *slot = csgi_server__board_claim(m->board);
    if (m->board && !slot)
        LOG(m, CSGI_LOG_WARNING, "the new worker's figures are not counted: every slot is taken");
    sigset_t all, old;
    sigfillset(&all);
    /* Blocked across fork: a signal to the child before it replaced the
       master's handler would look like one to the master. */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    fflush(NULL); /* or both processes would write what is buffered */
    pid_t pid = fork();
    if (pid == 0)
        worker_process(m, g, &old, beats, slot);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        beats_free(beats, loops);
        csgi_server__board_release(m->board, slot);
        LOG(m, CSGI_LOG_ERROR, "cannot start a worker: fork: %s", strerror(e));
        return CSGI_ESYSTEM;
    }
    worker *w = &m->workers[m->count++];
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    w->serial = ++m->next_serial;
    w->generation = g;
    w->state = STARTING;
    w->started_ms = now_ms();
    w->beats = beats;
    w->loops = loops;
    w->slot = slot;
    csgi_server__board_taken(slot, pid);
    g->workers++;
    LOG(m, CSGI_LOG_INFO, "worker %d started (generation %u)", (int)pid, g->number);
    return 0;
}

static worker *find_worker(master *m, pid_t pid)
{
    for (size_t i = 0; i < m->count; i++)
        if (m->workers[i].pid == pid)
            return &m->workers[i];
    return NULL;
}

/* Send sig to w and give it until its grace period (plus a margin) ends,
   or QUICK_STOP_MS for a quick stop, before SIGKILL. */
static void stop_worker(master *m, worker *w, int sig)
{
    kill(w->pid, sig);
    long long allowed = sig == SIGTERM ? (long long)(w->generation->options.grace_timeout_ms
                                                         ? w->generation->options.grace_timeout_ms
                                                         : 10000) +
                                             KILL_MARGIN_MS
                                       : QUICK_STOP_MS;
    long long kill_ms = now_ms() + allowed;
    if (w->state != STOPPING || kill_ms < w->kill_ms)
        w->kill_ms = kill_ms;
    w->state = STOPPING;
}

/* Workers that count towards target: of generation g, not stopping, not
   replaced for max_requests. */
static unsigned counted(const master *m, const generation *g, int ready_only)
{
    unsigned n = 0;
    for (size_t i = 0; i < m->count; i++) {
        const worker *w = &m->workers[i];
        if (w->generation == g && w->state != STOPPING && !w->recycle &&
            (!ready_only || w->state == READY))
            n++;
    }
    return n;
}

/* ---- stopping, reloading ------------------------------------------------------------ */

static void stop_all(master *m, enum stopping how, int result)
{
    if (m->stopping == QUICK || (how == GRACEFUL && m->stopping == GRACEFUL))
        return;
    m->stopping = how;
    if (result && !m->result)
        m->result = result;
    for (size_t i = 0; i < m->count; i++) {
        worker *w = &m->workers[i];
        if (how == QUICK)
            stop_worker(m, w, SIGQUIT);
        else if (w->state != STOPPING)
            stop_worker(m, w, SIGTERM);
    }
}

/* The pending generation's workers go; the current ones keep serving. */
static void abandon_reload(master *m)
{
    generation *g = m->pending;
    if (!g)
        return;
    m->pending = NULL;
    m->target = m->target_before_reload;
    for (size_t i = 0; i < m->count; i++)
        if (m->workers[i].generation == g && m->workers[i].state != STOPPING)
            stop_worker(m, &m->workers[i], SIGTERM);
    generation_drop_if_unused(m, g);
}

/* Every worker of the pending generation accepts: it becomes current, and
   the workers of the older ones stop gracefully. */
static void promote(master *m)
{
    generation *g = m->pending;
    m->pending = NULL;
    generation *old = m->current;
    m->current = g;
    unsigned retired = 0;
    for (size_t i = 0; i < m->count; i++) {
        worker *w = &m->workers[i];
        if (w->generation != g && w->state != STOPPING) {
            stop_worker(m, w, SIGTERM);
            retired++;
        }
    }
    LOG(m, CSGI_LOG_WARNING,
        "reload: generation %u serves with %u workers; stopping %u workers of the old one",
        g->number, counted(m, g, 1), retired);
    generation_drop_if_unused(m, old);
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0) || (!a && b && !b[0]) || (!b && a && !a[0]);
}

/* The keys a reload cannot change, because they belong to this process
   (its directory, its user, its pid file) or to the listeners it holds:
   named in a warning, so that a changed value does not pass unnoticed. */
static void warn_restart_only(master *m, const csgi_server_options *old,
                              const csgi_server_options *now)
{
    char names[256] = "";
    size_t len = 0;
#define CHANGED(cond, name)                                                                     \
    if (cond)                                                                                   \
    len += (size_t)snprintf(names + len, len < sizeof(names) ? sizeof(names) - len : 0, "%s%s", \
                            len ? ", " : "", name)
    CHANGED(!same_text(old->user, now->user), "user");
    CHANGED(!same_text(old->group, now->group), "group");
    CHANGED(old->umask != now->umask, "umask");
    CHANGED(!same_text(old->chdir, now->chdir), "chdir");
    CHANGED(!same_text(old->pidfile, now->pidfile), "pidfile");
    CHANGED(!same_text(old->error_log, now->error_log), "error_log");
    CHANGED(old->backlog != now->backlog, "backlog");
    CHANGED(old->unix_mode != now->unix_mode, "unix_mode");
    CHANGED(!same_text(old->unix_owner, now->unix_owner), "unix_owner");
    CHANGED(!same_text(old->unix_group, now->unix_group), "unix_group");
#undef CHANGED
    if (len)
        LOG(m, CSGI_LOG_WARNING,
            "reload: %s changed; a reload keeps the master's (upgrade with USR2, or restart, to "
            "change them)",
            names);
}

static void reload(master *m)
{
    /* The TLS listeners' certificates first: the new workers fork with
       them (a listener whose files fail keeps its old ones, logged). */
    csgi_server_reload_tls(m->server);
    generation *base = m->pending ? m->pending : m->current;
    csgi_server_options options = base->options;
    void *state = NULL;
    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    int rc = m->type->load(m->source_state, &state, &options, &error);
    if (rc != 0) {
        char text[2048];
        if (!error.text[0])
            snprintf(error.text, sizeof(error.text), "%s", csgi_strerror(rc));
        csgi_load_error_format(&error, text, sizeof(text));
        LOG(m, CSGI_LOG_ERROR, "reload failed: %s; the %u workers of generation %u keep serving",
            text, counted(m, m->current, 0), m->current->number);
        return;
    }
    options.version = CSGI_SERVER_OPTIONS_VERSION;
    warn_restart_only(m, &base->options, &options);
    if (options.workers == 0 || options.workers > 1024) {
        LOG(m, CSGI_LOG_WARNING,
            "reload: workers = %u is not a number of workers (serving in one process needs a "
            "restart); keeping %u",
            options.workers, m->target);
        options.workers = m->target;
    }
    generation *g = generation_add(m, state, &options);
    if (!g) {
        if (m->type->release)
            m->type->release(m->source_state, state);
        LOG(m, CSGI_LOG_ERROR, "reload failed: out of memory; the old workers keep serving");
        return;
    }
    if (m->pending) {
        LOG(m, CSGI_LOG_WARNING,
            "reload: generation %u was not ready yet; generation %u replaces it",
            m->pending->number, g->number);
        abandon_reload(m);
    }
    m->pending = g;
    m->target_before_reload = m->target;
    m->target = options.workers;
    LOG(m, CSGI_LOG_WARNING,
        "reload: starting %u workers of generation %u; the old ones serve until they accept",
        m->target, g->number);
}

/* ---- upgrading in place ------------------------------------------------------------ */

/* This process's arguments, as it was started: argv[0] to argv[*count -
   1] and a NULL (one allocation: free the array). NULL on failure. */
static char **own_arguments(void)
{
    FILE *f = fopen("/proc/self/cmdline", "re");
    if (!f)
        return NULL;
    char text[65536];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    int whole = feof(f);
    fclose(f);
    if (!len || !whole)
        return NULL;
    text[len] = '\0';
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += text[i] == '\0';
    if (text[len - 1] != '\0')
        count++;
    char **argv = csgi__malloc((count + 1) * sizeof(char *) + len + 1);
    if (!argv)
        return NULL;
    char *copy = (char *)(argv + count + 1);
    memcpy(copy, text, len + 1);
    size_t n = 0;
    for (char *p = copy; p < copy + len && n < count; p += strlen(p) + 1)
        argv[n++] = p;
    argv[n] = NULL;
    return argv;
}

/* The environment for the new master: this one's without the variables
   the child sets (the three slots at the end are its; NULL after). */
static char **upgrade_environment(char *slots[3])
{
    extern char **environ;
    size_t count = 0;
    while (environ[count])
        count++;
    char **envp = csgi__malloc((count + 4) * sizeof(char *));
    if (!envp)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const char *e = environ[i];
        if (strncmp(e, "LISTEN_PID=", 11) == 0 || strncmp(e, "LISTEN_FDS=", 11) == 0 ||
            strncmp(e, "LISTEN_FDNAMES=", 15) == 0 ||
            strncmp(e, CSGI_SERVER__UPGRADE_ENV "=", sizeof(CSGI_SERVER__UPGRADE_ENV)) == 0)
            continue;
        envp[n++] = environ[i];
    }
    for (int i = 0; i < 3; i++)
        envp[n++] = slots[i];
    envp[n] = NULL;
    return envp;
}

/* In the new master's process, after fork: the listeners become
   descriptors 3, 4, ... (as systemd passes them), the pipe the next one,
   and the program starts again. Never returns. */
static void upgrade_exec(master *m, char **argv, char **envp, char *slots[3], int ready,
                         const sigset_t *mask) __attribute__((noreturn));

static void upgrade_exec(master *m, char **argv, char **envp, char *slots[3], int ready,
                         const sigset_t *mask)
{
    csgi_http__engine *engine = m->server->engine;
    size_t n = csgi_http__engine_listener_count(engine);
    int high[1024 + 1];
    if (n > 1024)
        _exit(126);
    /* First out of the way of 3 .. 3 + n (close-on-exec: the copies go). */
    int low = 3 + (int)n + 1;
    for (size_t i = 0; i < n; i++)
        high[i] = fcntl(csgi_http__engine_listener_fd(engine, i), F_DUPFD_CLOEXEC, low);
    high[n] = fcntl(ready, F_DUPFD_CLOEXEC, low);
    for (size_t i = 0; i <= n; i++)
        if (high[i] < 0 || dup2(high[i], 3 + (int)i) < 0) /* dup2: kept across exec */
            _exit(126);
    snprintf(slots[0], 32, "LISTEN_PID=%ld", (long)getpid());
    snprintf(slots[1], 32, "LISTEN_FDS=%zu", n);
    snprintf(slots[2], 32, "%s=%d", CSGI_SERVER__UPGRADE_ENV, 3 + (int)n);
    const char *dir = csgi_server__start_dir();
    if (dir && chdir(dir) != 0)
        _exit(126);
    pthread_sigmask(SIG_SETMASK, mask, NULL);
    execvpe(argv[0], argv, envp);
    int e = errno;
    char line[512];
    int len =
        snprintf(line, sizeof(line), "csgi: upgrade: cannot run %s: %s\n", argv[0], strerror(e));
    if (write(2, line, len > 0 && (size_t)len < sizeof(line) ? (size_t)len : 0) < 0) {
        /* the old master says it failed anyway */
    }
    _exit(127);
}

/* Put the pid file back as it was before the upgrade. */
static void upgrade_restore_pidfile(master *m)
{
    if (m->oldbin[0] && m->server->pidfile)
        rename(m->oldbin, m->server->pidfile);
    m->oldbin[0] = '\0';
}

/* USR2, or HUP with reload_exec: start the program again as a new master
   that inherits the listeners; this one serves until it does. */
static void upgrade(master *m, const char *signal)
{
    if (m->upgrade_pid) {
        LOG(m, CSGI_LOG_WARNING, "signal %s: the new master %d is starting already; ignored",
            signal, (int)m->upgrade_pid);
        return;
    }
    char **argv = own_arguments();
    char slot_text[3][32];
    char *slots[3] = {slot_text[0], slot_text[1], slot_text[2]};
    char **envp = argv ? upgrade_environment(slots) : NULL;
    int ready[2] = {-1, -1};
    /* A socket, not a pipe: a new master whose old one is gone gets EPIPE
       from send(MSG_NOSIGNAL), not SIGPIPE. */
    if (!envp || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ready) != 0) {
        LOG(m, CSGI_LOG_ERROR, "signal %s: cannot upgrade: %s; the old workers keep serving",
            signal, argv && envp ? strerror(errno) : "cannot read this program's arguments");
        csgi__free(argv);
        csgi__free(envp);
        return;
    }
    /* As nginx does: the new master writes the pid file, this one's waits
       beside it until the upgrade is over. */
    const char *pidfile = m->server->pidfile;
    if (pidfile &&
        (size_t)snprintf(m->oldbin, sizeof(m->oldbin), "%s.oldbin", pidfile) < sizeof(m->oldbin)) {
        if (rename(pidfile, m->oldbin) != 0)
            m->oldbin[0] = '\0';
    } else {
        m->oldbin[0] = '\0';
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        upgrade_exec(m, argv, envp, slots, ready[1], &old);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(ready[1]);
    csgi__free(argv);
    csgi__free(envp);
    if (pid < 0) {
        close(ready[0]);
        upgrade_restore_pidfile(m);
        LOG(m, CSGI_LOG_ERROR, "signal %s: cannot upgrade: fork: %s; the old workers keep serving",
            signal, strerror(e));
        return;
    }
    fcntl(ready[0], F_SETFL, fcntl(ready[0], F_GETFL) | O_NONBLOCK);
    m->upgrade_pid = pid;
    m->upgrade_fd = ready[0];
    m->upgrade_end_ms = now_ms() + START_TIMEOUT_MS;
    LOG(m, CSGI_LOG_WARNING,
        "signal %s: upgrading: new master %d; the %u workers of generation %u serve until its "
        "workers accept",
        signal, (int)pid, counted(m, m->current, 0), m->current->number);
}

/* The upgrade is over: done (the new master serves) or failed (why). */
static void upgrade_end(master *m, const char *why)
{
    if (m->upgrade_fd >= 0)
        close(m->upgrade_fd);
    m->upgrade_fd = -1;
    if (!why) {
        LOG(m, CSGI_LOG_WARNING,
            "upgrade: the new master %d serves; the %u old workers stop gracefully, then this "
            "master exits",
            (int)m->upgrade_pid, counted(m, m->current, 0));
        m->upgraded = 1;
        m->upgrade_pid = 0; /* it outlives this master: not ours to wait for */
        /* Its listeners now: they stay open for it, files and all. */
        csgi_http__engine_disown_listeners(m->server->engine);
        stop_all(m, GRACEFUL, 0);
        return;
    }
    upgrade_restore_pidfile(m);
    LOG(m, CSGI_LOG_ERROR,
        "upgrade failed: the new master %d %s; the %u workers of generation %u "
        "keep serving",
        (int)m->upgrade_pid, why, counted(m, m->current, 0), m->current->number);
    /* Reaped in upgrade_reap; stopped first if it still runs (killed if
       it does not stop). */
    kill(m->upgrade_pid, SIGQUIT);
    m->upgrade_end_ms = now_ms() + QUICK_STOP_MS;
}

/* Its byte, its end (EOF: it exited, or closed the pipe unsaid). */
static void upgrade_read(master *m)
{
    char byte;
    ssize_t n = read(m->upgrade_fd, &byte, 1);
    if (n == 1)
        upgrade_end(m, NULL);
    else if (n == 0)
        upgrade_end(m, "stopped before it served (its lines above say why)");
}

static void upgrade_reap(master *m)
{
    if (!m->upgrade_pid)
        return;
    int status = 0;
    pid_t r = waitpid(m->upgrade_pid, &status, WNOHANG);
    if (r == 0 && now_ms() >= m->upgrade_end_ms) {
        if (m->upgrade_fd >= 0) {
            upgrade_end(m, "did not serve within 60 s"); /* QUIT, then KILL */
        } else {
            kill(m->upgrade_pid, SIGKILL);
            m->upgrade_end_ms = LLONG_MAX;
        }
    }
    if (r == 0)
        return;
    if (r != m->upgrade_pid && !(r < 0 && errno == ECHILD))
        return;
    if (m->upgrade_fd >= 0) {
        char how[128];
        describe_status(r < 0 ? -1 : status, how, sizeof(how));
        upgrade_end(m, how);
    }
    m->upgrade_pid = 0;
}

/* ---- what happens ------------------------------------------------------------------- */

static void on_signal(master *m, int number)
{
    switch (number) {
    case SIGTERM:
        LOG(m, CSGI_LOG_WARNING, "signal %s: stopping the workers gracefully", signal_name(number));
        stop_all(m, GRACEFUL, 0);
        break;
    case SIGINT:
    case SIGQUIT:
        LOG(m, CSGI_LOG_WARNING, "signal %s: stopping the workers now", signal_name(number));
        stop_all(m, QUICK, 0);
        break;
    case SIGHUP:
        if (m->stopping)
            break;
        if (m->current->options.reload_exec) {
            upgrade(m, signal_name(number)); /* new code too: a new master */
            break;
        }
        LOG(m, CSGI_LOG_WARNING, "signal %s: reloading %s", signal_name(number),
            m->type->name ? m->type->name : "the configuration");
        reload(m);
        break;
    case SIGTTIN:
        if (m->stopping || m->target >= 1024)
            break;
        m->target++;
        LOG(m, CSGI_LOG_WARNING, "signal %s: %u workers", signal_name(number), m->target);
        break;
    case SIGTTOU:
        if (m->stopping || m->target <= 1)
            break;
        m->target--;
        LOG(m, CSGI_LOG_WARNING, "signal %s: %u workers", signal_name(number), m->target);
        break;
    case SIGUSR1:
        /* The master reopens its error log (its standard error), and the
           workers reopen theirs and their access logs. The master keeps
           no access log (a buffer it held would be copied into every
           worker it forks). */
        if (m->server->error_log) {
            char why[300];
            if (csgi_server__error_log_open(m->server, why, sizeof(why)) != 0)
                LOG(m, CSGI_LOG_ERROR, "signal %s: %s; the log goes on in the old file",
                    signal_name(number), why);
        }
        LOG(m, CSGI_LOG_INFO, "signal %s: the workers reopen their log files", signal_name(number));
        for (size_t i = 0; i < m->count; i++)
            kill(m->workers[i].pid, SIGUSR1);
        break;
    case SIGUSR2:
        if (!m->stopping)
            upgrade(m, signal_name(number));
        break;
    default: break; /* SIGCHLD: the turn reaps */
    }
}

static void on_message(master *m, const message *msg)
{
    worker *w = find_worker(m, (pid_t)msg->pid);
    if (!w)
        return;
    generation *g = w->generation;
    switch (msg->what) {
    case CSGI_SERVER__READY:
        if (w->state != STARTING)
            break;
        w->state = READY;
        w->ready_ms = now_ms();
        LOG(m, CSGI_LOG_INFO, "worker %d accepts (generation %u)", (int)w->pid, g->number);
        if (g == m->current)
            m->ever_ready = 1;
        /* A worker that reached max_requests stops once another accepts. */
        for (size_t i = 0; i < m->count; i++) {
            worker *old = &m->workers[i];
            if (old->recycle && old->state != STOPPING) {
                stop_worker(m, old, SIGTERM);
                break;
            }
        }
        break;
    case CSGI_SERVER__FAILED: {
        w->failed = 1;
        char text[2048];
        csgi_load_error_format(&msg->error, text, sizeof(text));
        if (g == m->pending) {
            LOG(m, CSGI_LOG_ERROR,
                "reload failed: worker %d cannot build the application: %s; the %u workers of "
                "generation %u keep serving",
                (int)w->pid, text, counted(m, m->current, 0), m->current->number);
            abandon_reload(m);
        } else if (!m->ever_ready) {
            LOG(m, CSGI_LOG_ERROR, "worker %d cannot build the application: %s; stopping",
                (int)w->pid, text);
            if (!m->server->start_failure.text[0])
                m->server->start_failure = msg->error;
            stop_all(m, GRACEFUL, CSGI_EWORKERS);
        } else {
            LOG(m, CSGI_LOG_ERROR, "worker %d cannot build the application: %s", (int)w->pid, text);
        }
        break;
    }
    case CSGI_SERVER__BUSY: /* one per stuck loop: each is logged */
        if (!w->busy_asked_ms || (w->killed && !w->timed_out))
            break;
        LOG(m, CSGI_LOG_ERROR,
            "timeout: worker %d has been in %s for %d.%d s (loop %d; timeout = %u s): killing it",
            (int)w->pid, msg->error.text[0] ? msg->error.text : "no request", msg->code / 1000,
            msg->code % 1000 / 100, msg->error.line, g->options.busy_timeout_ms / 1000);
        if (!w->killed)
            kill(w->pid, SIGKILL);
        w->killed = 1;
        w->timed_out = 1;
        break;
    case CSGI_SERVER__RECYCLE:
        if (w->state == STOPPING || w->recycle)
            break;
        w->recycle = 1;
        LOG(m, CSGI_LOG_INFO,
            "worker %d reached max_requests (%u): it stops once its replacement accepts",
            (int)w->pid, g->options.max_requests);
        break;
    default: break;
    }
}

static void read_messages(master *m)
{
    message msg;
    for (;;) {
        ssize_t n = read(m->messages[0], &msg, sizeof(msg));
        if (n == (ssize_t)sizeof(msg))
            on_message(m, &msg);
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break; /* EAGAIN: nothing more (messages come whole) */
    }
}

/* w (removed by the caller) ended with status (-1: unknown). */
static void on_death(master *m, worker *w, int status)
{
    char how[128];
    describe_status(status, how, sizeof(how));
    generation *g = w->generation;
    g->workers--;
    long long now = now_ms();
    beats_free(w->beats, w->loops);
    csgi_server__board_release(m->board, w->slot);
    if (w->state == STOPPING || m->stopping) {
        LOG(m, w->killed ? CSGI_LOG_WARNING : CSGI_LOG_INFO, "worker %d %s", (int)w->pid, how);
    } else if (w->timed_out) {
        LOG(m, CSGI_LOG_WARNING, "worker %d %s for its timeout; a new one starts", (int)w->pid,
            how);
    } else if (g == m->pending) {
        LOG(m, CSGI_LOG_ERROR,
            "reload failed: new worker %d %s before the reload was done; the %u workers of "
            "generation %u keep serving",
            (int)w->pid, how, counted(m, m->current, 0), m->current->number);
        abandon_reload(m);
    } else if (w->failed && !m->ever_ready) {
        /* Its message said why; the master is stopping already. */
    } else if ((w->state == STARTING || now - w->ready_ms < QUICK_DEATH_MS) &&
               w->serial <= m->counted_before) {
        /* Started with the one whose death was counted: the same failure,
           not one more attempt. */
        LOG(m, CSGI_LOG_WARNING, "worker %d %s right after it started", (int)w->pid, how);
    } else if (w->state == STARTING || now - w->ready_ms < QUICK_DEATH_MS) {
        m->quick_deaths++;
        m->counted_before = m->next_serial;
        if (m->quick_deaths >= MAX_QUICK_DEATHS) {
            LOG(m, CSGI_LOG_ERROR,
                "worker %d %s right after it started, the %uth in a row: stopping (the "
                "application or its configuration fails; see the lines above)",
                (int)w->pid, how, m->quick_deaths);
            stop_all(m, GRACEFUL, CSGI_EWORKERS);
        } else {
            long long delay = 0;
            for (unsigned i = 1; i < m->quick_deaths && delay < MAX_BACKOFF_MS; i++)
                delay = delay ? delay * 2 : BACKOFF_MS;
            if (delay > MAX_BACKOFF_MS)
                delay = MAX_BACKOFF_MS;
            if (now + delay > m->respawn_ms)
                m->respawn_ms = now + delay;
            LOG(m, CSGI_LOG_WARNING,
                "worker %d %s right after it started (%u in a row); a new one starts in %lld ms",
                (int)w->pid, how, m->quick_deaths, delay);
        }
    } else {
        LOG(m, CSGI_LOG_WARNING, "worker %d %s; a new one starts", (int)w->pid, how);
    }
    generation_drop_if_unused(m, g);
}

static void reap(master *m)
{
    pid_t dead[64];
    int statuses[64];
    size_t dead_count = 0;
    for (size_t i = 0; i < m->count && dead_count < 64; i++) {
        int status = 0;
        pid_t r = waitpid(m->workers[i].pid, &status, WNOHANG);
        if (r == m->workers[i].pid || (r < 0 && errno == ECHILD)) {
            dead[dead_count] = m->workers[i].pid;
            statuses[dead_count++] = r < 0 ? -1 : status;
        }
    }
    if (!dead_count)
        return;
    /* What they said before they died comes first (FAILED). */
    read_messages(m);
    for (size_t d = 0; d < dead_count; d++) {
        worker *w = find_worker(m, dead[d]);
        if (!w)
            continue;
        worker copy = *w;
        size_t index = (size_t)(w - m->workers);
        memmove(w, w + 1, (m->count - index - 1) * sizeof(*w));
        m->count--;
        on_death(m, &copy, statuses[d]);
    }
}

/* With a timeout: a serving worker with a loop that has not beaten for
   that long and one beat interval more (its last beat may have come that
   long before the callback that holds it) is asked (SIGXCPU) which request
   it is in; its answer (on_message) or, a second later, the master kills
   it. */
static void check_busy(master *m, worker *w, long long now)
{
    if (!w->beats || w->killed || w->state != READY)
        return;
    if (w->busy_asked_ms) {
        if (now - w->busy_asked_ms >= 1000) {
            LOG(m, CSGI_LOG_ERROR,
                "timeout: worker %d has a loop busy for over %u s and does not say with what: "
                "killing it",
                (int)w->pid, w->generation->options.busy_timeout_ms / 1000);
            kill(w->pid, SIGKILL);
            w->killed = 1;
            w->timed_out = 1;
        }
        return;
    }
    unsigned timeout = w->generation->options.busy_timeout_ms;
    long long stuck = (long long)timeout + csgi_server__heartbeat_ms(timeout);
    for (unsigned i = 0; i < w->loops; i++) {
        long long beat = atomic_load_explicit(&w->beats[i], memory_order_relaxed);
        if (now - beat >= stuck) {
            w->busy_asked_ms = now;
            kill(w->pid, SIGXCPU);
            return;
        }
    }
}

/* Deadlines: SIGKILL for workers that do not stop, or do not start, or
   are stuck past their timeout. */
static void check_timers(master *m)
{
    long long now = now_ms();
    for (size_t i = 0; i < m->count; i++) {
        worker *w = &m->workers[i];
        check_busy(m, w, now);
        if (w->state == STOPPING && !w->killed && now >= w->kill_ms) {
            LOG(m, CSGI_LOG_WARNING, "worker %d did not stop in time: killing it", (int)w->pid);
            kill(w->pid, SIGKILL);
            w->killed = 1;
        } else if (w->state == STARTING && now - w->started_ms >= START_TIMEOUT_MS) {
            LOG(m, CSGI_LOG_ERROR, "worker %d did not start accepting within %d s: killing it",
                (int)w->pid, START_TIMEOUT_MS / 1000);
            kill(w->pid, SIGKILL);
            w->killed = 1;
            w->started_ms = now; /* once */
        } else if (w->state == READY && !w->proven && now - w->ready_ms >= QUICK_DEATH_MS) {
            w->proven = 1;
            m->quick_deaths = 0;
            m->counted_before = 0;
        }
    }
}

/* Keep target workers of the newest generation: start the missing ones,
   stop the extra ones (oldest first). */
static void keep_count(master *m)
{
    if (m->stopping)
        return;
    generation *g = m->pending ? m->pending : m->current;
    unsigned have = counted(m, g, 0);
    if (now_ms() >= m->respawn_ms) {
        while (have < m->target) {
            if (spawn(m, g) != 0) {
                m->quick_deaths++;
                m->respawn_ms = now_ms() + BACKOFF_MS * 10;
                if (m->quick_deaths >= MAX_QUICK_DEATHS)
                    stop_all(m, GRACEFUL, CSGI_ESYSTEM);
                break;
            }
            have++;
        }
    }
    for (size_t i = 0; i < m->count && have > m->target; i++) {
        worker *w = &m->workers[i];
        if (w->generation == g && w->state != STOPPING && !w->recycle) {
            stop_worker(m, w, SIGTERM);
            have--;
        }
    }
    if (m->pending && counted(m, m->pending, 1) >= m->target)
        promote(m);
}

/* Milliseconds until the next deadline (at most a second). */
static int next_timeout(const master *m)
{
    long long now = now_ms(), next = now + 1000;
    if (!m->stopping && m->respawn_ms > now && m->respawn_ms < next)
        next = m->respawn_ms;
    for (size_t i = 0; i < m->count; i++) {
        const worker *w = &m->workers[i];
        long long at = w->state == STOPPING && !w->killed ? w->kill_ms
                       : w->state == READY && !w->proven  ? w->ready_ms + QUICK_DEATH_MS
                                                          : next;
        if (at < next)
            next = at;
        /* A timeout is checked at a quarter of its length, as the loops beat. */
        if (w->beats && !w->killed) {
            unsigned quarter = w->generation->options.busy_timeout_ms / 4;
            at = w->busy_asked_ms ? w->busy_asked_ms + 1000 : now + (quarter < 50 ? 50 : quarter);
            if (at < next)
                next = at;
        }
    }
    return next > now ? (int)(next - now) : 0;
}

/* ---- the loop ----------------------------------------------------------------------- */

static int open_pipes(master *m)
{
    if (pipe2(m->messages, O_CLOEXEC) != 0)
        return CSGI_ESYSTEM;
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        close(m->messages[0]);
        close(m->messages[1]);
        return CSGI_ESYSTEM;
    }
    /* Workers write whole messages and may wait; the master never does. */
    fcntl(m->messages[0], F_SETFL, fcntl(m->messages[0], F_GETFL) | O_NONBLOCK);
    return 0;
}

static void close_pipes(master *m)
{
    close(m->messages[0]);
    close(m->messages[1]);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    signal_pipe[0] = signal_pipe[1] = -1;
}

int csgi_server__run_master(csgi_server *server)
{
    int expected = 0;
    if (!server->source_type || server->started)
        return CSGI_ESTATE; /* a master runs once: its first generation is gone */
    if (!atomic_compare_exchange_strong(&master_active, &expected, 1))
        return CSGI_ESTATE;
    master m;
    memset(&m, 0, sizeof(m));
    m.server = server;
    m.type = server->source_type;
    m.source_state = server->source_state;
    m.target = server->workers;
    m.pid = getpid();
    m.upgrade_fd = -1;
    m.board = csgi_server__board_new();
    if (!m.board)
        LOG(&m, CSGI_LOG_WARNING, "no shared figures for the workers: mmap: %s", strerror(errno));
    int err = open_pipes(&m);
    generation *first = err ? NULL : generation_add(&m, server->generation, &server->options);
    if (!err && !first) {
        close_pipes(&m);
        err = CSGI_ENOMEM;
    }
    if (err) {
        csgi_server__board_free(m.board);
        atomic_store(&master_active, 0);
        return err;
    }
    server->generation = NULL; /* the master's now */
    server->started = 1;
    m.current = first;

    struct sigaction action, previous[SIGNAL_COUNT];
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_master_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < SIGNAL_COUNT; i++)
        sigaction(master_signals[i], &action, &previous[i]);
    atomic_store(&server->master_running, 1);

    csgi_server__print_listeners(server);
    LOG(&m, CSGI_LOG_INFO, "master %d: %u workers (%s)", (int)m.pid, m.target,
        m.type->name ? m.type->name : "workers");
    for (;;) {
        keep_count(&m);
        /* An old master that started this one retires once it serves. */
        if (!m.stopping && !m.pending && counted(&m, m.current, 1) >= m.target)
            csgi_server__upgrade_ready();
        if (m.stopping && m.count == 0 && !(m.upgrade_pid && m.upgrade_fd < 0))
            break;
        struct pollfd fds[3] = {
            {signal_pipe[0], POLLIN, 0}, {m.messages[0], POLLIN, 0}, {m.upgrade_fd, POLLIN, 0}};
        if (poll(fds, m.upgrade_fd >= 0 ? 3 : 2, next_timeout(&m)) < 0 && errno != EINTR) {
            LOG(&m, CSGI_LOG_ERROR, "poll failed: %s; stopping", strerror(errno));
            stop_all(&m, QUICK, CSGI_ESYSTEM);
        }
        unsigned char signals[64];
        ssize_t n;
        while ((n = read(signal_pipe[0], signals, sizeof(signals))) > 0)
            for (ssize_t i = 0; i < n; i++)
                on_signal(&m, signals[i]);
        read_messages(&m);
        if (m.upgrade_fd >= 0)
            upgrade_read(&m);
        reap(&m);
        upgrade_reap(&m);
        check_timers(&m);
    }
    if (m.upgrade_fd >= 0) /* stopped while a new master starts: it carries on */
        close(m.upgrade_fd);
    if (m.upgraded && m.oldbin[0])
        csgi_server__pidfile_remove(m.oldbin);

    atomic_store(&server->master_running, 0);
    for (size_t i = 0; i < SIGNAL_COUNT; i++)
        sigaction(master_signals[i], &previous[i], NULL);
    close_pipes(&m);
    while (m.generations)
        generation_release(&m, m.generations);
    csgi__free(m.workers);
    csgi_server__board_free(m.board);
    LOG(&m, m.result ? CSGI_LOG_ERROR : CSGI_LOG_INFO, "master %d: stopped%s%s", (int)m.pid,
        m.result ? ": " : "", m.result ? csgi_strerror(m.result) : "");
    atomic_store(&master_active, 0);
    return m.result;
}
