/* Test sessions (csgi/testing.h): the cookie jar a session keeps across
   requests, by RFC 6265's rules for storing and sending cookies, and
   following redirects, with or without a session. */
#include <csgi.h>
#include <csgi/testing.h>

#include "test_alloc.h"

#include <check.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- An application that sets what it is told and shows what it got ------------- */

#define SET_MAX 6

typedef struct cookie_app {
    const char *set[SET_MAX]; /* Set-Cookie values for the next response, NULL-ended */
    int calls;
} cookie_app;

/* Answers with the Cookie field it received ("-" without one), setting
   the cookies it was told to, once. */
static csgi_body *cookie_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    cookie_app *a = state;
    a->calls++;
    csgi_header headers[SET_MAX + 1] = {CSGI_HEADER("Content-Type", "text/plain")};
    size_t count = 1;
    for (size_t i = 0; i < SET_MAX && a->set[i]; i++)
        headers[count++] = (csgi_header){"Set-Cookie", 10, a->set[i], strlen(a->set[i])};
    memset(a->set, 0, sizeof(a->set));
    if (csgi_start_response_call(start_response, "200 OK", headers, count, NULL) != 0)
        return NULL;
    const char *cookie = csgi_environ_get(environ, "HTTP_COOKIE");
    if (!cookie)
        cookie = "-";
    return csgi_body_bytes(environ, cookie, strlen(cookie));
}

static const csgi_app_type cookie_type = {"cookies", cookie_call, NULL};

typedef struct fixture {
    cookie_app state;
    csgi_app *app;
    csgi_test_session *session;
    char seen[512]; /* the Cookie field of the last request */
} fixture;

static fixture fx;

static void setup(void)
{
    memset(&fx, 0, sizeof(fx));
    ck_assert_int_eq(csgi_app_new(&fx.app, &cookie_type, &fx.state), 0);
    ck_assert_int_eq(csgi_test_session_new(&fx.session, fx.app), 0);
}

static void teardown(void)
{
    csgi_test_session_free(fx.session);
    csgi_app_free(fx.app);
}

/* GET url through the session, the response setting the cookies given
   (NULL-ended); returns the Cookie field the application saw. */
static const char *visit(const char *url, ...)
{
    va_list args;
    va_start(args, url);
    for (size_t i = 0; i < SET_MAX; i++) {
        fx.state.set[i] = va_arg(args, const char *);
        if (!fx.state.set[i])
            break;
    }
    va_end(args);
    csgi_test_response *r = NULL;
    int rc = csgi_test_session_get(&r, fx.session, url);
    ck_assert_msg(rc == 0, "get %s: %s", url, csgi_err_name(rc));
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    snprintf(fx.seen, sizeof(fx.seen), "%s", csgi_test_response_body(r, NULL));
    csgi_test_response_free(r);
    return fx.seen;
}

/* ---- Tests ------------------------------------------------------------------------ */

START_TEST(cookie_set_sent_overwritten_deleted)
{
    ck_assert_str_eq(visit("/", "sid=1", NULL), "-");
    ck_assert_str_eq(csgi_test_session_cookie(fx.session, "sid"), "1");
    ck_assert_str_eq(visit("/", NULL), "sid=1");
    ck_assert_str_eq(visit("/other", NULL), "sid=1");

    /* Overwritten: the new value, the old place (sid stays first). */
    ck_assert_str_eq(visit("/", "theme=dark", NULL), "sid=1");
    ck_assert_str_eq(visit("/", "sid=2", NULL), "sid=1; theme=dark");
    ck_assert_str_eq(visit("/", NULL), "sid=2; theme=dark");
    ck_assert_uint_eq(csgi_test_session_cookie_count(fx.session), 2);

    /* Deleted by Max-Age=0, then by an Expires in the past. */
    ck_assert_str_eq(visit("/", "sid=; Max-Age=0", NULL), "sid=2; theme=dark");
    ck_assert_ptr_null(csgi_test_session_cookie(fx.session, "sid"));
    ck_assert_str_eq(visit("/", NULL), "theme=dark");
    visit("/", "theme=gone; Expires=Thu, 01 Jan 1970 00:00:01 GMT", NULL);
    ck_assert_uint_eq(csgi_test_session_cookie_count(fx.session), 0);
    ck_assert_str_eq(visit("/", NULL), "-");

    /* Kept: a positive Max-Age, an Expires to come; a negative Max-Age
       deletes even with an Expires to come (Max-Age wins). */
    visit("/", "a=1; Max-Age=3600", "b=2; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
          "c=3; Expires=Fri, 01 Jan 2100 00:00:00 GMT; Max-Age=-1", NULL);
    ck_assert_str_eq(visit("/", NULL), "a=1; b=2");
    /* An Expires that cannot be read is ignored: a session cookie. */
    visit("/", "d=4; Expires=someday", NULL);
    ck_assert_str_eq(visit("/", NULL), "a=1; b=2; d=4");

    /* Ignored: no '=', an empty name. Attributes and blanks are trimmed. */
    visit("/", "novalue", "=x", "  e = five ; Path = / ; HttpOnly", NULL);
    ck_assert_str_eq(visit("/", NULL), "a=1; b=2; d=4; e=five");
    csgi_test_session_clear_cookies(fx.session);
    ck_assert_str_eq(visit("/", NULL), "-");
}
END_TEST

START_TEST(cookie_path_scoped)
{
    /* No Path: the directory of the request's path. */
    visit("/app/login?next=/", "dir=1", NULL);
    ck_assert_str_eq(visit("/app", NULL), "dir=1");
    ck_assert_str_eq(visit("/app/x/y", NULL), "dir=1");
    ck_assert_str_eq(visit("/", NULL), "-");
    ck_assert_str_eq(visit("/application", NULL), "-");
    /* A Path of the cookie's own; "/admin/" matches below it only. */
    visit("/", "adm=1; Path=/admin/", "root=1; Path=/", "bad=1; Path=relative", NULL);
    ck_assert_str_eq(visit("/admin/users", NULL), "adm=1; root=1; bad=1");
    ck_assert_str_eq(visit("/admin", NULL), "root=1; bad=1");
    /* Longest paths first, then the oldest. */
    visit("/", "deep=1; Path=/app/x", NULL);
    ck_assert_str_eq(visit("/app/x/z", NULL), "deep=1; dir=1; root=1; bad=1");
    /* The same name under two paths: two cookies. */
    visit("/", "dir=2; Path=/", NULL);
    ck_assert_str_eq(visit("/app/", NULL), "dir=1; root=1; bad=1; dir=2");
    ck_assert_str_eq(csgi_test_session_cookie(fx.session, "dir"), "1");
    /* Deleting needs the path it was set with. */
    visit("/", "dir=; Max-Age=0; Path=/app", NULL);
    ck_assert_str_eq(visit("/app/", NULL), "root=1; bad=1; dir=2");
}
END_TEST

START_TEST(cookie_secure_and_http_only)
{
    visit("https://example.com/", "s=1; Secure", "h=1; HttpOnly", "p=1", NULL);
    ck_assert_str_eq(visit("https://example.com/", NULL), "s=1; h=1; p=1");
    ck_assert_str_eq(visit("http://example.com/", NULL), "h=1; p=1");
    ck_assert_str_eq(visit("https://example.com:8443/x", NULL), "s=1; h=1; p=1");
}
END_TEST

START_TEST(cookie_domains)
{
    /* Host-only without Domain; with one, the domain and names under it. */
    visit("http://www.example.com/", "host=1", "dom=1; Domain=.Example.COM", NULL);
    ck_assert_str_eq(visit("http://www.example.com/", NULL), "host=1; dom=1");
    ck_assert_str_eq(visit("http://WWW.EXAMPLE.COM:8080/", NULL), "host=1; dom=1");
    ck_assert_str_eq(visit("http://example.com/", NULL), "dom=1");
    ck_assert_str_eq(visit("http://a.b.example.com/", NULL), "dom=1");
    ck_assert_str_eq(visit("http://a.www.example.com/", NULL), "dom=1");
    ck_assert_str_eq(visit("http://badexample.com/", NULL), "-");
    /* A Domain the host is not in: the cookie is ignored. */
    visit("http://www.example.com/", "other=1; Domain=other.com", "sub=1; Domain=a.www.example.com",
          NULL);
    ck_assert_ptr_null(csgi_test_session_cookie(fx.session, "other"));
    ck_assert_ptr_null(csgi_test_session_cookie(fx.session, "sub"));
    /* No domain matches an address but itself. */
    visit("http://10.0.0.1/", "ip=1; Domain=0.0.1", NULL);
    ck_assert_ptr_null(csgi_test_session_cookie(fx.session, "ip"));
    visit("http://10.0.0.1/", "ip=2", NULL);
    ck_assert_str_eq(visit("http://10.0.0.1/", NULL), "ip=2");
    /* A bare target is "localhost". */
    visit("/", "local=1", NULL);
    ck_assert_str_eq(visit("http://localhost:80/", NULL), "local=1");
}
END_TEST

/* The cookies csgi's own response helpers write are read back. */
static csgi_response *login_handler(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *response = csgi_handler_response(request);
    if (!response)
        return NULL;
    const char *path = csgi_request_path_info(request, NULL);
    csgi_cookie_options options = CSGI_COOKIE_OPTIONS_INIT;
    options.path = "/";
    options.http_only = 1;
    options.max_age = 600;
    if (strcmp(path, "/login") == 0)
        csgi_response_set_cookie(response, "sid", "s3cr3t", &options);
    else if (strcmp(path, "/logout") == 0)
        csgi_response_delete_cookie(response, "sid", "/", NULL);
    const char *sid = csgi_request_cookie(request, "sid", NULL);
    csgi_response_set_text(response, sid ? sid : "anonymous", NULL);
    return response;
}

START_TEST(cookie_from_response_helpers)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "login", login_handler, NULL, NULL), 0);
    csgi_test_session *session = NULL;
    ck_assert_int_eq(csgi_test_session_new(&session, app), 0);
    csgi_app_free(app); /* the session keeps its own reference */
    static const struct {
        const char *path;
        const char *seen;
    } steps[] = {{"/", "anonymous"},
                 {"/login", "anonymous"},
                 {"/account", "s3cr3t"},
                 {"/logout", "s3cr3t"},
                 {"/account", "anonymous"}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        csgi_test_response *r = NULL;
        ck_assert_int_eq(csgi_test_session_get(&r, session, steps[i].path), 0);
        ck_assert_msg(strcmp(csgi_test_response_body(r, NULL), steps[i].seen) == 0, "%s: %s",
                      steps[i].path, csgi_test_response_body(r, NULL));
        csgi_test_response_free(r);
    }
    ck_assert_uint_eq(csgi_test_session_cookie_count(session), 0);
    csgi_test_session_free(session);
}
END_TEST

START_TEST(session_set_cookie_and_arguments)
{
    ck_assert_int_eq(csgi_test_session_set_cookie(fx.session, NULL, "sid=abc"), 0);
    ck_assert_int_eq(
        csgi_test_session_set_cookie(fx.session, "https://example.com/a/b", "deep=1; Secure"), 0);
    ck_assert_str_eq(visit("/", NULL), "sid=abc");
    ck_assert_str_eq(visit("https://example.com/a/", NULL), "deep=1");
    ck_assert_str_eq(visit("http://example.com/a/", NULL), "-");
    ck_assert_uint_eq(csgi_test_session_cookie_count(fx.session), 2);
    ck_assert_int_eq(csgi_test_session_set_cookie(fx.session, NULL, "sid=abc; Max-Age=0"), 0);
    ck_assert_uint_eq(csgi_test_session_cookie_count(fx.session), 1);

    /* A request's own Cookie field goes with the jar's. */
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "https://example.com/a/"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Cookie", "own=1"), 0);
    csgi_test_response *r = NULL;
    ck_assert_int_eq(csgi_test_session_run(&r, fx.session, request), 0);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "own=1; deep=1");
    ck_assert_str_eq(csgi_test_response_url(r), "https://example.com/a/");
    csgi_test_response_free(r);
    csgi_test_request_free(request);

    ck_assert_int_eq(csgi_test_session_set_cookie(fx.session, NULL, "novalue"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_session_set_cookie(fx.session, NULL, "a=1\r\nX: y"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_session_set_cookie(fx.session, "ftp://x/", "a=1"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_session_set_cookie(fx.session, NULL, "a=1; Domain=example.com"),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_session_set_cookie(NULL, NULL, "a=1"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_session_set_cookie(fx.session, NULL, NULL), CSGI_EINVAL);
    ck_assert_uint_eq(csgi_test_session_cookie_count(fx.session), 1);
    ck_assert_ptr_null(csgi_test_session_cookie(fx.session, NULL));
    ck_assert_ptr_null(csgi_test_session_cookie(NULL, "a"));
    ck_assert_uint_eq(csgi_test_session_cookie_count(NULL), 0);
    csgi_test_session_clear_cookies(NULL);

    csgi_test_session *session = (csgi_test_session *)&session;
    ck_assert_int_eq(csgi_test_session_new(&session, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(session);
    ck_assert_int_eq(csgi_test_session_new(NULL, fx.app), CSGI_EINVAL);
    r = (csgi_test_response *)&r;
    ck_assert_int_eq(csgi_test_session_run(&r, fx.session, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(csgi_test_session_get(&r, NULL, "/"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_session_get(&r, fx.session, "ftp://x/"), CSGI_EINVAL);
    csgi_test_session_free(NULL);
}
END_TEST

/* ---- Redirects -------------------------------------------------------------------- */

/* Where each path sends the client: status and Location (NULL: none). */
static const struct {
    const char *path;
    int status;
    const char *location;
} moves[] = {
    {"/start", 302, "/middle"},
    {"/middle", 302, "end?x=1"}, /* relative to /middle */
    {"/post", 302, "/result"},
    {"/moved", 301, "/result"},
    {"/see-other", 303, "/result"},
    {"/keep", 307, "/result"},
    {"/perm", 308, "/result"},
    {"/loop", 302, "/loop"},
    {"/x/y/dots", 302, "../a/./b/../c?q=1#fragment"},
    {"/space", 302, "/with space?a b"},
    {"/other-host", 302, "//other.example/result"},
    {"/secure", 301, "https://secure.example:8443/result"},
    {"/same-host", 302, "http://localhost/result"},
    {"/mailto", 302, "mailto:someone@example.com"},
    {"/nowhere", 302, NULL},
    {"/login", 303, "/home"},
};

/* Answers with what it got: method, URL, body (read whole: the handler
   runs when it has arrived), Content-Type, Authorization and Cookie. */
static csgi_response *echo_handler(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *body = NULL;
    size_t len = 0;
    int rc = csgi_request_body(request, 4096, &body, &len);
    csgi_response *response = csgi_handler_response(request);
    if (!response)
        return NULL;
    const char *type = csgi_request_header(request, "Content-Type", NULL);
    const char *authorization = csgi_request_header(request, "Authorization", NULL);
    const char *cookie = csgi_request_header(request, "Cookie", NULL);
    char text[512];
    snprintf(text, sizeof(text), "%s %s body=[%.*s] type=%s auth=%s cookie=%s",
             csgi_request_method(request), csgi_request_url(request), rc == 0 ? (int)len : 0,
             rc == 0 ? body : "", type ? type : "-", authorization ? authorization : "-",
             cookie ? cookie : "-");
    csgi_response_set_text(response, text, NULL);
    return response;
}

typedef struct mover {
    csgi_app *echo;
    int calls;
} mover;

/* Redirects as the table says, the Location as given (csgi's response
   objects would make it absolute); anything else goes to the echo. */
static csgi_body *mover_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    mover *m = state;
    m->calls++;
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
        if (strcmp(path, moves[i].path) != 0)
            continue;
        csgi_header headers[3] = {CSGI_HEADER("Content-Type", "text/plain")};
        size_t count = 1;
        if (moves[i].location)
            headers[count++] =
                (csgi_header){"Location", 8, moves[i].location, strlen(moves[i].location)};
        if (strcmp(path, "/login") == 0)
            headers[count++] = (csgi_header)CSGI_HEADER("Set-Cookie", "sid=42; Path=/");
        char status[32];
        snprintf(status, sizeof(status), "%d Moved", moves[i].status);
        if (csgi_start_response_call(start_response, status, headers, count, NULL) != 0)
            return NULL;
        return csgi_body_static(environ, "moved\n", 6);
    }
    return csgi_app_call(m->echo, environ, start_response);
}

static const csgi_app_type mover_type = {"mover", mover_call, NULL};

static csgi_app *redirect_app(mover *m)
{
    memset(m, 0, sizeof(*m));
    ck_assert_int_eq(csgi_handler_app(&m->echo, "echo", echo_handler, NULL, NULL), 0);
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &mover_type, m), 0);
    return app;
}

static void redirect_app_free(csgi_app *app, mover *m)
{
    csgi_app_free(app);
    csgi_app_free(m->echo);
}

/* Run method url through app, following up to max redirects. */
static csgi_test_response *follow(csgi_app *app, const char *method, const char *url, unsigned max,
                                  const char *body)
{
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    csgi_test_request_set_follow_redirects(request, max);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Authorization", "Bearer t"), 0);
    if (body) {
        ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
        ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Type", "text/plain"), 0);
    }
    csgi_test_response *r = NULL;
    int rc = csgi_test_request_run(&r, request, app);
    ck_assert_msg(rc == 0, "%s %s: %s", method, url, csgi_err_name(rc));
    csgi_test_request_free(request);
    return r;
}

START_TEST(redirect_chain_302_relative)
{
    mover m;
    csgi_app *app = redirect_app(&m);
    csgi_test_response *r = follow(app, "GET", "/start", 5, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL),
                     "GET http://localhost/end?x=1 body=[] type=- auth=Bearer t cookie=-");
    ck_assert_uint_eq(csgi_test_response_redirects(r), 2);
    ck_assert_str_eq(csgi_test_response_url(r), "http://localhost/end?x=1");
    ck_assert_int_eq(m.calls, 3);
    csgi_test_response_free(r);

    /* Not followed unless asked: the redirect is the response. */
    r = follow(app, "GET", "/start", 0, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 302);
    ck_assert_str_eq(csgi_test_response_header(r, "Location"), "/middle");
    ck_assert_uint_eq(csgi_test_response_redirects(r), 0);
    ck_assert_str_eq(csgi_test_response_url(r), "http://localhost/start");
    csgi_test_response_free(r);
    redirect_app_free(app, &m);
}
END_TEST

START_TEST(redirect_method_and_body)
{
    mover m;
    csgi_app *app = redirect_app(&m);
    static const struct {
        const char *method;
        const char *path;
        const char *answer;
    } cases[] = {
        /* 301 and 302: a POST becomes a GET without its body and fields. */
        {"POST", "/post", "GET http://localhost/result body=[] type=- auth=Bearer t cookie=-"},
        {"POST", "/moved", "GET http://localhost/result body=[] type=- auth=Bearer t cookie=-"},
        {"PUT", "/post",
         "PUT http://localhost/result body=[payload] type=text/plain auth=Bearer t cookie=-"},
        /* 303: a GET whatever the method. */
        {"PUT", "/see-other", "GET http://localhost/result body=[] type=- auth=Bearer t cookie=-"},
        /* 307 and 308: the same method and body. */
        {"POST", "/keep",
         "POST http://localhost/result body=[payload] type=text/plain auth=Bearer t cookie=-"},
        {"PATCH", "/perm",
         "PATCH http://localhost/result body=[payload] type=text/plain auth=Bearer t cookie=-"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_test_response *r = follow(app, cases[i].method, cases[i].path, 1, "payload");
        ck_assert_msg(strcmp(csgi_test_response_body(r, NULL), cases[i].answer) == 0, "%s %s: %s",
                      cases[i].method, cases[i].path, csgi_test_response_body(r, NULL));
        ck_assert_uint_eq(csgi_test_response_redirects(r), 1);
        csgi_test_response_free(r);
    }
    /* HEAD stays HEAD through a 303. */
    csgi_test_response *r = follow(app, "HEAD", "/see-other", 1, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_url(r), "http://localhost/result");
    csgi_test_response_free(r);

    /* A 307 re-sends the body as it was sent: late, chunked, with 100-continue. */
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "POST", "/keep"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, "in pieces", 9), 0);
    ck_assert_int_eq(csgi_test_request_set_body_delivery(request, CSGI_TEST_DELIVERY_LATE, 2), 0);
    csgi_test_request_set_chunked(request, 1);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Expect", "100-continue"), 0);
    csgi_test_request_set_follow_redirects(request, 1);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    ck_assert_str_eq(csgi_test_response_body(r, NULL),
                     "POST http://localhost/result body=[in pieces] type=- auth=- cookie=-");
    ck_assert_int_eq(csgi_test_response_continued(r), 1);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    redirect_app_free(app, &m);
}
END_TEST

START_TEST(redirect_loop_limit)
{
    mover m;
    csgi_app *app = redirect_app(&m);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/loop"), 0);
    csgi_test_request_set_follow_redirects(request, 3);
    csgi_test_response *r = (csgi_test_response *)&r;
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), CSGI_EREDIRECTS);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(m.calls, 4); /* the request and the 3 redirects followed */
    ck_assert_str_eq(csgi_err_name(CSGI_EREDIRECTS), "CSGI_EREDIRECTS");
    ck_assert_str_eq(csgi_strerror(CSGI_EREDIRECTS), "too many redirects");
    csgi_test_request_free(request);
    /* Exactly as many as allowed is fine, one more is not. */
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/start"), 0);
    csgi_test_request_set_follow_redirects(request, 2);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    ck_assert_uint_eq(csgi_test_response_redirects(r), 2);
    csgi_test_response_free(r);
    csgi_test_request_set_follow_redirects(request, 1);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), CSGI_EREDIRECTS);
    csgi_test_request_free(request);
    csgi_test_request_set_follow_redirects(NULL, 1);
    redirect_app_free(app, &m);
}
END_TEST

START_TEST(redirect_locations)
{
    mover m;
    csgi_app *app = redirect_app(&m);
    static const struct {
        const char *from;
        const char *url;
        const char *auth;
    } cases[] = {
        /* Dot segments removed, the fragment dropped. */
        {"/x/y/dots", "http://localhost/x/a/c?q=1", "Bearer t"},
        /* A space percent-encoded, as a browser does. */
        {"/space", "http://localhost/with%20space?a%20b", "Bearer t"},
        /* Another host: Authorization is not sent there. */
        {"/other-host", "http://other.example/result", "-"},
        {"https://example.com/other-host", "https://other.example/result", "-"},
        {"/secure", "https://secure.example:8443/result", "-"},
        /* The same scheme and host spelt out: it is. */
        {"/same-host", "http://localhost/result", "Bearer t"},
        {"http://localhost:80/same-host", "http://localhost/result", "Bearer t"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_test_response *r = follow(app, "GET", cases[i].from, 1, NULL);
        ck_assert_msg(strcmp(csgi_test_response_url(r), cases[i].url) == 0, "%s: %s", cases[i].from,
                      csgi_test_response_url(r));
        char expected[256];
        snprintf(expected, sizeof(expected), "GET %s body=[] type=- auth=%s cookie=-", cases[i].url,
                 cases[i].auth);
        ck_assert_str_eq(csgi_test_response_body(r, NULL), expected);
        csgi_test_response_free(r);
    }
    /* Not followed: another scheme, no Location. */
    csgi_test_response *r = follow(app, "GET", "/mailto", 5, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 302);
    ck_assert_uint_eq(csgi_test_response_redirects(r), 0);
    csgi_test_response_free(r);
    r = follow(app, "GET", "/nowhere", 5, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 302);
    csgi_test_response_free(r);
    redirect_app_free(app, &m);
}
END_TEST

/* Through a session, the cookies set along the way are sent on. */
START_TEST(redirect_keeps_cookies_in_session)
{
    mover m;
    csgi_app *app = redirect_app(&m);
    csgi_test_session *session = NULL;
    ck_assert_int_eq(csgi_test_session_new(&session, app), 0);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "POST", "/login"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, "user=ann", 8), 0);
    csgi_test_request_set_follow_redirects(request, 2);
    csgi_test_response *r = NULL;
    ck_assert_int_eq(csgi_test_session_run(&r, session, request), 0);
    ck_assert_str_eq(csgi_test_response_body(r, NULL),
                     "GET http://localhost/home body=[] type=- auth=- cookie=sid=42");
    ck_assert_uint_eq(csgi_test_response_redirects(r), 1);
    ck_assert_str_eq(csgi_test_session_cookie(session, "sid"), "42");
    csgi_test_response_free(r);
    /* Without a session the cookie is not kept. */
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    ck_assert_str_eq(csgi_test_response_body(r, NULL),
                     "GET http://localhost/home body=[] type=- auth=- cookie=-");
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_test_session_free(session);
    redirect_app_free(app, &m);
}
END_TEST

/* Every allocation of a session's redirect chain that stores and sends a
   cookie fails in turn: CSGI_ENOMEM or an answer, and the right answer
   once nothing fails; the jar stays usable. */
START_TEST(out_of_memory_every_allocation)
{
    mover m;
    csgi_app *app = redirect_app(&m);
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    for (long budget = 0; budget < 600 && !succeeded; budget++) {
        test_alloc_fail_after(budget);
        csgi_test_session *session = NULL;
        csgi_test_request *request = NULL;
        csgi_test_response *response = NULL;
        int rc = csgi_test_session_new(&session, app);
        if (rc == 0)
            rc = csgi_test_session_set_cookie(session, NULL, "theme=dark; Path=/");
        if (rc == 0)
            rc = csgi_test_request_new(&request, "POST", "/login");
        if (rc == 0)
            rc = csgi_test_request_set_body(request, "user=ann", 8);
        csgi_test_request_set_follow_redirects(request, 2);
        if (rc == 0)
            rc = csgi_test_session_run(&response, session, request);
        ck_assert_msg(rc == 0 || rc == CSGI_ENOMEM, "budget %ld: %s", budget, csgi_err_name(rc));
        ck_assert(rc == 0 ? response != NULL : response == NULL);
        if (rc == 0 && test_alloc_count() < budget) {
            ck_assert_str_eq(csgi_test_response_body(response, NULL),
                             "GET http://localhost/home body=[] type=- auth=- cookie=theme=dark; "
                             "sid=42");
            succeeded = 1;
        }
        test_alloc_fail_never();
        csgi_test_response_free(response);
        csgi_test_request_free(request);
        csgi_test_session_free(session);
    }
    ck_assert_int_eq(test_alloc_restore(), 0);
    ck_assert_int_eq(succeeded, 1);
    redirect_app_free(app, &m);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("testing_session");
    TCase *cookies = tcase_create("cookies");
    tcase_add_checked_fixture(cookies, setup, teardown);
    tcase_add_test(cookies, cookie_set_sent_overwritten_deleted);
    tcase_add_test(cookies, cookie_path_scoped);
    tcase_add_test(cookies, cookie_secure_and_http_only);
    tcase_add_test(cookies, cookie_domains);
    tcase_add_test(cookies, cookie_from_response_helpers);
    tcase_add_test(cookies, session_set_cookie_and_arguments);
    suite_add_tcase(suite, cookies);
    TCase *redirects = tcase_create("redirects");
    tcase_add_test(redirects, redirect_chain_302_relative);
    tcase_add_test(redirects, redirect_method_and_body);
    tcase_add_test(redirects, redirect_loop_limit);
    tcase_add_test(redirects, redirect_locations);
    tcase_add_test(redirects, redirect_keeps_cookies_in_session);
    tcase_add_test(redirects, out_of_memory_every_allocation);
    suite_add_tcase(suite, redirects);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
