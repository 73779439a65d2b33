/*
 * The names a factory reference may be written under (src/loader/registry.c,
 * docs/config.md "How a reference is matched"): egg: distribution names as
 * PEP 503 names, call:MODULE:OBJECT as MODULE:OBJECT, the old oslo.middleware
 * module, one entry point name for an app and a filter. The rules alone,
 * every built-in under every spelling, deploy files through the in-process
 * test client, and one over real sockets.
 */
#include "engine_harness.h"
#include "loader/loader_private.h"
#include "test_deploy.h"
#include "test_files.h"

#include <csgi.h>

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the rules ------------------------------------------------------------------ */

/* Whether written names known (both as a file or a registration gives them). */
static int same(const char *written, const char *known, int oslo_alias)
{
    char *a = csgi_loader__normalise(written);
    char *b = csgi_loader__normalise(known);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    int result = csgi_loader__same_reference(a, b, oslo_alias);
    free(a);
    free(b);
    return result;
}

static const struct rule {
    const char *written, *known;
    int oslo_alias, same;
} rules[] = {
    /* egg: distribution names: PEP 503, as importlib.metadata finds them. */
    {"egg:Paste#urlmap", "egg:Paste#urlmap", 0, 1},
    {"egg:paste#urlmap", "egg:Paste#urlmap", 0, 1},
    {"EGG:PASTE#urlmap", "egg:Paste#urlmap", 0, 1},
    {"egg:oslo_middleware#cors", "egg:oslo.middleware#cors", 0, 1},
    {"egg:oslo-middleware#cors", "egg:oslo.middleware#cors", 0, 1},
    {"egg:Oslo_-.Middleware#cors", "egg:oslo.middleware#cors", 0, 1},
    {"egg:oslo..middleware#cors", "egg:oslo.middleware#cors", 0, 1},
    {"egg:oslomiddleware#cors", "egg:oslo.middleware#cors", 0, 0},
    {"egg:oslo.middleware.#cors", "egg:oslo.middleware#cors", 0, 0},
    {"egg:.oslo.middleware#cors", "egg:oslo.middleware#cors", 0, 0},
    {"egg:oslo.middlewarex#cors", "egg:oslo.middleware#cors", 0, 0},
    {"egg:oslo.middlewar#cors", "egg:oslo.middleware#cors", 0, 0},
    /* the entry point name is compared exactly */
    {"egg:paste#URLMAP", "egg:Paste#urlmap", 0, 0},
    {"egg:paste#urlmap_", "egg:Paste#urlmap", 0, 0},
    {"egg:paste#url-map", "egg:paste#url_map", 0, 0},
    {"egg:Paste", "egg:Paste#main", 0, 1},
    {"egg:Paste#", "egg:Paste#main", 0, 0},
    {"egg:#urlmap", "egg:Paste#urlmap", 0, 0},
    {"egg:", "egg:Paste#main", 0, 0},
    {"egg:#", "egg:#", 0, 1},
    /* an egg is never a module reference */
    {"egg:oslo_middleware#RequestId.factory", "oslo_middleware:RequestId.factory", 1, 0},
    {"oslo_middleware:RequestId.factory", "egg:oslo_middleware#RequestId.factory", 1, 0},
    /* call:MODULE:OBJECT is MODULE:OBJECT */
    {"call:oslo_middleware:RequestId.factory", "oslo_middleware:RequestId.factory", 0, 1},
    {"CALL:oslo_middleware:RequestId.factory", "oslo_middleware:RequestId.factory", 0, 1},
    {"oslo_middleware:RequestId.factory", "call:oslo_middleware:RequestId.factory", 0, 1},
    {"call:mod:f", "call:mod:f", 0, 1},
    {"call:call:mod:f", "mod:f", 0, 0},
    {"call:mod", "mod", 0, 0},
    {"call:", "", 0, 0},
    {"call::", ":", 0, 1},
    /* module and object names are Python's: case and '_' count */
    {"Oslo_middleware:RequestId.factory", "oslo_middleware:RequestId.factory", 1, 0},
    {"oslo_middleware:requestid.factory", "oslo_middleware:RequestId.factory", 1, 0},
    {"oslo-middleware:RequestId.factory", "oslo_middleware:RequestId.factory", 1, 0},
    /* the old namespace package, for the built-ins only */
    {"oslo.middleware:RequestId.factory", "oslo_middleware:RequestId.factory", 1, 1},
    {"oslo.middleware:RequestId.factory", "oslo_middleware:RequestId.factory", 0, 0},
    {"call:oslo.middleware.cors:filter_factory", "oslo_middleware.cors:filter_factory", 1, 1},
    {"oslo.middleware.cors:filter_factory", "oslo_middleware.cors:filter_factory", 1, 1},
    {"oslo.middlewarex:RequestId.factory", "oslo_middlewarex:RequestId.factory", 1, 0},
    {"oslo.middleware", "oslo_middleware", 1, 0},
    {"oslo.middleware:", "oslo_middleware:", 1, 1},
    {"oslo.middleware:RequestId.factory", "other:RequestId.factory", 1, 0},
    {"", "", 0, 1},
};

START_TEST(matching_rules)
{
    const struct rule *r = &rules[_i];
    ck_assert_msg(same(r->written, r->known, r->oslo_alias) == r->same, "'%s' vs '%s' (alias %d)",
                  r->written, r->known, r->oslo_alias);
}
END_TEST

/* ---- every built-in, every spelling ---------------------------------------------- */

static csgi_loader__want want_of(csgi_factory_kind kind)
{
    switch (kind) {
    case CSGI_FACTORY_FILTER:
    case CSGI_FACTORY_FILTER_APP: return CSGI_LOADER__WANT_FILTER;
    case CSGI_FACTORY_SERVER: return CSGI_LOADER__WANT_SERVER;
    default: return CSGI_LOADER__WANT_APP;
    }
}

/* The factory reference names for want (found holds it), or NULL. */
static const csgi_loader__factory *lookup(csgi_loader *loader, const char *reference,
                                          csgi_loader__want want, csgi_loader__factory *found)
{
    csgi_conf__context context;
    memset(&context, 0, sizeof(context));
    context.kind = CSGI_CONF__KIND_APP;
    context.factory.text = reference;
    context.file = "names.ini";
    const csgi_loader__factory *r = NULL;
    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    int rc = csgi_loader__lookup(loader, &context, want, found, &r, &error);
    return rc == 0 ? r : NULL;
}

/* Other ways to write reference that must name the same factory. */
static size_t spellings(const char *reference, char out[][512])
{
    size_t n = 0;
    if (strncmp(reference, "egg:", 4) == 0) {
        const char *hash = strchr(reference, '#');
        size_t dist = (size_t)(hash - reference) - 4;
        /* upper case; every separator another one; the scheme in capitals */
        snprintf(out[n], 512, "egg:%s", reference + 4);
        for (size_t i = 4; i < 4 + dist; i++)
            if (out[n][i] >= 'a' && out[n][i] <= 'z')
                out[n][i] = (char)(out[n][i] - 'a' + 'A');
        n++;
        static const char *const separators[] = {"_", "-", "._-"};
        for (size_t s = 0; s < 3; s++) {
            char *text = out[n++];
            size_t used = (size_t)snprintf(text, 512, "EGG:");
            for (size_t i = 4; i < 4 + dist; i++) {
                if (reference[i] == '.' || reference[i] == '_' || reference[i] == '-')
                    used += (size_t)snprintf(text + used, 512 - used, "%s", separators[s]);
                else
                    text[used++] = reference[i];
            }
            snprintf(text + used, 512 - used, "%s", hash);
        }
        return n;
    }
    snprintf(out[n++], 512, "call:%s", reference);
    snprintf(out[n++], 512, "Call:%s", reference);
    if (strncmp(reference, "oslo_middleware", 15) == 0) {
        snprintf(out[n++], 512, "oslo.middleware%s", reference + 15);
        snprintf(out[n++], 512, "call:oslo.middleware%s", reference + 15);
    }
    return n;
}

START_TEST(every_builtin_every_spelling)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    size_t checked = 0;
    csgi_factory_kind kind;
    for (size_t i = 0; csgi_loader__builtin_reference(i, &kind); i++) {
        const char *reference = csgi_loader__builtin_reference(i, &kind);
        csgi_loader__factory canonical_found, found;
        const csgi_loader__factory *canonical =
            lookup(loader, reference, want_of(kind), &canonical_found);
        ck_assert_msg(canonical != NULL, "%s does not resolve", reference);
        ck_assert_int_eq(canonical->kind, kind);
        char variants[8][512];
        size_t n = spellings(reference, variants);
        for (size_t v = 0; v < n; v++) {
            const csgi_loader__factory *r = lookup(loader, variants[v], want_of(kind), &found);
            ck_assert_msg(r != NULL, "%s (for %s) does not resolve", variants[v], reference);
            ck_assert_int_eq(r->kind, canonical->kind);
            ck_assert(r->app_factory == canonical->app_factory);
            ck_assert(r->filter_factory == canonical->filter_factory);
            ck_assert(r->server_runner == canonical->server_runner);
            checked++;
        }
    }
    ck_assert_uint_ge(checked, 60);
    csgi_loader_free(loader);
}
END_TEST

/* One entry point name in two groups: the section's kind picks. */
START_TEST(healthcheck_app_and_filter)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    csgi_loader__factory found;
    const csgi_loader__factory *r =
        lookup(loader, "egg:oslo.middleware#healthcheck", CSGI_LOADER__WANT_APP, &found);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->kind, CSGI_FACTORY_APP);
    r = lookup(loader, "egg:oslo_middleware#healthcheck", CSGI_LOADER__WANT_FILTER, &found);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->kind, CSGI_FACTORY_FILTER);
    /* No server of that name: the first match, whose kind is then the error. */
    r = lookup(loader, "egg:oslo.middleware#healthcheck", CSGI_LOADER__WANT_SERVER, &found);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->kind, CSGI_FACTORY_APP);
    csgi_loader_free(loader);
}
END_TEST

/* Every built-in's name is documented: docs/config.md's naming table or the
   middleware's own section of docs/middleware.md shows it as written. */
START_TEST(every_builtin_documented)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/config.md", test_project_dir());
    const char *config = test_read_file(path);
    ck_assert_ptr_nonnull(config);
    char *config_copy = strdup(config);
    snprintf(path, sizeof(path), "%s/docs/middleware.md", test_project_dir());
    const char *middleware = test_read_file(path);
    ck_assert_ptr_nonnull(middleware);
    for (size_t i = 0; csgi_loader__builtin_reference(i, NULL); i++) {
        const char *reference = csgi_loader__builtin_reference(i, NULL);
        char quoted[512];
        snprintf(quoted, sizeof(quoted), "`%s`", reference);
        ck_assert_msg(strstr(config_copy, quoted) || strstr(middleware, quoted),
                      "%s is in neither docs/config.md nor docs/middleware.md", quoted);
    }
    free(config_copy);
}
END_TEST

/* ---- deploy files ----------------------------------------------------------------- */

static csgi_loader *new_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:Test_Names#hello", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     0);
    return loader;
}

/* Every bundled oslo.middleware filter under a spelling no built-in lists as
   written, in front of an app registered as egg:Test_Names#hello and named
   egg:test-names#hello. */
static const char names_ini[] =
    "[composite:main]\n"
    "use = egg:paste#urlmap\n"
    "/: api\n"
    "/healthcheck: hc_app\n"
    "\n"
    "[pipeline:api]\n"
    "pipeline = cors rid size proxy errors old hc hello\n"
    "\n"
    "[filter:cors]\n"
    "use = CALL:oslo_middleware.cors:filter_factory\n"
    "allowed_origin = http://a.example\n"
    "oslo_config_project = names\n"
    "oslo_config_program = names-api\n"
    "\n"
    "[filter:rid]\n"
    "use = call:oslo_middleware.request_id:RequestId.factory\n"
    "\n"
    "[filter:size]\n"
    "paste.filter_factory = call:oslo_middleware:RequestBodySizeLimiter.factory\n"
    "max_request_body_size = 10\n"
    "\n"
    "[filter:proxy]\n"
    "use = egg:OSLO_Middleware#http_proxy_to_wsgi\n"
    "\n"
    "[filter:errors]\n"
    "use = egg:oslo-middleware#catch_errors\n"
    "\n"
    "[filter:old]\n"
    "paste.filter_factory = oslo.middleware:RequestId.factory\n"
    "\n"
    "[filter:hc]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "path = /status\n"
    "\n"
    "[app:hc_app]\n"
    "use = egg:oslo_middleware#healthcheck\n"
    "\n"
    "[app:hello]\n"
    "use = egg:test-names#hello\n"
    "\n"
    "[app:upper_entry_point]\n"
    "use = egg:paste#URLMAP\n"
    "/: hello\n"
    "\n"
    "[app:call_module]\n"
    "use = call:oslo_middleware\n"
    "\n"
    "[app:empty_egg]\n"
    "use = egg:\n"
    "\n"
    "[app:empty_call]\n"
    "use = call:\n";

static csgi_app *load_names(csgi_loader *loader, const char *name)
{
    const char *path = test_write_file("names.ini", names_ini);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#%s", path, name);
    return test_load(loader, uri);
}

START_TEST(deploy_file_spellings)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = load_names(loader, "main");

    csgi_test_response *r = test_client_run(app, "GET", "/", "Origin", "http://a.example", NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    const char *id = csgi_test_response_header(r, "x-openstack-request-id");
    ck_assert_ptr_nonnull(id);
    ck_assert_int_eq(strncmp(id, "req-", 4), 0);
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-origin"),
                     "http://a.example");
    csgi_test_response_free(r);

    /* sizelimit (max_request_body_size = 10) */
    r = test_client_run(app, "POST", "/", NULL, NULL, "0123456789abc");
    ck_assert_int_eq(csgi_test_response_code(r), 413);
    csgi_test_response_free(r);
    r = test_client_run(app, "POST", "/", NULL, NULL, "0123456789");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    csgi_test_response_free(r);

    /* the healthcheck filter on /status, the app on /healthcheck */
    r = test_client_run(app, "GET", "/status", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "OK");
    csgi_test_response_free(r);
    r = test_client_run(app, "GET", "/healthcheck", NULL, NULL, NULL);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "OK");
    ck_assert_ptr_null(csgi_test_response_header(r, "x-openstack-request-id"));
    csgi_test_response_free(r);
    csgi_app_free(app);

    /* what built it, item by item: nothing stubbed */
    const char *text = NULL;
    csgi_load_error error;
    const char *path = test_write_file("names.ini", names_ini);
    ck_assert_int_eq(csgi_loader_describe(&text, loader, path, 0, &error), 0);
    ck_assert_ptr_null(strstr(text, "stub"));
    ck_assert_ptr_nonnull(strstr(text, "[filter:old] filter paste.filter_factory = "
                                       "oslo.middleware:RequestId.factory"));
    csgi_loader_free(loader);
}
END_TEST

/* What no rule makes equal stays an unknown factory, with its line. */
START_TEST(deploy_file_misspellings)
{
    static const struct {
        const char *name, *message;
    } cases[] = {
        {"upper_entry_point", "names.ini:42: [app:upper_entry_point] use: unknown factory "
                              "'egg:paste#URLMAP' (an app factory was expected)"},
        {"call_module", "names.ini:46: [app:call_module] use:"},
        {"empty_egg", "names.ini:49: [app:empty_egg] use:"},
        {"empty_call", "names.ini:52: [app:empty_call] use:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_loader *loader = new_loader();
        const char *path = test_write_file("names.ini", names_ini);
        char uri[4200], message[1024];
        snprintf(uri, sizeof(uri), "%s#%s", path, cases[i].name);
        ck_assert_int_ne(test_load_fails(loader, uri, message, sizeof(message)), 0);
        ck_assert_msg(strstr(message, cases[i].message) != NULL, "%s: %s", cases[i].name, message);
        csgi_loader_free(loader);
    }
}
END_TEST

/* Registrations follow the same rules: a call: registration answers the
   factory key's spelling, and names the rules make equal are one name. */
START_TEST(registrations_follow_the_rules)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "call:names_app:factory", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "names_app:factory", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:My.App#web", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "EGG:my_app#web", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:my_app#Web", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     0);
    /* The old oslo module name is the built-ins' alias only. */
    ck_assert_int_eq(csgi_loader_register_app(loader, "oslo_middleware:Mine.factory",
                                              CSGI_FACTORY_APP, test_hello_app_factory),
                     0);
    const char *path = test_write_file("reg.ini", "[app:key]\n"
                                                  "paste.app_factory = names_app:factory\n"
                                                  "\n"
                                                  "[app:egg]\n"
                                                  "use = egg:MY-APP#web\n"
                                                  "\n"
                                                  "[app:old]\n"
                                                  "use = oslo.middleware:Mine.factory\n");
    static const char *const names[] = {"key", "egg"};
    for (size_t i = 0; i < 2; i++) {
        char uri[4200];
        snprintf(uri, sizeof(uri), "%s#%s", path, names[i]);
        csgi_app *app = test_load(loader, uri);
        csgi_test_response *r = test_client_run(app, "GET", "/", NULL, NULL, NULL);
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
        csgi_test_response_free(r);
        csgi_app_free(app);
    }
    char uri[4200], message[1024];
    snprintf(uri, sizeof(uri), "%s#old", path);
    ck_assert_int_ne(test_load_fails(loader, uri, message, sizeof(message)), 0);
    ck_assert_ptr_nonnull(strstr(message, "reg.ini:8: [app:old] use:"));
    csgi_loader_free(loader);
}
END_TEST

/* Hostile references: long, separators only, '#' and ':' everywhere. None
   may crash or match a built-in it does not name. */
START_TEST(hostile_references)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    static char long_egg[20000];
    memcpy(long_egg, "egg:", 4);
    memset(long_egg + 4, '.', sizeof(long_egg) - 6);
    memcpy(long_egg + sizeof(long_egg) - 2, "#", 2);
    static const char *const references[] = {"egg:",
                                             "egg:#",
                                             "egg:##",
                                             "egg:-#cors",
                                             "egg:._-#request_id",
                                             "egg:oslo.middleware##cors",
                                             "egg:oslo.middleware#cors#x",
                                             "egg:oslo.middleware#",
                                             "call:",
                                             "call::",
                                             "call:::",
                                             ":",
                                             "::",
                                             "oslo.middleware",
                                             "oslo.middleware:",
                                             "oslo.middleware.",
                                             "call:oslo.middleware",
                                             long_egg};
    csgi_loader__factory found;
    for (size_t i = 0; i < sizeof(references) / sizeof(references[0]); i++) {
        const csgi_loader__factory *r =
            lookup(loader, references[i], CSGI_LOADER__WANT_FILTER, &found);
        ck_assert_msg(r == NULL, "'%.40s' resolved", references[i]);
    }
    csgi_loader_free(loader);
}
END_TEST

/* ---- over real sockets --------------------------------------------------------------- */

START_TEST(spellings_over_sockets)
{
    csgi_loader *loader = new_loader();
    app_server served;
    app_server_start(&served, load_names(loader, "main"), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    /* One write, the body of the second request included. */
    ck_assert_int_eq(client_send_str(fd, "GET / HTTP/1.1\r\nHost: t\r\n"
                                         "Origin: http://a.example\r\n\r\n"
                                         "POST / HTTP/1.1\r\nHost: t\r\n"
                                         "Content-Length: 11\r\n\r\n0123456789a"
                                         "GET /healthcheck HTTP/1.1\r\nHost: t\r\n"
                                         "Connection: close\r\n\r\n"),
                     0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");
    ck_assert_ptr_nonnull(response_header(&r, "x-openstack-request-id"));
    ck_assert_str_eq(response_header(&r, "access-control-allow-origin"), "http://a.example");
    response_free(&r);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 413);
    response_free(&r);
    if (client_response(fd, &r, 0, 5000) == 0) {
        /* A 413 may close the connection before the third request. */
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "OK");
        response_free(&r);
    }
    close(fd);

    /* The health check on a connection of its own, byte by byte. */
    fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    const char *request = "GET /healthcheck HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for (const char *p = request; *p; p++) {
        char one[2] = {*p, '\0'};
        ck_assert_int_eq(client_send_str(fd, one), 0);
    }
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "OK");
    response_free(&r);
    close(fd);
    app_server_stop(&served);
    csgi_loader_free(loader);
}
END_TEST

static Suite *loader_names_suite(void)
{
    Suite *s = suite_create("loader_names");
    TCase *tc = tcase_create("rules");
    tcase_add_loop_test(tc, matching_rules, 0, (int)(sizeof(rules) / sizeof(rules[0])));
    tcase_add_test(tc, every_builtin_every_spelling);
    tcase_add_test(tc, healthcheck_app_and_filter);
    tcase_add_test(tc, hostile_references);
    tcase_add_test(tc, every_builtin_documented);
    suite_add_tcase(s, tc);
    tc = tcase_create("deploy");
    tcase_add_test(tc, deploy_file_spellings);
    tcase_add_test(tc, deploy_file_misspellings);
    tcase_add_test(tc, registrations_follow_the_rules);
    tcase_add_test(tc, spellings_over_sockets);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(loader_names_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
