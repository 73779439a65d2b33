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
    ck_assert_int_eq(csgi_test_request_new(&req, method, url), 0);
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
