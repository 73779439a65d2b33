#include "test_smallmw.h"

#include "test_deploy.h"
#include "test_files.h"

#include <check.h>
#include <event2/event.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static csgi_response *hello(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *user = csgi_environ_get(csgi_request_environ(request), "REMOTE_USER");
    char text[256];
    snprintf(text, sizeof(text), "hello%s%s", user ? " " : "", user ? user : "");
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

static int hello_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_app_factory(out, global_conf, local_conf, "hello", hello, NULL, error);
}

/* egg:Test#stream: "one", then (after a 10 ms timer) "two", "three". */
typedef struct stream {
    csgi_body *body;
    struct event *timer;
    int step;
    int waited;
} stream;

static void stream_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream *s = arg;
    s->waited = 1;
    csgi_body_resume(s->body);
}

static int stream_next(void *state, csgi_chunk *chunk)
{
    stream *s = state;
    static const char *const pieces[] = {"one", "two", "three"};
    if (s->step == 1 && !s->waited) {
        struct timeval ten = {0, 10000};
        evtimer_add(s->timer, &ten);
        return CSGI_EAGAIN;
    }
    if (s->step == 3)
        return 0;
    chunk->data = pieces[s->step];
    chunk->len = strlen(pieces[s->step]);
    s->step++;
    return 1;
}

static void stream_close(void *state)
{
    stream *s = state;
    if (s->timer)
        event_free(s->timer);
}

static const csgi_body_type stream_body = {"stream", stream_next, stream_close};

static csgi_body *stream_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    if (csgi_start_response_call(sr, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    stream *s = csgi_environ_alloc_zeroed(environ, sizeof(*s));
    if (!s)
        return NULL;
    s->timer = evtimer_new(csgi_environ_event_base(environ), stream_wake, s);
    s->body = csgi_body_new(environ, &stream_body, s);
    return s->body;
}

static const csgi_app_type stream_type = {"stream", stream_call, NULL};

static int stream_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &stream_type, NULL);
}

/* egg:Test#fail: an application whose call fails (the server answers 500). */
static csgi_body *fail_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    (void)environ;
    (void)sr;
    return NULL;
}

static const csgi_app_type fail_type = {"fail", fail_call, NULL};

static int fail_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                        const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &fail_type, NULL);
}

csgi_loader *smallmw_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#hello", CSGI_FACTORY_APP, hello_factory), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#stream", CSGI_FACTORY_APP, stream_factory), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#fail", CSGI_FACTORY_APP, fail_factory), 0);
    return loader;
}

csgi_app *smallmw_load(csgi_loader *loader, const char *file, const char *ini, const char *name)
{
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#%s", test_write_file(file, ini), name);
    return test_load(loader, uri);
}

void smallmw_load_fails(csgi_loader *loader, const char *ini, const char *name, const char *want)
{
    static int count;
    char file[32], uri[4200], message[2048];
    snprintf(file, sizeof(file), "fails%d.ini", count++);
    snprintf(uri, sizeof(uri), "%s#%s", test_write_file(file, ini), name);
    ck_assert_int_ne(test_load_fails(loader, uri, message, sizeof(message)), 0);
    ck_assert_msg(strstr(message, want), "%s (wanted %s)", message, want);
}

csgi_test_response *smallmw_run(csgi_app *app, const char *method, const char *url,
                                const char *remote, const char *headers)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    if (remote)
        ck_assert_int_eq(csgi_test_request_set_remote(request, remote, 40000), 0);
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", headers ? headers : "");
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *colon = strchr(line, ':');
        ck_assert_ptr_nonnull(colon);
        *colon = '\0';
        ck_assert_int_eq(csgi_test_request_add_header(request, line, colon + 2), 0);
    }
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    ck_assert_ptr_nonnull(response);
    return response;
}

void captured_log_init(captured_log *log)
{
    memset(log, 0, sizeof(*log));
    pthread_mutex_init(&log->lock, NULL);
}

void captured_log_fn(int level, const char *message, void *userdata)
{
    (void)level;
    captured_log *log = userdata;
    pthread_mutex_lock(&log->lock);
    size_t len = strlen(message);
    if (log->len + len + 2 < sizeof(log->text)) {
        memcpy(log->text + log->len, message, len);
        log->len += len;
        log->text[log->len++] = '\n';
        log->text[log->len] = '\0';
    }
    pthread_mutex_unlock(&log->lock);
}

int captured_log_wait(captured_log *log, const char *text, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pthread_mutex_lock(&log->lock);
        int found = strstr(log->text, text) != NULL;
        pthread_mutex_unlock(&log->lock);
        if (found)
            return 1;
        usleep(10000);
    }
    return 0;
}
