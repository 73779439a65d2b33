/*
 * A plugin for the worker-process tests (tests/check_workers.c):
 * workerapp.so, reached as `use = egg:workerapp#pid`. The application
 * answers, for
 *
 *   /          "message=M pid=P built_by=B uid=U gid=G\n": its `message`
 *              key (default hello), the pid of the process answering and of
 *              the one that built it (the master with preload, else the
 *              worker), the user and group it runs as
 *   /slow?ms=N the same after N milliseconds (default 1000), from a timer:
 *              the worker's loop stays free
 *   /block?ms=N the same after N milliseconds of sleep: the worker's loop
 *              is busy, so the next connection goes to another worker
 *   /stats     the same, its message csgi_server_stats_get()'s figures:
 *              "rREQUESTS,cCONNECTIONS,wWORKERS,tTHREADS,pPROCESS_REQUESTS"
 *   /multi     the same, its message the environ's csgi.multiprocess and
 *              csgi.multithread: "pP,tT"
 *
 * and its factory reads `build_delay_ms` (sleep that long while building:
 * a slow-starting application), `crash` (true: the process building it
 * kills itself, a worker that dies right after it starts) and `fail` (true:
 * the factory fails, with the error placed at the key).
 */
#define _POSIX_C_SOURCE 200809L

#include <csgi.h>
#include <csgi/server.h>
#include <csgi/loader.h>

#include <event2/event.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct pid_app {
    char message[128];
    long built_by;
} pid_app;

/* The delayed answer of /slow: the text waits for the timer. */
typedef struct slow_body {
    char text[256];
    size_t len;
    int ready, sent;
    struct event *timer;
    csgi_body *body;
} slow_body;

static void slow_ready(evutil_socket_t fd, short what, void *arg)
{
    slow_body *slow = arg;
    (void)fd;
    (void)what;
    slow->ready = 1;
    csgi_body_resume(slow->body);
}

static int slow_next(void *state, csgi_chunk *chunk)
{
    slow_body *slow = state;
    if (!slow->ready)
        return CSGI_EAGAIN;
    if (slow->sent)
        return 0;
    slow->sent = 1;
    chunk->data = slow->text;
    chunk->len = slow->len;
    return 1;
}

static void slow_close(void *state)
{
    slow_body *slow = state;
    if (slow->timer)
        event_free(slow->timer);
    free(slow);
}

static const csgi_body_type slow_type = {"workerapp.slow", slow_next, slow_close};

static long query_ms(csgi_environ *environ)
{
    const char *query = csgi_environ_get(environ, "QUERY_STRING");
    const char *ms = query ? strstr(query, "ms=") : NULL;
    return ms ? atol(ms + 3) : 1000;
}

static csgi_body *pid_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    const pid_app *app = state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    char message[128];
    snprintf(message, sizeof(message), "%s", app->message);
    csgi_server_stats stats = CSGI_SERVER_STATS_INIT;
    if (path && strcmp(path, "/stats") == 0 && csgi_server_stats_get(&stats) == 0)
        snprintf(message, sizeof(message), "r%llu,c%llu,w%u,t%u,p%llu",
                 (unsigned long long)stats.requests, (unsigned long long)stats.connections,
                 stats.workers, stats.threads, (unsigned long long)stats.process_requests);
    if (path && strcmp(path, "/multi") == 0) {
        int64_t multiprocess = -1, multithread = -1;
        csgi_environ_get_int(environ, "csgi.multiprocess", &multiprocess);
        csgi_environ_get_int(environ, "csgi.multithread", &multithread);
        snprintf(message, sizeof(message), "p%lld,t%lld", (long long)multiprocess,
                 (long long)multithread);
    }
    char text[256];
    int len = snprintf(text, sizeof(text), "message=%s pid=%ld built_by=%ld uid=%ld gid=%ld\n",
                       message, (long)getpid(), app->built_by, (long)getuid(), (long)getgid());
    if (path && strcmp(path, "/block") == 0) {
        long ms = query_ms(environ);
        struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    if (!path || strcmp(path, "/slow") != 0)
        return csgi_body_bytes(environ, text, (size_t)len);

    slow_body *slow = calloc(1, sizeof(*slow));
    if (!slow)
        return NULL;
    memcpy(slow->text, text, (size_t)len);
    slow->len = (size_t)len;
    csgi_body *body = csgi_body_new(environ, &slow_type, slow);
    if (!body)
        return NULL;
    slow->body = body;
    long ms = query_ms(environ);
    struct timeval delay = {ms / 1000, (ms % 1000) * 1000};
    slow->timer = evtimer_new(csgi_environ_event_base(environ), slow_ready, slow);
    if (!slow->timer || evtimer_add(slow->timer, &delay) != 0) {
        csgi_body_close(body);
        return NULL;
    }
    return body;
}

static void pid_destroy(void *state)
{
    free(state);
}

static const csgi_app_type pid_type = {"workerapp.pid", pid_call, pid_destroy};

static int pid_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                       const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    long long delay = 0;
    int crash = 0, fail = 0;
    if (csgi_conf_asint(local_conf, "build_delay_ms", 0, &delay, error) != 0 ||
        csgi_conf_asbool(local_conf, "crash", 0, &crash, error) != 0 ||
        csgi_conf_asbool(local_conf, "fail", 0, &fail, error) != 0)
        return CSGI_EINVAL;
    if (fail) {
        csgi_conf_error(local_conf, "fail", error, "this application is told to fail");
        return CSGI_EINVAL;
    }
    if (crash)
        raise(SIGKILL);
    if (delay > 0) {
        struct timespec pause = {(time_t)(delay / 1000), (long)(delay % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    pid_app *app = calloc(1, sizeof(*app));
    if (!app)
        return CSGI_ENOMEM;
    const char *message = csgi_conf_get(local_conf, "message");
    snprintf(app->message, sizeof(app->message), "%s", message ? message : "hello");
    app->built_by = (long)getpid();
    return csgi_app_new(out, &pid_type, app);
}

/* Exported: what egg:workerapp#NAME looks NAME up in. */
extern const csgi_entry_point csgi_plugin_entry_points[];

const csgi_entry_point csgi_plugin_entry_points[] = {
    {"pid", CSGI_FACTORY_APP, pid_factory, NULL, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
