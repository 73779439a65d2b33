/*
 * The built-in composites over real sockets: urlmap (keys, longest prefix,
 * whole segments, host and port, SCRIPT_NAME and PATH_INFO, the 404 and the
 * not-found application, ownership) and cascade (the first answer not
 * caught wins, catch lists, skipped bodies closed once, answering later).
 */
#include "engine_harness.h"

#include <csgi.h>
#include <csgi/composite.h>

#include <check.h>
#include <event2/event.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int destroys;      /* applications destroyed */
static atomic_int closes;        /* answer bodies closed */
static atomic_int double_closes; /* answer bodies closed twice: must stay 0 */

/* ---- Applications --------------------------------------------------------------- */

/* echo: answers "NAME|SCRIPT_NAME|PATH_INFO"; its state is its name. */
static csgi_body *echo_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    const char *script = csgi_environ_get(environ, "SCRIPT_NAME");
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    char text[1024];
    int n = snprintf(text, sizeof(text), "%s|%s|%s", (const char *)state, script ? script : "-",
                     path ? path : "-");
    if (csgi_start_response_call(sr, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(environ, text, (size_t)n);
}

static void counted_destroy(void *state)
{
    (void)state;
    atomic_fetch_add(&destroys, 1);
}

static const csgi_app_type echo_type = {"echo", echo_call, counted_destroy};

static csgi_app *echo(const char *name)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &echo_type, (void *)name), 0);
    return app;
}

/* answer: a fixed status and text in an iterator body whose closes are
   counted. later 1: start-response runs on the body's first pull; later 2:
   from a timer 20 ms after the call, the body answering CSGI_EAGAIN until
   then. */
typedef struct answer {
    const char *status;
    const char *text;
    int later;
    atomic_int calls;
    atomic_int closes_before; /* bodies closed when it was last called */
} answer;

typedef struct answer_body {
    answer *answer;
    csgi_start_response *sr;
    int started;
    int sent;
    int closed;
    struct event *timer;
    csgi_body *self;
} answer_body;

static int answer_start(answer_body *b)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    b->started = 1;
    return csgi_start_response_call(b->sr, b->answer->status, headers, 1, NULL);
}

static int answer_next(void *state, csgi_chunk *chunk)
{
    answer_body *b = state;
    if (!b->started && b->timer)
        return CSGI_EAGAIN;
    if (!b->started && answer_start(b) != 0)
        return CSGI_EIO;
    if (b->sent)
        return 0;
    b->sent = 1;
    chunk->data = b->answer->text;
    chunk->len = strlen(b->answer->text);
    return 1;
}

static void answer_close(void *state)
{
    answer_body *b = state;
    if (b->closed)
        atomic_fetch_add(&double_closes, 1);
    b->closed = 1;
    if (b->timer)
        event_free(b->timer);
    b->timer = NULL;
    atomic_fetch_add(&closes, 1);
}

static void answer_fire(evutil_socket_t fd, short what, void *arg)
{
    answer_body *b = arg;
    (void)fd;
    (void)what;
    event_free(b->timer);
    b->timer = NULL;
    answer_start(b);
    csgi_body_resume(b->self);
}

static const csgi_body_type answer_body_type = {"answer", answer_next, answer_close};

static csgi_body *answer_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    answer *a = state;
    atomic_fetch_add(&a->calls, 1);
    atomic_store(&a->closes_before, atomic_load(&closes));
    answer_body *b = csgi_environ_alloc(environ, sizeof(*b));
    if (!b)
        return NULL;
    memset(b, 0, sizeof(*b));
    b->answer = a;
    b->sr = sr;
    if (!a->later && answer_start(b) != 0)
        return NULL;
    b->self = csgi_body_new(environ, &answer_body_type, b);
    if (b->self && a->later == 2) {
        struct timeval delay = {0, 20000};
        b->timer = evtimer_new(csgi_environ_event_base(environ), answer_fire, b);
        if (!b->timer || evtimer_add(b->timer, &delay) != 0)
            return NULL;
    }
    return b->self;
}

static const csgi_app_type answer_type = {"answer", answer_call, counted_destroy};

static csgi_app *answering(answer *a)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &answer_type, a), 0);
    return app;
}

/* ---- Server ------------------------------------------------------------------------- */

static app_server served;
static int port;

static void start(csgi_app *app)
{
    app_server_start(&served, app, NULL);
    port = served.port;
}

static void stop(void)
{
    app_server_stop(&served);
}

/* One request on a fresh connection; the response in *r. */
static void get(const char *host, const char *path, test_response *r)
{
    char text[1024];
    snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
             host);
    int fd = client_connect(port);
    ck_assert_int_eq(client_send_str(fd, text), 0);
    ck_assert_int_eq(client_response(fd, r, 0, 5000), 0);
    close(fd);
}

/* The body of GET path on host, which must answer status. */
static void expect(const char *host, const char *path, int status, const char *body)
{
    test_response r;
    get(host, path, &r);
    ck_assert_msg(r.status == status, "%s%s: status %d, expected %d", host, path, r.status, status);
    ck_assert_msg(strcmp(r.body, body) == 0, "%s%s: body \"%s\", expected \"%s\"", host, path,
                  r.body, body);
    response_free(&r);
}

static int count(atomic_int *value)
{
    return atomic_load(value);
}

static csgi_app *map_app(csgi_urlmap *map)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_urlmap_app(&app, &map), 0);
    ck_assert_ptr_null(map);
    return app;
}

/* ---- urlmap ------------------------------------------------------------------------- */

START_TEST(urlmap_malformed_and_duplicate_keys)
{
    static const char *const bad[] = {
        "",
        "   ",
        "v2",
        "port 80 /x",
        "domain",
        "domain a.com port",
        "domain a.com domain b.com /",
        "domain a.com port 80 port 81 /",
        "/a /b",
        "domain a.com port x /",
        "domain a.com port 0 /",
        "domain a.com port 65536 /",
        "domain a.com:80 port 80 /",
        "domain a/b.com /",
        "http://",
        "http:///x",
        "http://a.com:99999/x",
        "http://a.com:/x",
        "domain a.com http://b.com/",
    };
    csgi_urlmap *map = NULL;
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    atomic_store(&destroys, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(csgi_urlmap_add(map, bad[i], echo("x")) == CSGI_EINVAL, "key \"%s\"", bad[i]);
    /* Each refused application was freed at once. */
    ck_assert_int_eq(count(&destroys), (int)(sizeof(bad) / sizeof(bad[0])));

    static const char *const good[] = {
        "/v2",
        "/",
        "domain a.com /x",
        "domain a.com port 80 /x",
        "https://b.org:8443",
        "domain [::1] /",
        "\tport 81\tdomain A.com\t",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(csgi_urlmap_add(map, good[i], echo("x")) == 0, "key \"%s\"", good[i]);
    /* Equal after normalisation: refused. */
    static const char *const duplicates[] = {
        "/v2/",
        "//v2",
        "/v2//",
        "//",
        "domain A.COM /x/",
        "http://a.com:80/x",
        "http://a.com/x",
        "domain b.org port 8443",
        "domain a.com port 81",
    };
    atomic_store(&destroys, 0);
    for (size_t i = 0; i < sizeof(duplicates) / sizeof(duplicates[0]); i++)
        ck_assert_msg(csgi_urlmap_add(map, duplicates[i], echo("x")) == CSGI_EINVAL,
                      "duplicate \"%s\"", duplicates[i]);
    ck_assert_int_eq(count(&destroys), (int)(sizeof(duplicates) / sizeof(duplicates[0])));

    ck_assert_int_eq(csgi_urlmap_add(NULL, "/x", echo("x")), CSGI_EINVAL);
    ck_assert_int_eq(csgi_urlmap_add(map, NULL, echo("x")), CSGI_EINVAL);
    ck_assert_int_eq(csgi_urlmap_add(map, "/y", NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_urlmap_new(NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_urlmap_app(NULL, NULL), CSGI_EINVAL);

    atomic_store(&destroys, 0);
    csgi_urlmap_free(map);
    ck_assert_int_eq(count(&destroys), (int)(sizeof(good) / sizeof(good[0])));
    csgi_urlmap_free(NULL);
}
END_TEST

START_TEST(urlmap_frees_its_applications_once)
{
    atomic_store(&destroys, 0);
    csgi_urlmap *map = NULL;
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    csgi_app *shared = echo("shared");
    ck_assert_int_eq(csgi_urlmap_add(map, "/a", shared), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/b", csgi_app_ref(shared)), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "domain x.org /", csgi_app_ref(shared)), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/c", echo("c")), 0);
    ck_assert_int_eq(csgi_urlmap_set_not_found(map, echo("missing")), 0);
    ck_assert_int_eq(csgi_urlmap_set_not_found(map, echo("missing2")), 0);
    ck_assert_int_eq(count(&destroys), 1); /* the replaced not-found application */
    csgi_app *app = map_app(map);
    ck_assert_str_eq(csgi_app_name(app), "urlmap");
    ck_assert_int_eq(count(&destroys), 1);
    csgi_app_free(app);
    ck_assert_int_eq(count(&destroys), 4); /* shared once, c, missing2 */

    /* A map freed without becoming an application. */
    atomic_store(&destroys, 0);
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/a", echo("a")), 0);
    ck_assert_int_eq(csgi_urlmap_set_not_found(map, echo("missing")), 0);
    csgi_urlmap_free(map);
    ck_assert_int_eq(count(&destroys), 2);
    ck_assert_int_eq(csgi_urlmap_set_not_found(NULL, echo("x")), CSGI_EINVAL);
    ck_assert_int_eq(count(&destroys), 3);
}
END_TEST

START_TEST(urlmap_longest_prefix_and_segments)
{
    csgi_urlmap *map = NULL;
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/", echo("root")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/v2", echo("v2")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/v2/admin", echo("admin")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/a//b/", echo("ab")), 0);
    start(map_app(map));

    expect("h", "/v2", 200, "v2|/v2|");
    expect("h", "/v2/", 200, "v2|/v2|/");
    expect("h", "/v2/x/y", 200, "v2|/v2|/x/y");
    expect("h", "/v21", 200, "root||/v21");
    expect("h", "/v2.1", 200, "root||/v2.1");
    expect("h", "/v2.1/x", 200, "root||/v2.1/x");
    expect("h", "/v2/admin", 200, "admin|/v2/admin|");
    expect("h", "/v2/admin/users", 200, "admin|/v2/admin|/users");
    expect("h", "/v2/administrator", 200, "v2|/v2|/administrator");
    expect("h", "/", 200, "root||/");
    expect("h", "/other?q=1", 200, "root||/other");
    /* Runs of "/" in keys and in request paths. */
    expect("h", "/a/b", 200, "ab|/a/b|");
    expect("h", "/a/b/c", 200, "ab|/a/b|/c");
    expect("h", "/a//b//c", 200, "ab|/a/b|/c");
    expect("h", "//v2//x", 200, "v2|/v2|/x");
    expect("h", "/a/bc", 200, "root||/a/bc");
    stop();
}
END_TEST

START_TEST(urlmap_nested_script_name)
{
    csgi_urlmap *inner = NULL, *outer = NULL;
    ck_assert_int_eq(csgi_urlmap_new(&inner), 0);
    ck_assert_int_eq(csgi_urlmap_add(inner, "/v2", echo("v2")), 0);
    ck_assert_int_eq(csgi_urlmap_new(&outer), 0);
    ck_assert_int_eq(csgi_urlmap_add(outer, "/api", map_app(inner)), 0);
    start(map_app(outer));
    expect("h", "/api/v2/servers", 200, "v2|/api/v2|/servers");
    expect("h", "/api//v2", 200, "v2|/api/v2|");
    test_response r;
    get("h", "/api/v3", &r);
    ck_assert_int_eq(r.status, 404);
    response_free(&r);
    stop();
}
END_TEST

START_TEST(urlmap_domains_and_ports)
{
    csgi_urlmap *map = NULL;
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/", echo("any")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/x/y", echo("any-xy")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "domain Example.com /", echo("ex")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "domain example.com port 8080 /x", echo("ex8080")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "http://other.org/o", echo("other")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "domain [::1] port 81", echo("v6")), 0);
    start(map_app(map));

    expect("example.com", "/z", 200, "ex||/z");
    expect("EXAMPLE.COM", "/z", 200, "ex||/z");
    /* A key with a host wins over a longer key without one, as in Paste. */
    expect("example.com", "/x/y", 200, "ex||/x/y");
    expect("example.com:8080", "/x/1", 200, "ex8080|/x|/1");
    expect("example.com:8080", "/x1", 200, "ex||/x1");
    expect("example.com", "/x/1", 200, "ex||/x/1");    /* port 80 */
    expect("example.com:80", "/x/1", 200, "ex||/x/1"); /* port 80 */
    expect("other.org:81", "/o/p", 200, "other|/o|/p");
    expect("other.org", "/z", 200, "any||/z");
    expect("www.example.com", "/x/y/z", 200, "any-xy|/x/y|/z");
    expect("[::1]:81", "/q", 200, "v6||/q");
    expect("[::1]:82", "/q", 200, "any||/q");
    stop();
}
END_TEST

START_TEST(urlmap_not_found)
{
    /* The built-in 404: short, and no word about the map. */
    csgi_urlmap *map = NULL;
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/v2", echo("secret-v2")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "domain internal.example /", echo("hidden")), 0);
    start(map_app(map));
    test_response r;
    get("h", "/zzz", &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.body, "Not Found\n");
    ck_assert_str_eq(response_header(&r, "Content-Type"), "text/plain");
    response_free(&r);
    stop();

    /* The debug 404 lists the map, and what was looked for. */
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/v2", echo("secret-v2")), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "domain internal.example port 81 /a", echo("hidden")), 0);
    csgi_urlmap_set_debug(map, 1);
    csgi_urlmap_set_debug(NULL, 1);
    start(map_app(map));
    get("h:8", "/zzz", &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_ptr_nonnull(strstr(r.body, "  domain internal.example port 81 /a -> echo\n"
                                         "  /v2 -> echo\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "SCRIPT_NAME: ''\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "PATH_INFO: '/zzz'\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "HTTP_HOST: 'h:8'\n"));
    response_free(&r);
    stop();

    /* A not-found application, called with the environ unchanged. */
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/v2", echo("v2")), 0);
    ck_assert_int_eq(csgi_urlmap_set_not_found(map, echo("fallback")), 0);
    start(map_app(map));
    expect("h", "//v21//x", 200, "fallback||//v21//x");
    expect("h", "/v2/x", 200, "v2|/v2|/x");
    stop();
}
END_TEST

/* ---- cascade ------------------------------------------------------------------------ */

static csgi_app *cascade_of(csgi_app **apps, size_t count, const int *catch_statuses,
                            size_t catch_count)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_cascade_new(&app, apps, count, catch_statuses, catch_count), 0);
    return app;
}

static void reset_counts(void)
{
    atomic_store(&closes, 0);
    atomic_store(&double_closes, 0);
    atomic_store(&destroys, 0);
}

/* Wait until n answer bodies were closed (the server closes the one it
   sent after the response went out). */
static void wait_closes(int n)
{
    for (int i = 0; i < 200 && atomic_load(&closes) < n; i++)
        usleep(10000);
    ck_assert_int_eq(count(&closes), n);
    ck_assert_int_eq(count(&double_closes), 0);
}

START_TEST(cascade_first_answer_not_caught_wins)
{
    static answer missing = {"404 Not Found", "first", 0, 0, 0};
    static answer found = {"200 OK", "second", 0, 0, 0};
    static answer unused = {"200 OK", "third", 0, 0, 0};
    reset_counts();
    csgi_app *apps[] = {answering(&missing), answering(&found), answering(&unused)};
    start(cascade_of(apps, 3, NULL, 0));
    expect("h", "/", 200, "second");
    wait_closes(2); /* the skipped 404 body, and the body sent */
    ck_assert_int_eq(count(&missing.calls), 1);
    ck_assert_int_eq(count(&found.calls), 1);
    ck_assert_int_eq(count(&unused.calls), 0);
    /* The skipped body was closed before the next application ran. */
    ck_assert_int_eq(count(&found.closes_before), 1);
    stop();
    ck_assert_int_eq(count(&destroys), 3);
}
END_TEST

START_TEST(cascade_catch_list)
{
    static answer forbidden = {"403 Forbidden", "403", 0, 0, 0};
    static answer missing = {"404 Not Found", "404", 0, 0, 0};
    static answer broken = {"500 Internal Server Error", "500", 0, 0, 0};
    static answer found = {"200 OK", "200", 0, 0, 0};
    reset_counts();
    static const int catch_statuses[] = {403, 404};
    csgi_app *apps[] = {answering(&forbidden), answering(&missing), answering(&broken),
                        answering(&found)};
    start(cascade_of(apps, 4, catch_statuses, 2));
    expect("h", "/", 500, "500"); /* 500 is not caught */
    wait_closes(3);
    ck_assert_int_eq(count(&broken.closes_before), 2);
    ck_assert_int_eq(count(&found.calls), 0);
    stop();

    /* 404 alone is caught by default: a 403 is the answer. */
    reset_counts();
    csgi_app *again[] = {answering(&forbidden), answering(&found)};
    start(cascade_of(again, 2, NULL, 0));
    expect("h", "/", 403, "403");
    wait_closes(1);
    stop();

    /* An empty catch list: the first answer is always the answer. */
    reset_counts();
    static const int none[] = {0};
    csgi_app *first[] = {answering(&missing), answering(&found)};
    start(cascade_of(first, 2, none, 0));
    expect("h", "/", 404, "404");
    wait_closes(1);
    stop();
}
END_TEST

START_TEST(cascade_last_answer_passes_through)
{
    static answer a = {"404 Not Found", "a", 0, 0, 0};
    static answer b = {"404 Not Found", "b", 0, 0, 0};
    static answer c = {"404 Not Found", "last", 0, 0, 0};
    reset_counts();
    csgi_app *apps[] = {answering(&a), answering(&b), answering(&c)};
    start(cascade_of(apps, 3, NULL, 0));
    expect("h", "/", 404, "last");
    wait_closes(3);
    expect("h", "/", 404, "last");
    wait_closes(6);
    stop();

    /* A cascade of one is its application. */
    reset_counts();
    csgi_app *one[] = {answering(&a)};
    start(cascade_of(one, 1, NULL, 0));
    expect("h", "/", 404, "a");
    wait_closes(1);
    stop();
}
END_TEST

START_TEST(cascade_answers_started_later)
{
    static answer missing = {"404 Not Found", "first", 1, 0, 0};
    static answer missing_now = {"404 Not Found", "second", 0, 0, 0};
    static answer found = {"200 OK", "third", 1, 0, 0};
    static answer last = {"404 Not Found", "fourth", 1, 0, 0};
    reset_counts();
    csgi_app *apps[] = {answering(&missing), answering(&missing_now), answering(&found),
                        answering(&last)};
    start(cascade_of(apps, 4, NULL, 0));
    expect("h", "/", 200, "third");
    wait_closes(3);
    ck_assert_int_eq(count(&missing_now.closes_before), 1);
    ck_assert_int_eq(count(&found.closes_before), 2);
    ck_assert_int_eq(count(&last.calls), 0);
    stop();

    reset_counts();
    csgi_app *all[] = {answering(&missing), answering(&last)};
    start(cascade_of(all, 2, NULL, 0));
    expect("h", "/", 404, "fourth");
    wait_closes(2);
    stop();

    /* Statuses that arrive from a timer, the bodies answering CSGI_EAGAIN
       until then: the server pulls the cascade's body again on resume. */
    static answer timed_missing = {"404 Not Found", "timed-first", 2, 0, 0};
    static answer timed_found = {"201 Created", "timed-second", 2, 0, 0};
    reset_counts();
    csgi_app *timed[] = {answering(&timed_missing), answering(&timed_found), answering(&last)};
    start(cascade_of(timed, 3, NULL, 0));
    expect("h", "/", 201, "timed-second");
    wait_closes(2);
    ck_assert_int_eq(count(&timed_found.closes_before), 1);
    ck_assert_int_eq(count(&last.calls), 1); /* from the first part only */
    stop();
}
END_TEST

START_TEST(cascade_restores_the_path)
{
    /* The first application is a urlmap that shifts the path, then finds
       nothing below it: the next one sees the path as the cascade got it. */
    static answer missing = {"404 Not Found", "x", 0, 0, 0};
    csgi_urlmap *map = NULL;
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/static", answering(&missing)), 0);
    csgi_app *apps[] = {map_app(map), echo("app")};
    start(cascade_of(apps, 2, NULL, 0));
    expect("h", "/static/a.css", 200, "app||/static/a.css");
    expect("h", "/other", 200, "app||/other");
    stop();
}
END_TEST

START_TEST(cascade_refuses_bad_arguments)
{
    csgi_app *app = NULL;
    reset_counts();
    csgi_app *apps[] = {echo("a"), echo("b")};
    ck_assert_int_eq(csgi_cascade_new(&app, apps, 0, NULL, 0), CSGI_EINVAL);
    ck_assert_ptr_null(app);
    csgi_app *two[] = {echo("a"), echo("b")};
    static const int bad[] = {404, 99};
    ck_assert_int_eq(csgi_cascade_new(&app, two, 2, bad, 2), CSGI_EINVAL);
    ck_assert_int_eq(count(&destroys), 2);
    csgi_app *three[] = {echo("a"), NULL};
    ck_assert_int_eq(csgi_cascade_new(&app, three, 2, NULL, 0), CSGI_EINVAL);
    ck_assert_int_eq(count(&destroys), 3);
    csgi_app *four[] = {echo("a")};
    ck_assert_int_eq(csgi_cascade_new(NULL, four, 1, NULL, 0), CSGI_EINVAL);
    ck_assert_int_eq(csgi_cascade_new(&app, NULL, 1, NULL, 0), CSGI_EINVAL);
    csgi_app *five[] = {echo("a")};
    ck_assert_int_eq(csgi_cascade_new(&app, five, 1, NULL, 3), CSGI_EINVAL);
    ck_assert_int_eq(count(&destroys), 5);
    /* count 0 took nothing: apps[] is still ours. */
    csgi_app_free(apps[0]);
    csgi_app_free(apps[1]);
    ck_assert_int_eq(count(&destroys), 7);

    csgi_app *six[] = {echo("a"), echo("b")};
    ck_assert_int_eq(csgi_cascade_new(&app, six, 2, NULL, 0), 0);
    ck_assert_str_eq(csgi_app_name(app), "cascade");
    csgi_app_free(app);
    ck_assert_int_eq(count(&destroys), 9);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("composite");
    TCase *urlmap = tcase_create("urlmap");
    tcase_set_timeout(urlmap, 60);
    tcase_add_test(urlmap, urlmap_malformed_and_duplicate_keys);
    tcase_add_test(urlmap, urlmap_frees_its_applications_once);
    tcase_add_test(urlmap, urlmap_longest_prefix_and_segments);
    tcase_add_test(urlmap, urlmap_nested_script_name);
    tcase_add_test(urlmap, urlmap_domains_and_ports);
    tcase_add_test(urlmap, urlmap_not_found);
    suite_add_tcase(suite, urlmap);
    TCase *cascade = tcase_create("cascade");
    tcase_set_timeout(cascade, 60);
    tcase_add_test(cascade, cascade_first_answer_not_caught_wins);
    tcase_add_test(cascade, cascade_catch_list);
    tcase_add_test(cascade, cascade_last_answer_passes_through);
    tcase_add_test(cascade, cascade_answers_started_later);
    tcase_add_test(cascade, cascade_restores_the_path);
    tcase_add_test(cascade, cascade_refuses_bad_arguments);
    suite_add_tcase(suite, cascade);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
