/*
 * Suite "router": csgi/router.h through the in-process test client:
 * patterns and typed segments, 404, 405 with Allow, OPTIONS, HEAD, the
 * matched values in the environ, URL generation under urlmap, the INI
 * factory (egg:csgi#router) with its errors, and every allocation failing.
 */
#include <csgi.h>
#include <csgi/router.h>

#include "test_alloc.h"
#include "test_deploy.h"
#include "test_files.h"

#include <check.h>

#include <limits.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Applications ---------------------------------------------------------- */

/* Answers "LABEL route=ROUTE" and " NAME=VALUE" for the variables the
   tests use; the label is the state (a string literal). */
static csgi_body *echo_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    static const char *const names[] = {"image_id", "project_id", "id", "name", "rest"};
    char text[512];
    const char *route = csgi_router_route(environ);
    size_t n = (size_t)snprintf(text, sizeof(text), "%s route=%s", (const char *)state,
                                route ? route : "-");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *value = csgi_router_arg(environ, names[i]);
        if (value)
            n += (size_t)snprintf(text + n, sizeof(text) - n, " %s=%s", names[i], value);
    }
    if (n >= sizeof(text)) /* cut, as snprintf did */
        n = sizeof(text) - 1;
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(environ, text, n);
}

static const csgi_app_type echo_type = {"echo", echo_call, NULL};

static csgi_app *echo(const char *label)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &echo_type, (void *)label), 0);
    return app;
}

/* Answers the URL of route "show_image" for image "a b/c", of "servers"
   for project "ab12", and the errors of bad calls. */
static csgi_body *url_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    static const char *const image[] = {"image_id", "a b/c", NULL};
    static const char *const project[] = {"project_id", "ab12", NULL};
    static const char *const not_hex[] = {"project_id", "xyz", NULL};
    static const char *const extra[] = {"project_id", "ab12", "other", "1", NULL};
    static const char *const twice[] = {"project_id", "ab12", "project_id", "cd", NULL};
    const char *a = NULL, *b = NULL, *c = NULL;
    (void)state;
    if (csgi_router_url(environ, "show_image", image, &a) != 0 ||
        csgi_router_url(environ, "servers", project, &b) != 0 ||
        csgi_router_url(environ, "root", NULL, &c) != 0)
        return NULL;
    int errors[6];
    const char *unused = NULL;
    errors[0] = csgi_router_url(environ, "nowhere", NULL, &unused);
    errors[1] = csgi_router_url(environ, "servers", NULL, &unused);
    errors[2] = csgi_router_url(environ, "servers", not_hex, &unused);
    errors[3] = csgi_router_url(environ, "servers", extra, &unused);
    errors[4] = csgi_router_url(environ, "servers", twice, &unused);
    errors[5] = csgi_router_url(NULL, "servers", project, &unused);
    char text[512];
    size_t n = (size_t)snprintf(text, sizeof(text), "%s %s %s %d %d %d %d %d %d", a, b, c,
                                errors[0], errors[1], errors[2], errors[3], errors[4], errors[5]);
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(environ, text, n);
}

static const csgi_app_type url_type = {"url", url_call, NULL};

/* ---- Requests ------------------------------------------------------------------ */

typedef struct reply {
    int code;
    char body[512];
    char allow[128];
} reply;

static reply request(csgi_app *app, const char *method, const char *url)
{
    csgi_test_request *req = NULL;
    csgi_test_response *res = NULL;
    reply r;
    memset(&r, 0, sizeof(r));
    ck_assert_msg(csgi_test_request_new(&req, method, url) == 0, "%s %s: refused", method, url);
    ck_assert_int_eq(csgi_test_request_run(&res, req, app), 0);
    r.code = csgi_test_response_code(res);
    size_t len = 0;
    const char *body = csgi_test_response_body(res, &len);
    ck_assert_uint_lt(len, sizeof(r.body));
    memcpy(r.body, body, len);
    const char *allow = csgi_test_response_header(res, "Allow");
    if (allow)
        snprintf(r.allow, sizeof(r.allow), "%s", allow);
    csgi_test_response_free(res);
    csgi_test_request_free(req);
    return r;
}

static void expect_body(csgi_app *app, const char *method, const char *url, int code,
                        const char *body)
{
    reply r = request(app, method, url);
    ck_assert_msg(r.code == code, "%s %s: %d, expected %d", method, url, r.code, code);
    if (body)
        ck_assert_str_eq(r.body, body);
}

/* The router most tests use. */
static csgi_app *sample_router(void)
{
    csgi_router *router = NULL;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_router_new(&router), 0);
    ck_assert_int_eq(csgi_router_add(router, "root", "GET", "/", echo("root")), 0);
    ck_assert_int_eq(csgi_router_add(router, "list_images", "GET", "/images", echo("list")), 0);
    ck_assert_int_eq(csgi_router_add(router, "create_image", "POST", "/images", echo("create")), 0);
    ck_assert_int_eq(csgi_router_add(router, "latest", "GET", "/images/latest", echo("latest")), 0);
    ck_assert_int_eq(
        csgi_router_add(router, "show_image", "GET,PUT", "/images/{image_id}", echo("show")), 0);
    ck_assert_int_eq(
        csgi_router_add(router, "delete_image", "DELETE", "/images/{image_id}", echo("delete")), 0);
    ck_assert_int_eq(csgi_router_add(router, "servers", "GET POST", "/v2/{project_id:hex}/servers",
                                     echo("servers")),
                     0);
    ck_assert_int_eq(csgi_router_add(router, "server", "GET",
                                     "/v2/{project_id:hex}/servers/{id:int}", echo("server")),
                     0);
    ck_assert_int_eq(csgi_router_add(router, "named", NULL, "/v2/{project_id}/names/{name:[a-z]+}",
                                     echo("named")),
                     0);
    ck_assert_int_eq(csgi_router_add(router, NULL, "HEAD", "/head", echo("head")), 0);
    ck_assert_int_eq(csgi_router_add(router, "options", "OPTIONS", "/opt", echo("opt")), 0);
    ck_assert_int_eq(csgi_router_app(&app, &router), 0);
    ck_assert_ptr_null(router);
    ck_assert_str_eq(csgi_app_name(app), "router");
    return app;
}

/* ---- Tests ------------------------------------------------------------------------ */

START_TEST(matching_and_arguments)
{
    csgi_app *app = sample_router();
    expect_body(app, "GET", "/", 200, "root route=root");
    expect_body(app, "GET", "/images", 200, "list route=list_images");
    expect_body(app, "POST", "/images", 200, "create route=create_image");
    expect_body(app, "GET", "/images/latest", 200, "latest route=latest");
    expect_body(app, "GET", "/images/42", 200, "show route=show_image image_id=42");
    expect_body(app, "PUT", "/images/42", 200, "show route=show_image image_id=42");
    expect_body(app, "DELETE", "/images/42", 200, "delete route=delete_image image_id=42");
    /* Decoded, as PATH_INFO is. */
    expect_body(app, "GET", "/images/a%20b", 200, "show route=show_image image_id=a b");
    expect_body(app, "GET", "/v2/aB09/servers", 200, "servers route=servers project_id=aB09");
    expect_body(app, "POST", "/v2/ff/servers", 200, "servers route=servers project_id=ff");
    expect_body(app, "GET", "/v2/ff/servers/17", 200, "server route=server project_id=ff id=17");
    expect_body(app, "PATCH", "/v2/x/names/abc", 200, "named route=named project_id=x name=abc");
    csgi_app_free(app);
}
END_TEST

START_TEST(typed_segments_reject_and_404)
{
    csgi_app *app = sample_router();
    expect_body(app, "GET", "/v2/xyz/servers", 404, NULL);   /* not hex */
    expect_body(app, "GET", "/v2/ff/servers/1a", 404, NULL); /* not int */
    expect_body(app, "GET", "/v2/ff/names/ABC", 404, NULL);  /* regex */
    expect_body(app, "GET", "/images/", 404, NULL);          /* empty segment */
    expect_body(app, "GET", "/images/1/2", 404, NULL);
    expect_body(app, "GET", "/images//", 404, NULL);
    expect_body(app, "GET", "/nothing", 404, NULL);
    reply r = request(app, "GET", "/nothing");
    ck_assert_ptr_nonnull(strstr(r.body, "404 Not Found"));
    csgi_app_free(app);
}
END_TEST

START_TEST(method_not_allowed_options_head)
{
    csgi_app *app = sample_router();
    reply r = request(app, "PATCH", "/images");
    ck_assert_int_eq(r.code, 405);
    ck_assert_str_eq(r.allow, "GET, POST, HEAD, OPTIONS");
    /* Both patterns that match /images/latest count. */
    r = request(app, "POST", "/images/latest");
    ck_assert_int_eq(r.code, 405);
    ck_assert_str_eq(r.allow, "GET, PUT, DELETE, HEAD, OPTIONS");
    r = request(app, "OPTIONS", "/images/7");
    ck_assert_int_eq(r.code, 204);
    ck_assert_str_eq(r.allow, "GET, PUT, DELETE, HEAD, OPTIONS");
    ck_assert_str_eq(r.body, "");
    expect_body(app, "OPTIONS", "/opt", 200, "opt route=options");
    r = request(app, "GET", "/opt");
    ck_assert_int_eq(r.code, 405);
    ck_assert_str_eq(r.allow, "OPTIONS");
    r = request(app, "GET", "/head");
    ck_assert_str_eq(r.allow, "HEAD, OPTIONS");
    /* HEAD: a HEAD route first, else the GET route, without a body. */
    r = request(app, "HEAD", "/head");
    ck_assert_int_eq(r.code, 200);
    r = request(app, "HEAD", "/images/3");
    ck_assert_int_eq(r.code, 200);
    ck_assert_str_eq(r.body, "");
    r = request(app, "HEAD", "/v2/ff/servers");
    ck_assert_int_eq(r.code, 200);
    csgi_app_free(app);
}
END_TEST

/* The router's own answers (404, 405, 204; to HEAD too) pass strict lint. */
START_TEST(answers_pass_strict_lint)
{
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.strict = 1;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_lint_new(&app, sample_router(), &options), 0);
    static const struct {
        const char *method, *url;
        int code;
    } cases[] = {
        {"GET", "/nothing", 404},      {"PATCH", "/images", 405}, {"OPTIONS", "/images", 204},
        {"OPTIONS", "/images/1", 204}, {"HEAD", "/nothing", 404}, {"GET", "/images/1", 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_test_request *req = NULL;
        csgi_test_response *res = NULL;
        ck_assert_int_eq(csgi_test_request_new(&req, cases[i].method, cases[i].url), 0);
        ck_assert_int_eq(csgi_test_request_run(&res, req, app), 0);
        ck_assert_msg(csgi_test_response_code(res) == cases[i].code, "%s %s: %d", cases[i].method,
                      cases[i].url, csgi_test_response_code(res));
        ck_assert_uint_eq(csgi_test_response_log_count(res), 0);
        csgi_test_response_free(res);
        csgi_test_request_free(req);
    }
    csgi_app_free(app);
}
END_TEST

START_TEST(not_found_app)
{
    csgi_router *router = NULL;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_router_new(&router), 0);
    ck_assert_int_eq(csgi_router_add(router, NULL, "*", "/any", echo("any")), 0);
    ck_assert_int_eq(csgi_router_set_not_found(router, echo("first")), 0);
    ck_assert_int_eq(csgi_router_set_not_found(router, echo("missing")), 0);
    ck_assert_int_eq(csgi_router_app(&app, &router), 0);
    expect_body(app, "BREW", "/any", 200, "any route=-");
    expect_body(app, "GET", "/else", 200, "missing route=-");
    csgi_app_free(app);
    ck_assert_int_eq(csgi_router_set_not_found(NULL, echo("x")), CSGI_EINVAL);
}
END_TEST

START_TEST(urls_under_urlmap)
{
    csgi_router *router = NULL;
    csgi_app *routes = NULL, *app = NULL;
    ck_assert_int_eq(csgi_router_new(&router), 0);
    ck_assert_int_eq(csgi_router_add(router, "root", "GET", "/", echo("root")), 0);
    ck_assert_int_eq(
        csgi_router_add(router, "show_image", "GET", "/images/{image_id}", echo("show")), 0);
    ck_assert_int_eq(
        csgi_router_add(router, "servers", "GET", "/v2/{project_id:hex}/servers", echo("s")), 0);
    csgi_app *urls = NULL;
    ck_assert_int_eq(csgi_app_new(&urls, &url_type, NULL), 0);
    ck_assert_int_eq(csgi_router_add(router, "urls", "GET", "/urls", urls), 0);
    ck_assert_int_eq(csgi_router_app(&routes, &router), 0);

    char expected[256];
    snprintf(expected, sizeof(expected), "/images/a%%20b%%2Fc /v2/ab12/servers / %d %d %d %d %d %d",
             CSGI_ENOTFOUND, CSGI_EINVAL, CSGI_EINVAL, CSGI_EINVAL, CSGI_EINVAL, CSGI_EINVAL);
    expect_body(routes, "GET", "/urls", 200, expected);

    csgi_urlmap *map = NULL;
    ck_assert_int_eq(csgi_urlmap_new(&map), 0);
    ck_assert_int_eq(csgi_urlmap_add(map, "/api", csgi_app_ref(routes)), 0);
    ck_assert_int_eq(csgi_urlmap_app(&app, &map), 0);
    snprintf(expected, sizeof(expected),
             "/api/images/a%%20b%%2Fc /api/v2/ab12/servers /api/ %d %d %d %d %d %d", CSGI_ENOTFOUND,
             CSGI_EINVAL, CSGI_EINVAL, CSGI_EINVAL, CSGI_EINVAL, CSGI_EINVAL);
    expect_body(app, "GET", "/api/urls", 200, expected);
    expect_body(app, "GET", "/api/images/9", 200, "show route=show_image image_id=9");
    csgi_app_free(app);
    csgi_app_free(routes);
}
END_TEST

START_TEST(arguments_outside_a_route)
{
    const char *out = "x";
    ck_assert_ptr_null(csgi_router_arg(NULL, "x"));
    ck_assert_ptr_null(csgi_router_route(NULL));
    ck_assert_int_eq(csgi_router_url(NULL, "x", NULL, &out), CSGI_EINVAL);
    ck_assert_int_eq(csgi_router_url(NULL, "x", NULL, NULL), CSGI_EINVAL);
}
END_TEST

START_TEST(bad_patterns_and_arguments)
{
    static const char *const bad[] = {
        "",       "images",  "/img{id}.png", "/{}",    "/{1x}",  "/{a b}",
        "/{id:}", "/{id:[}", "/{a}/{a:int}", "/x/{id", "/x/id}",
    };
    static const char *const bad_methods[] = {"", " , ", "GE(T", "GET;POST"};
    csgi_router *router = NULL;
    ck_assert_int_eq(csgi_router_new(&router), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(csgi_router_add(router, NULL, "GET", bad[i], echo("x")) == CSGI_EINVAL,
                      "pattern \"%s\"", bad[i]);
    for (size_t i = 0; i < sizeof(bad_methods) / sizeof(bad_methods[0]); i++)
        ck_assert_msg(csgi_router_add(router, NULL, bad_methods[i], "/m", echo("x")) == CSGI_EINVAL,
                      "methods \"%s\"", bad_methods[i]);
    char deep[400] = "";
    for (int i = 0; i < 65; i++)
        strcat(deep, "/a");
    ck_assert_int_eq(csgi_router_add(router, NULL, "GET", deep, echo("x")), CSGI_EINVAL);

    ck_assert_int_eq(csgi_router_add(router, "a", "GET", "/a/{id:[0-9]{2}}", echo("a")), 0);
    /* The same expression shares the node; a different name is fine. */
    ck_assert_int_eq(csgi_router_add(router, "b", "GET", "/a/{x:[0-9]{2}}/b", echo("b")), 0);
    ck_assert_int_eq(csgi_router_add(router, "a", "GET", "/other", echo("x")), CSGI_EINVAL);
    ck_assert_int_eq(csgi_router_add(router, NULL, "POST,GET", "/a/{y:[0-9]{2}}", echo("x")),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_router_add(router, NULL, "*", "/a/{id:[0-9]{2}}", echo("x")),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_router_add(router, NULL, "POST", "/a/{id:[0-9]{2}}", echo("p")), 0);
    ck_assert_int_eq(csgi_router_add(NULL, NULL, "GET", "/x", echo("x")), CSGI_EINVAL);
    ck_assert_int_eq(csgi_router_add(router, NULL, "GET", NULL, echo("x")), CSGI_EINVAL);
    ck_assert_int_eq(csgi_router_add(router, NULL, "GET", "/x", NULL), CSGI_EINVAL);
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_router_app(&app, &router), 0);
    expect_body(app, "GET", "/a/12", 200, "a route=a id=12");
    expect_body(app, "POST", "/a/12", 200, "p route=- id=12");
    expect_body(app, "GET", "/a/123", 404, NULL);
    csgi_app_free(app);

    ck_assert_int_eq(csgi_router_new(NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_router_app(NULL, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_router_new(&router), 0);
    ck_assert_int_eq(csgi_router_app(NULL, &router), CSGI_EINVAL);
    ck_assert_ptr_null(router);
    csgi_router_free(NULL);
}
END_TEST

/* Many routes: the tree finds the last one added. */
START_TEST(hundred_routes)
{
    csgi_router *router = NULL;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_router_new(&router), 0);
    char pattern[64];
    for (int i = 0; i < 100; i++) {
        snprintf(pattern, sizeof(pattern), "/v2/{project_id:hex}/resource%d/{id:int}", i);
        ck_assert_int_eq(csgi_router_add(router, NULL, "GET", pattern, echo("r")), 0);
    }
    ck_assert_int_eq(csgi_router_app(&app, &router), 0);
    expect_body(app, "GET", "/v2/ab/resource99/5", 200, "r route=- project_id=ab id=5");
    expect_body(app, "GET", "/v2/ab/resource0/5", 200, "r route=- project_id=ab id=5");
    expect_body(app, "GET", "/v2/ab/resource100/5", 404, NULL);
    csgi_app_free(app);
}
END_TEST

/* ---- The matching against a plain reference --------------------------------- */

/*
 * The router finds literal children by hash, reads the path a word at a
 * time and checks int and hex eight bytes at once. These tests hold it to
 * the documented rules, done the plain way here: a tree built the same way
 * (one literal child per text, one variable child per type and expression,
 * in the order first added), searched depth first with byte compares, on
 * the decoded path. Thousands of paths made of tokens chosen to fall on
 * either side of every fast path (segments of 7 to 25 bytes that differ in
 * their first, middle or last bytes; digits and hex digits next to the
 * bytes around their ranges; escapes; empty segments, trailing slashes)
 * must get the same route and values, or the same 404 or 405.
 */

enum { REF_LITERAL, REF_ANY, REF_INT, REF_HEX, REF_REGEX };

typedef struct ref_node ref_node;

typedef struct ref_child {
    int kind;
    char text[64]; /* the literal, or the expression */
    regex_t regex;
    ref_node *node;
} ref_child;

struct ref_node {
    ref_child children[48];
    size_t count;
    size_t routes[8];
    size_t route_count;
};

/* The table: methods, pattern. Variable names are v and the segment's
   index, so that the expected values follow from the path. */
static const char *const ref_routes[][2] = {
    {"GET", "/"},
    {"GET", "/images"},
    {"POST", "/images"},
    {"GET", "/images/"},
    {"GET", "/images/latest"},
    {"GET,PUT", "/images/{v1}"},
    {"GET", "/images/{v1:int}/meta"},
    {"GET", "/images/{v1}/thumb"},
    {"GET", "/v2/{v1:hex}/servers"},
    {"GET", "/v2/{v1:hex}/servers/{v3:int}"},
    {"GET", "/v2/{v1:hex}/servers/{v3:int}/action"},
    {"GET", "/v2/{v1:int}/servers/{v3}"},
    {"GET", "/v2/{v1}/names/{v3:[a-z]+}"},
    {"GET,POST", "/v2/123/servers/{v3:hex}"},
    {"PROPFIND", "/dav/{v1}"},
    {"*", "/s/{v1}/{v2:hex}/{v3:int}"},
    {"GET", "/abcdefg"},
    {"GET", "/abcdefgh"},
    {"GET", "/abcdefghi"},
    {"GET", "/abcdefghijklmnop"},
    {"GET", "/abcdefghijklmnopq"},
    {"GET", "/abcdefghXjklmnopq"},
    {"GET", "/abcdefghijkXmnopqrstuvwxy"},
    {"GET", "/abcdefghijklmnopqrstuvwxy"},
    {"POST", "/abcdefghijklmnopqrstuvwxy/{v1:hex}"},
    {"GET", "/deep/a/b/c/d/e/f/g"},
    {"GET", "/trail/{v1:int}/"},
    {"GET", "/t/{v1:[0-9]{3}}/x"},
    {"GET", "/t/{v1:int}/x"},
    {"GET", "/t/{v1:hex}/y"},
    {"GET", "//double"},
    {"GET", "/x1"},
    {"GET", "/x2/{v1:int}"},
    {"GET", "/x3/{v1:hex}"},
    {"GET", "/x4/ff"},
    {"GET", "/x4/{v1:hex}"},
    {"GET", "/x4/{v1:int}/n"},
    {"GET", "/row/abcdefghijklmnop"},
    {"GET", "/row/abcdefgh"},
    {"GET", "/row/abcdefghijklmnopqrstuvwxy"},
    {"GET", "/{v0:int}"},
    {"GET", "/{v0:hex}/h"},
    {"GET", "/{v0}/any/{v2}"},
};
#define REF_ROUTES (sizeof(ref_routes) / sizeof(ref_routes[0]))

static ref_node *ref_new_node(void)
{
    ref_node *n = calloc(1, sizeof(*n));
    ck_assert_ptr_nonnull(n);
    return n;
}

static void ref_free(ref_node *n)
{
    for (size_t i = 0; i < n->count; i++) {
        if (n->children[i].kind == REF_REGEX)
            regfree(&n->children[i].regex);
        ref_free(n->children[i].node);
    }
    free(n);
}

static ref_node *ref_build(void)
{
    ref_node *root = ref_new_node();
    for (size_t r = 0; r < REF_ROUTES; r++) {
        ref_node *n = root;
        const char *p = ref_routes[r][1] + 1;
        for (;;) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            ref_child want = {REF_LITERAL, "", {0}, NULL};
            ck_assert_uint_lt(len, sizeof(want.text));
            if (len && p[0] == '{') {
                const char *colon = memchr(p, ':', len);
                want.kind = REF_ANY;
                if (colon) {
                    size_t type_len = (size_t)(p + len - 1 - colon - 1);
                    memcpy(want.text, colon + 1, type_len);
                    want.kind = strcmp(want.text, "int") == 0   ? REF_INT
                                : strcmp(want.text, "hex") == 0 ? REF_HEX
                                                                : REF_REGEX;
                }
            } else {
                memcpy(want.text, p, len);
            }
            ref_child *found = NULL;
            for (size_t i = 0; i < n->count && !found; i++)
                if (n->children[i].kind == want.kind &&
                    (want.kind == REF_ANY || want.kind == REF_INT || want.kind == REF_HEX ||
                     strcmp(n->children[i].text, want.text) == 0))
                    found = &n->children[i];
            if (!found) {
                ck_assert_uint_lt(n->count, sizeof(n->children) / sizeof(n->children[0]));
                found = &n->children[n->count++];
                *found = want;
                if (want.kind == REF_REGEX) {
                    char anchored[80];
                    snprintf(anchored, sizeof(anchored), "^(%s)$", want.text);
                    ck_assert_int_eq(regcomp(&found->regex, anchored, REG_EXTENDED | REG_NOSUB), 0);
                }
                found->node = ref_new_node();
            }
            n = found->node;
            if (!slash)
                break;
            p = slash + 1;
        }
        n->routes[n->route_count++] = r;
    }
    return root;
}

static int ref_accepts(size_t route, const char *method)
{
    const char *methods = ref_routes[route][0];
    if (strcmp(methods, "*") == 0)
        return 1;
    size_t len = strlen(method);
    for (const char *p = methods; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && memcmp(p, method, len) == 0)
            return 1;
        p += n + (comma != NULL);
    }
    return 0;
}

typedef struct ref_match {
    const char *method;
    long route; /* -1: none */
    int path_matched;
    const char *values[16]; /* per segment index, or NULL */
    size_t value_len[16];
} ref_match;

static int ref_fits(const ref_child *c, const char *text, size_t len)
{
    char copy[256];
    ck_assert_uint_lt(len, sizeof(copy));
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)text[i];
        int digit = b >= '0' && b <= '9';
        int hex = digit || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
        if ((c->kind == REF_INT && !digit) || (c->kind == REF_HEX && !hex) ||
            (c->kind == REF_REGEX && b == '\0'))
            return 0;
    }
    if (c->kind != REF_REGEX)
        return 1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    return regexec(&c->regex, copy, 0, NULL, 0) == 0;
}

static int ref_walk(const ref_node *n, const char *text, const char *end, size_t depth,
                    ref_match *m);

static int ref_step(const ref_node *n, const char *stop, const char *end, size_t depth,
                    ref_match *m)
{
    if (stop < end)
        return ref_walk(n, stop + 1, end, depth + 1, m);
    for (size_t i = 0; i < n->route_count; i++)
        if (ref_accepts(n->routes[i], m->method))
            return m->route = (long)n->routes[i], 1;
    if (strcmp(m->method, "HEAD") == 0)
        for (size_t i = 0; i < n->route_count; i++)
            if (ref_accepts(n->routes[i], "GET"))
                return m->route = (long)n->routes[i], 1;
    if (n->route_count)
        m->path_matched = 1;
    return 0;
}

static int ref_walk(const ref_node *n, const char *text, const char *end, size_t depth,
                    ref_match *m)
{
    const char *stop = text;
    while (stop < end && *stop != '/')
        stop++;
    size_t len = (size_t)(stop - text);
    for (size_t i = 0; i < n->count; i++) {
        const ref_child *c = &n->children[i];
        if (c->kind == REF_LITERAL && strlen(c->text) == len && memcmp(c->text, text, len) == 0 &&
            ref_step(c->node, stop, end, depth, m))
            return 1;
    }
    if (len == 0 || depth >= 16)
        return 0;
    for (size_t i = 0; i < n->count; i++) {
        const ref_child *c = &n->children[i];
        if (c->kind == REF_LITERAL || !ref_fits(c, text, len))
            continue;
        m->values[depth] = text;
        m->value_len[depth] = len;
        if (ref_step(c->node, stop, end, depth, m))
            return 1;
        m->values[depth] = NULL;
    }
    return 0;
}

/* The decoded path of a URL, as PATH_INFO holds it. */
static size_t ref_decode(char *out, const char *url)
{
    size_t n = 0;
    for (size_t i = 0; url[i] && url[i] != '?'; i++) {
        unsigned high, low;
        if (url[i] == '%' && sscanf(url + i + 1, "%1x%1x", &high, &low) == 2) {
            out[n++] = (char)(high << 4 | low);
            i += 2;
        } else {
            out[n++] = url[i];
        }
    }
    out[n] = '\0';
    return n;
}

/* The expected answer: "200 r<index> v<segment>=<value>..." or the code. */
static void ref_expect(const ref_node *root, const char *method, const char *url, char *out,
                       size_t size)
{
    char path[512];
    size_t len = ref_decode(path, url);
    ref_match m;
    memset(&m, 0, sizeof(m));
    m.method = method;
    m.route = -1;
    if (len == 0 || path[0] != '/' || !ref_walk(root, path + 1, path + len, 0, &m)) {
        snprintf(out, size, "%d", m.path_matched ? 405 : 404);
        return;
    }
    size_t n = (size_t)snprintf(out, size, "200 r%ld", m.route);
    for (size_t i = 0; i < 16; i++)
        if (m.values[i])
            n += (size_t)snprintf(out + n, size - n, " v%zu=%.*s", i, (int)m.value_len[i],
                                  m.values[i]);
}

/* Answers "r<index>" and the values of v0 to v15 that are set. */
static csgi_body *index_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    char text[512];
    size_t n = (size_t)snprintf(text, sizeof(text), "r%ld", (long)(intptr_t)state);
    for (int i = 0; i < 16; i++) {
        char name[8];
        snprintf(name, sizeof(name), "v%d", i);
        const char *value = csgi_router_arg(environ, name);
        if (value)
            n += (size_t)snprintf(text + n, sizeof(text) - n, " %s=%s", name, value);
    }
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(environ, text, n);
}

static const csgi_app_type index_type = {"index", index_call, NULL};

static csgi_app *ref_router(void)
{
    csgi_router *router = NULL;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_router_new(&router), 0);
    for (size_t r = 0; r < REF_ROUTES; r++) {
        csgi_app *target = NULL;
        ck_assert_int_eq(csgi_app_new(&target, &index_type, (void *)(intptr_t)r), 0);
        ck_assert_msg(csgi_router_add(router, NULL, ref_routes[r][0], ref_routes[r][1], target) ==
                          0,
                      "route %s", ref_routes[r][1]);
    }
    ck_assert_int_eq(csgi_router_app(&app, &router), 0);
    return app;
}

static void ref_check(csgi_app *app, const ref_node *root, const char *method, const char *url)
{
    char expected[600], got[600];
    ref_expect(root, method, url, expected, sizeof(expected));
    reply r = request(app, method, url);
    if (r.code == 200)
        snprintf(got, sizeof(got), "200 %s", r.body);
    else
        snprintf(got, sizeof(got), "%d", r.code);
    ck_assert_msg(strcmp(got, expected) == 0, "%s %s: \"%s\", expected \"%s\"", method, url, got,
                  expected);
}

/* Paths of the table's own shapes, then random paths of tokens. */
START_TEST(matches_the_reference)
{
    static const char *const tokens[] = {"",
                                         "images",
                                         "latest",
                                         "v2",
                                         "servers",
                                         "names",
                                         "action",
                                         "meta",
                                         "thumb",
                                         "123",
                                         "42",
                                         "0",
                                         "007",
                                         "9",
                                         "ff",
                                         "FF",
                                         "fF09",
                                         "dead",
                                         "beef12",
                                         "0x1",
                                         "abc",
                                         "ABC",
                                         "a%20b",
                                         "dav",
                                         "s",
                                         "trail",
                                         "t",
                                         "x",
                                         "y",
                                         "n",
                                         "h",
                                         "any",
                                         "deep",
                                         "row",
                                         "a",
                                         "b",
                                         "c",
                                         "d",
                                         "e",
                                         "f",
                                         "g",
                                         "x1",
                                         "x2",
                                         "x3",
                                         "x4",
                                         "abcdefg",
                                         "abcdefgh",
                                         "abcdefghi",
                                         "abcdefgH",
                                         "bbcdefgh",
                                         "abcdefghijklmnop",
                                         "abcdefghijklmnoP",
                                         "abcdefghijklmnopq",
                                         "abcdefghXjklmnopq",
                                         "abcdefghYjklmnopq",
                                         "abcdefghijklmnopr",
                                         "abcdefghijkXmnopqrstuvwxy",
                                         "abcdefghijklmnopqrstuvwxy",
                                         "abcdefghijklmnopqrstuvwxz",
                                         "abcdefghijklMnopqrstuvwxy",
                                         "double",
                                         "12345678901234567890",
                                         "deadbeefdeadbeefdeadbeef",
                                         "deadbeefdeadbeefdeadbeeg",
                                         "0123456789abcdefABCDEF0",
                                         "%41",
                                         "%2F",
                                         "%2f42",
                                         "x%20y",
                                         "1%32",
                                         "%e2%82%ac",
                                         "ff%47",
                                         "%B0",
                                         "%B9",
                                         "9%3A",
                                         "@",
                                         "%60",
                                         "G",
                                         "g",
                                         "/",
                                         ":9",
                                         "0/",
                                         "1234567",
                                         "12345678",
                                         "123456789",
                                         "1234567a",
                                         "123456780/",
                                         "abcdef0",
                                         "abcdef01",
                                         "abcdef012",
                                         "abcdefg0",
                                         "%30%31"};
    static const char *const methods[] = {"GET", "POST", "PUT", "PROPFIND", "HEAD", "GETX"};
    ref_node *root = ref_build();
    csgi_app *app = ref_router();
    char url[512];

    /* Every route's own shape, with values that fit and with near misses. */
    static const char *const values[] = {"42", "ff", "abc", "1a", "", "12345678901234567"};
    for (size_t r = 0; r < REF_ROUTES; r++) {
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            size_t n = 0;
            for (const char *p = ref_routes[r][1]; *p && n + 32 < sizeof(url); p++) {
                if (*p != '{') {
                    url[n++] = *p;
                    continue;
                }
                n += (size_t)snprintf(url + n, sizeof(url) - n, "%s", values[v]);
                for (int braces = 1; braces;) /* to the variable's own '}' */
                    braces += *++p == '{' ? 1 : *p == '}' ? -1 : 0;
            }
            url[n] = '\0';
            if (url[0] != '/')
                continue;
            for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
                if (strcmp(methods[k], "HEAD") != 0)
                    ref_check(app, root, methods[k], url);
        }
    }

    /* Random paths (a fixed sequence). */
    uint32_t state = 2463534242u;
    for (int i = 0; i < 6000; i++) {
        size_t n = 0;
        state ^= state << 13, state ^= state >> 17, state ^= state << 5;
        int depth = 1 + (int)(state % 6);
        for (int d = 0; d < depth; d++) {
            state ^= state << 13, state ^= state >> 17, state ^= state << 5;
            n += (size_t)snprintf(url + n, sizeof(url) - n, "/%s",
                                  tokens[state % (sizeof(tokens) / sizeof(tokens[0]))]);
        }
        if (state % 7 == 0)
            n += (size_t)snprintf(url + n, sizeof(url) - n, "/");
        state ^= state << 13, state ^= state >> 17, state ^= state << 5;
        const char *method = methods[state % 4];
        ref_check(app, root, method, url);
    }
    csgi_app_free(app);
    ref_free(root);
}
END_TEST

/* The cases the reference test covers at random, by name. */
START_TEST(literal_index_and_typed_segments)
{
    ref_node *root = ref_build();
    csgi_app *app = ref_router();
    static const struct {
        const char *method, *url, *answer;
    } cases[] = {
        /* A literal that is also an int or hex wins; when its subtree has
           no route, the variables are tried. */
        {"GET", "/v2/123/servers/ab", "200 r13 v3=ab"},
        {"GET", "/v2/123/servers/xyz", "200 r11 v1=123 v3=xyz"},
        {"GET", "/v2/123/servers", "200 r8 v1=123"},
        {"GET", "/x4/ff", "200 r34"},
        {"GET", "/x4/fe", "200 r35 v1=fe"},
        {"GET", "/x4/12/n", "200 r36 v1=12"},
        /* A hex value of three words whose subtree fails: int after it. */
        {"GET", "/v2/0123456789012345678/servers/x", "200 r11 v1=0123456789012345678 v3=x"},
        {"GET", "/v2/0123456789abcdefX/servers/1", "404"},
        {"GET", "/v2/0123456789abcdef01234/servers/1/action",
         "200 r10 v1=0123456789abcdef01234 v3=1"},
        /* Lengths around the words: first, middle and last bytes. */
        {"GET", "/abcdefgh", "200 r17"},
        {"GET", "/abcdefgH", "404"},
        {"GET", "/abcdefghXjklmnopq", "200 r21"},
        {"GET", "/abcdefghYjklmnopq", "404"},
        {"GET", "/abcdefghijklmnopqrstuvwxy", "200 r23"},
        {"GET", "/abcdefghijklMnopqrstuvwxy", "404"},
        {"GET", "/abcdefghijkXmnopqrstuvwxy", "200 r22"},
        /* A few literals compared in a row: the same length and first
           word, another last word or middle. */
        {"GET", "/row/abcdefghijklmnop", "200 r37"},
        {"GET", "/row/abcdefghijklmnoP", "404"},
        {"GET", "/row/Abcdefghijklmnop", "404"},
        {"GET", "/row/abcdefgh", "200 r38"},
        {"GET", "/row/abcdefgH", "404"},
        {"GET", "/row/abcdefghijklmnopqrstuvwxy", "200 r39"},
        {"GET", "/row/abcdefghijkXmnopqrstuvwxy", "404"},
        /* Escapes: PATH_INFO is decoded, "%2F" included. */
        {"GET", "/%61bcdefgh", "200 r17"},
        {"GET", "/images/%34%32/meta", "200 r6 v1=42"},
        {"GET", "/images/a%2Fb", "404"},
        {"GET", "/images/a%20b/thumb", "200 r7 v1=a b"},
        {"GET", "/images/%B0", "200 r5 v1=\xb0"},
        {"GET", "/images/%B0/meta", "404"},
        {"GET", "/x3/%B9", "404"},
        {"GET", "/x3/%46", "200 r33 v1=F"},
        /* Trailing and doubled slashes count. */
        {"GET", "/images/", "200 r3"},
        {"GET", "/trail/7/", "200 r26 v1=7"},
        {"GET", "/trail/7", "404"},
        {"GET", "//double", "200 r30"},
        {"GET", "/double", "404"},
        {"GET", "/images//", "404"},
        /* A regular expression on a segment NUL-terminated in place: the
           walk goes on past it. */
        {"GET", "/t/123/x", "200 r27 v1=123"},
        {"GET", "/t/1234/x", "200 r28 v1=1234"},
        {"GET", "/t/123/y", "200 r29 v1=123"},
        /* Methods without a bit of their own. */
        {"PROPFIND", "/dav/x", "200 r14 v1=x"},
        {"GETX", "/s/a/b/1", "200 r15 v1=a v2=b v3=1"},
        {"GETX", "/images", "405"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char expected[600];
        ref_expect(root, cases[i].method, cases[i].url, expected, sizeof(expected));
        ck_assert_msg(strcmp(expected, cases[i].answer) == 0, "reference: %s %s: \"%s\"",
                      cases[i].method, cases[i].url, expected);
        ref_check(app, root, cases[i].method, cases[i].url);
    }
    csgi_app_free(app);
    ref_free(root);
}
END_TEST

/* Answers "id=ID name=NAME" whatever their length (NAME empty without
   one). */
static csgi_body *long_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    const char *id = csgi_router_arg(environ, "id");
    const char *name = csgi_router_arg(environ, "name");
    (void)state;
    if (!id)
        return NULL;
    if (!name)
        name = "";
    size_t size = strlen(id) + strlen(name) + 16;
    char *text = csgi_environ_alloc(environ, size);
    if (!text || csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    int n = snprintf(text, size, "id=%s name=%s", id, name);
    return csgi_body_bytes(environ, text, (size_t)n);
}

static const csgi_app_type long_type = {"long", long_call, NULL};

/* Paths longer than any buffer on the stack, and captured values of every
   length around the words. */
START_TEST(long_paths_and_values)
{
    csgi_router *router = NULL;
    csgi_app *app = NULL, *target = NULL;
    ck_assert_int_eq(csgi_router_new(&router), 0);
    ck_assert_int_eq(csgi_app_new(&target, &long_type, NULL), 0);
    ck_assert_int_eq(csgi_router_add(router, "n", "GET", "/n/{id:int}/{name}/end", target), 0);
    ck_assert_int_eq(csgi_router_add(router, "h", "GET", "/h/{id:hex}", csgi_app_ref(target)), 0);
    ck_assert_int_eq(csgi_router_app(&app, &router), 0);
    char url[3000], body[3000], digits[1200], name[1200];
    for (size_t len = 1; len < 1100; len += len < 40 ? 1 : 97) {
        for (size_t i = 0; i < len; i++) {
            digits[i] = (char)('0' + i % 10);
            name[i] = (char)('a' + i % 26);
        }
        digits[len] = name[len] = '\0';
        snprintf(url, sizeof(url), "/n/%s/%s/end", digits, name);
        snprintf(body, sizeof(body), "id=%s name=%s", digits, name);
        csgi_test_response *res = NULL;
        ck_assert_int_eq(csgi_test_get(&res, app, url), 0);
        ck_assert_int_eq(csgi_test_response_code(res), 200);
        ck_assert_str_eq(csgi_test_response_body(res, NULL), body);
        csgi_test_response_free(res);
        /* One byte that is no digit, at the start, middle or end. */
        for (size_t at = 0; at<len; at += len> 2 ? len / 2 : 1) {
            static const struct {
                char byte;
                int hex; /* /h/DIGITS, else /n/DIGITS/x/end */
                int code;
            } tries[] = {{'a', 0, 404}, {'a', 1, 200}, {'g', 1, 404}, {'/', 1, 404}, {':', 0, 404}};
            char saved = digits[at];
            for (size_t t = 0; t < sizeof(tries) / sizeof(tries[0]); t++) {
                digits[at] = tries[t].byte;
                if (tries[t].hex)
                    snprintf(url, sizeof(url), "/h/%s", digits);
                else
                    snprintf(url, sizeof(url), "/n/%s/x/end", digits);
                ck_assert_int_eq(csgi_test_get(&res, app, url), 0);
                ck_assert_msg(csgi_test_response_code(res) == tries[t].code, "%s: %d", url,
                              csgi_test_response_code(res));
                csgi_test_response_free(res);
            }
            digits[at] = saved;
        }
    }
    csgi_app_free(app);
}
END_TEST

/* A filter that changes the request before the router sees it: state is
   what to do (a string literal), the next application is global. */
static csgi_app *rewrite_next;

static csgi_body *rewrite_call(void *state, csgi_environ *environ,
                               csgi_start_response *start_response)
{
    const char *what = state;
    int err = 0;
    if (strcmp(what, "method") == 0)
        err = csgi_environ_set(environ, "REQUEST_METHOD", "DELETE");
    else if (strcmp(what, "no method") == 0)
        err = csgi_environ_remove(environ, "REQUEST_METHOD");
    else if (strcmp(what, "path") == 0)
        err = csgi_environ_set(environ, "PATH_INFO", "/images/latest");
    else if (strcmp(what, "empty path") == 0)
        err = csgi_environ_set(environ, "PATH_INFO", "");
    else if (strcmp(what, "no path") == 0)
        err = csgi_environ_remove(environ, "PATH_INFO");
    else if (strcmp(what, "relative path") == 0)
        err = csgi_environ_set(environ, "PATH_INFO", "images");
    if (err)
        return NULL;
    return csgi_app_call(rewrite_next, environ, start_response);
}

static const csgi_app_type rewrite_type = {"rewrite", rewrite_call, NULL};

/* The router reads REQUEST_METHOD and PATH_INFO as the environ holds them
   when it runs, also when middleware changed them (the environ is then
   built). */
START_TEST(keys_changed_by_middleware)
{
    static const struct {
        const char *what, *method, *url;
        int code;
        const char *body;
    } cases[] = {
        {"method", "GET", "/images/42", 200, "delete route=delete_image image_id=42"},
        {"no method", "POST", "/images/42", 200, "show route=show_image image_id=42"},
        {"path", "GET", "/nothing", 200, "latest route=latest"},
        {"empty path", "GET", "/nothing", 200, "root route=root"},
        {"no path", "GET", "/nothing", 200, "root route=root"},
        {"relative path", "GET", "/images", 404, NULL},
        {"none", "GET", "/images/7", 200, "show route=show_image image_id=7"},
    };
    rewrite_next = sample_router();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_app *app = NULL;
        ck_assert_int_eq(csgi_app_new(&app, &rewrite_type, (void *)cases[i].what), 0);
        expect_body(app, cases[i].method, cases[i].url, cases[i].code, cases[i].body);
        csgi_app_free(app);
    }
    csgi_app_free(rewrite_next);
}
END_TEST

/* ---- INI factory ------------------------------------------------------------- */

static int echo_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                        const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)error;
    /* The state must outlive the conf: one of the labels below. */
    static const char *const labels[] = {"list", "show", "missing"};
    const char *label = csgi_conf_get(local_conf, "label");
    const char *state = "?";
    for (size_t i = 0; label && i < sizeof(labels) / sizeof(labels[0]); i++)
        if (strcmp(label, labels[i]) == 0)
            state = labels[i];
    return csgi_app_new(out, &echo_type, (void *)state);
}

static csgi_loader *new_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:test#echo", CSGI_FACTORY_APP, echo_factory), 0);
    return loader;
}

static const char router_ini[] = "[composite:main]\n"
                                 "use = egg:csgi#router\n"
                                 "route.list = GET /images list\n"
                                 "route.show_image = GET,PUT /images/{image_id} show\n"
                                 "route.servers = * /v2/{project_id:hex}/servers list\n"
                                 "not_found_app = missing\n"
                                 "\n"
                                 "[app:list]\n"
                                 "use = egg:test#echo\n"
                                 "label = list\n"
                                 "\n"
                                 "[app:show]\n"
                                 "use = egg:test#echo\n"
                                 "label = show\n"
                                 "\n"
                                 "[app:missing]\n"
                                 "use = egg:test#echo\n"
                                 "label = missing\n"
                                 "\n"
                                 "[composite:bad_key]\n"
                                 "use = egg:csgi#router\n"
                                 "/images = list\n"
                                 "\n"
                                 "[composite:bad_words]\n"
                                 "use = egg:csgi#router\n"
                                 "route.x = GET /images\n"
                                 "\n"
                                 "[composite:bad_pattern]\n"
                                 "use = egg:csgi#router\n"
                                 "route.ok = GET /a list\n"
                                 "route.x = GET /img{id} list\n"
                                 "\n"
                                 "[composite:bad_app]\n"
                                 "use = egg:csgi#router\n"
                                 "route.x = GET /a nowhere\n"
                                 "\n"
                                 "[composite:bad_regex]\n"
                                 "use = egg:csgi#router\n"
                                 "route.x = GET /a/{id:[0-9} list\n"
                                 "\n"
                                 "[composite:bad_methods]\n"
                                 "use = egg:csgi#router\n"
                                 "route.x = GE(T /a list\n"
                                 "\n"
                                 "[composite:twice]\n"
                                 "use = egg:csgi#router\n"
                                 "route.x = GET /a list\n"
                                 "route.y = GET /a show\n";

START_TEST(ini_factory)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("router.ini", router_ini);
    char uri[PATH_MAX + 64];
    snprintf(uri, sizeof(uri), "%s#main", path);
    csgi_app *app = test_load(loader, uri);
    expect_body(app, "GET", "/images", 200, "list route=list");
    expect_body(app, "PUT", "/images/5", 200, "show route=show_image image_id=5");
    expect_body(app, "DELETE", "/v2/ab/servers", 200, "list route=servers project_id=ab");
    expect_body(app, "GET", "/v2/zz/servers", 200, "missing route=-");
    reply r = request(app, "POST", "/images");
    ck_assert_int_eq(r.code, 405);
    ck_assert_str_eq(r.allow, "GET, HEAD, OPTIONS");
    csgi_app_free(app);

    static const struct {
        const char *section;
        int err;
        const char *message;
    } failures[] = {
        {"bad_key", CSGI_EINVAL, "router.ini:22: [composite:bad_key] /images: unknown key"},
        {"bad_words", CSGI_EINVAL,
         "router.ini:26: [composite:bad_words] route.x: expected \"METHODS /pattern app\""},
        {"bad_pattern", CSGI_EINVAL,
         "router.ini:31: [composite:bad_pattern] route.x: a variable must be a whole segment"},
        {"bad_app", CSGI_ENOTFOUND, "nowhere"},
        {"bad_regex", CSGI_EINVAL,
         "router.ini:39: [composite:bad_regex] route.x: malformed regular expression"},
        {"bad_methods", CSGI_EINVAL,
         "router.ini:43: [composite:bad_methods] route.x: malformed method list"},
        {"twice", CSGI_EINVAL,
         "router.ini:48: [composite:twice] route.y: the pattern is routed already"},
    };
    for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
        char message[2048];
        snprintf(uri, sizeof(uri), "%s#%s", path, failures[i].section);
        ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), failures[i].err);
        ck_assert_msg(strstr(message, failures[i].message) != NULL, "%s: %s", failures[i].section,
                      message);
    }
    csgi_loader_free(loader);
}
END_TEST

/* ---- Out of memory ------------------------------------------------------------- */

/* Building and running with the nth allocation failing: every call fails
   cleanly (the forked test's leak check is ASan's), or the request gets a
   500, never a crash. */
START_TEST(out_of_memory_every_allocation)
{
    ck_assert_int_eq(test_alloc_install(), 0);
    for (long n = 0; n < 400; n++) {
        static const char *const routes[][3] = {
            {"show", "GET,PUT", "/images/{image_id}"},
            {"x", "GET", "/v2/{p:[0-9a-f]+}/x/{id:int}"},
            {NULL, "POST", "/v2/{p:[0-9a-f]+}/x/{id:int}"},
        };
        csgi_app *apps[3] = {echo("s"), echo("x"), echo("y")};
        test_alloc_fail_after(n);
        csgi_router *router = NULL;
        csgi_app *app = NULL;
        size_t given = 0; /* the applications given to the router (taken) */
        int err = csgi_router_new(&router);
        for (; !err && given < 3; given++)
            err = csgi_router_add(router, routes[given][0], routes[given][1], routes[given][2],
                                  apps[given]);
        if (!err)
            err = csgi_router_app(&app, &router);
        else
            csgi_router_free(router);
        for (size_t i = given; i < 3; i++)
            csgi_app_free(apps[i]);
        test_alloc_fail_never();
        if (err) {
            ck_assert_int_eq(err, CSGI_ENOMEM);
            continue;
        }
        test_alloc_fail_after(n);
        csgi_test_response *res = NULL;
        int rc = csgi_test_get(&res, app, "/v2/ab/x/12");
        test_alloc_fail_never();
        if (rc == 0) {
            int code = csgi_test_response_code(res);
            ck_assert_msg(code == 200 || code == 500, "status %d", code);
            csgi_test_response_free(res);
        } else {
            ck_assert_int_eq(rc, CSGI_ENOMEM);
        }
        csgi_app_free(app);
    }
    test_alloc_restore();
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("routes");
    tcase_add_test(tc, matching_and_arguments);
    tcase_add_test(tc, typed_segments_reject_and_404);
    tcase_add_test(tc, method_not_allowed_options_head);
    tcase_add_test(tc, answers_pass_strict_lint);
    tcase_add_test(tc, not_found_app);
    tcase_add_test(tc, urls_under_urlmap);
    tcase_add_test(tc, arguments_outside_a_route);
    tcase_add_test(tc, bad_patterns_and_arguments);
    tcase_add_test(tc, hundred_routes);
    suite_add_tcase(s, tc);
    tc = tcase_create("matching");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, matches_the_reference);
    tcase_add_test(tc, literal_index_and_typed_segments);
    tcase_add_test(tc, long_paths_and_values);
    tcase_add_test(tc, keys_changed_by_middleware);
    suite_add_tcase(s, tc);
    tc = tcase_create("deploy");
    tcase_add_test(tc, ini_factory);
    suite_add_tcase(s, tc);
    tc = tcase_create("memory");
    tcase_add_test(tc, out_of_memory_every_allocation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(router_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
