/* Factories from shared objects (csgi/loader.h): the talk's deploy files
   loaded unchanged with the example modules, the module path, plugins, and
   the errors of a missing module or symbol. The modules are found in
   CSGI_MODULE_DIR (and testplugin.so in CSGI_TEST_PLUGIN_DIR, default the
   same), which the build sets. */
#include "common/arena.h"
#include "gateway/environ_private.h"
#include "gateway/gateway.h"
#include "http/parser.h"

#include <csgi.h>
#include <csgi/lint.h>
#include <csgi/testing.h>
#include <csgi/loader.h>

#include "test_deploy.h"
#include "test_files.h"

#include <check.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FIELDS 32

/* ---- places ------------------------------------------------------------------------ */

static const char *talk_ini(const char *name)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/talk/%s", test_testdata_dir(), name);
    return path;
}

static const char *module_dir(void)
{
    static char dir[PATH_MAX];
    const char *env = getenv("CSGI_MODULE_DIR");
    ck_assert_msg(env && *env, "CSGI_MODULE_DIR names the directory of the built modules");
    ck_assert_msg(realpath(env, dir) != NULL, "no module directory %s", env);
    return dir;
}

static const char *plugin_dir(void)
{
    static char dir[PATH_MAX];
    const char *env = getenv("CSGI_TEST_PLUGIN_DIR");
    if (!env || !*env)
        return module_dir();
    ck_assert_msg(realpath(env, dir) != NULL, "no plugin directory %s", env);
    return dir;
}

/* ---- loading ------------------------------------------------------------------------ */

static csgi_loader *new_loader(int with_module_dir)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    if (with_module_dir)
        ck_assert_int_eq(csgi_loader_add_module_path(loader, module_dir()), 0);
    return loader;
}

/* GET path through app with an optional extra header line ("Name: value");
   the response in *out. */
static void run(csgi_app *app, const char *path, const char *header, test_client_response *out)
{
    test_run_request(app, path, NULL, header, out);
}

static void expect(csgi_app *app, const char *path, const char *header, const char *status,
                   const char *body)
{
    test_client_response r;
    run(app, path, header, &r);
    ck_assert_str_eq(r.status, status);
    if (body)
        ck_assert_str_eq(r.body, body);
}

static const char secret[] = "Hello, Secret World of WebOb !";

/* ---- the talk's deploy files ----------------------------------------------------------- */

START_TEST(talk_middleware_pipeline)
{
    csgi_loader *loader = new_loader(1);
    csgi_app *app = test_load(loader, talk_ini("wsgi_webob_mid.ini"));
    ck_assert_str_eq(csgi_app_name(app), "wsgi_webob_mid.auth_filter");
    expect(app, "/", NULL, "403 Forbidden", NULL);
    expect(app, "/", "X-Auth-Token: open-sesam", "403 Forbidden", NULL);
    expect(app, "/", "X-Auth-Token: open-sesame!", "403 Forbidden", NULL);
    expect(app, "/", "X-Auth-Token: ", "403 Forbidden", NULL);
    /* the same length, a byte off in the first word, then in the tail */
    expect(app, "/", "X-Auth-Token: Open-sesame", "403 Forbidden", NULL);
    expect(app, "/", "X-Auth-Token: open-sesamf", "403 Forbidden", NULL);
    test_client_response r;
    run(app, "/", "X-Auth-Token: open-sesame", &r);
    ck_assert_str_eq(r.status, "200 OK");
    ck_assert_str_eq(r.body, secret);
    ck_assert_str_eq(r.content_type, "text/html");
    csgi_loader_free(loader);
    /* Built from a module, the app outlives the loader: modules stay loaded. */
    expect(app, "/any/path", "X-Auth-Token: open-sesame", "200 OK", secret);
    csgi_app_free(app);
}
END_TEST

/* The talk's auth filter and application keep to the protocol: through the
   strict lint filter, neither answer logs a violation. */
START_TEST(talk_middleware_lint_clean)
{
    csgi_loader *loader = new_loader(1);
    csgi_app *app = test_load(loader, talk_ini("wsgi_webob_mid.ini"));
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.strict = 1;
    csgi_app *lint = NULL;
    ck_assert_int_eq(csgi_lint_new(&lint, app, &options), 0);
    for (int with_token = 0; with_token < 2; with_token++) {
        csgi_test_request *request = NULL;
        ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
        if (with_token)
            ck_assert_int_eq(csgi_test_request_add_header(request, "X-Auth-Token", "open-sesame"),
                             0);
        csgi_test_response *got = NULL;
        ck_assert_int_eq(csgi_test_request_run(&got, request, lint), 0);
        ck_assert_int_eq(csgi_test_response_code(got), with_token ? 200 : 403);
        if (with_token)
            ck_assert_str_eq(csgi_test_response_body(got, NULL), secret);
        ck_assert_msg(csgi_test_response_log_count(got) == 0, "%s",
                      csgi_test_response_log_at(got, 0));
        csgi_test_response_free(got);
        csgi_test_request_free(request);
    }
    csgi_app_free(lint);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(talk_hello)
{
    csgi_loader *loader = new_loader(1);
    csgi_app *app = test_load(loader, talk_ini("wsgi_webob.ini"));
    test_client_response r;
    run(app, "/", NULL, &r);
    ck_assert_str_eq(r.status, "200 OK");
    ck_assert_str_eq(r.body, "Hello, World of WebOb !");
    ck_assert_str_eq(r.content_type, "text/html");
    /* Loading the other file with the same loader uses its own module. */
    csgi_app *mid = test_load(loader, talk_ini("wsgi_webob_mid.ini"));
    expect(mid, "/", "X-Auth-Token: open-sesame", "200 OK", secret);
    csgi_app_free(mid);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(example_token_variant)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/examples/auth_filter/auth_token.ini", test_project_dir());
    csgi_loader *loader = new_loader(1);
    csgi_app *app = test_load(loader, path);
    expect(app, "/", NULL, "403 Forbidden", NULL);
    expect(app, "/", "X-Auth-Token: open-sesame", "403 Forbidden", NULL);
    expect(app, "/", "X-Auth-Token: swordfish", "200 OK", secret);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

/* ---- finding modules ------------------------------------------------------------------- */

START_TEST(module_path_environment)
{
    char value[2 * PATH_MAX];
    snprintf(value, sizeof(value), "/nonexistent/csgi::%s", module_dir());
    ck_assert_int_eq(setenv("CSGI_MODULE_PATH", value, 1), 0);
    csgi_loader *loader = new_loader(0);
    csgi_app *app = test_load(loader, talk_ini("wsgi_webob.ini"));
    expect(app, "/", NULL, "200 OK", "Hello, World of WebOb !");
    csgi_app_free(app);
    csgi_loader_free(loader);

    /* without it, and without a module path, nothing is found */
    ck_assert_int_eq(unsetenv("CSGI_MODULE_PATH"), 0);
    loader = new_loader(0);
    char message[2048];
    ck_assert_int_eq(test_load_fails(loader, talk_ini("wsgi_webob.ini"), message, sizeof(message)),
                     CSGI_ENOTFOUND);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(module_path_in_the_deploy_file)
{
    /* csgi_module_path in [DEFAULT]: absolute, and relative to the file. */
    char text[3 * PATH_MAX];
    snprintf(text, sizeof(text),
             "[DEFAULT]\ncsgi_module_path = nowhere:%s\n\n"
             "[app:main]\npaste.app_factory = wsgi_webob:app_factory\n",
             module_dir());
    const char *ini = test_write_file("option.ini", text);
    ck_assert_int_eq(unsetenv("CSGI_MODULE_PATH"), 0);
    csgi_loader *loader = new_loader(0);
    csgi_app *app = test_load(loader, ini);
    expect(app, "/", NULL, "200 OK", "Hello, World of WebOb !");
    csgi_app_free(app);
    csgi_loader_free(loader);

    char target[PATH_MAX + 64];
    snprintf(target, sizeof(target), "%s/wsgi_webob.so", module_dir());
    ck_assert_int_eq(mkdir(test_tmp_path("mods"), 0700), 0);
    ck_assert_int_eq(symlink(target, test_tmp_path("mods/wsgi_webob.so")), 0);
    ini =
        test_write_file("relative.ini", "[DEFAULT]\ncsgi_module_path = mods\n\n"
                                        "[app:main]\npaste.app_factory = wsgi_webob:app_factory\n");
    loader = new_loader(0);
    app = test_load(loader, ini);
    expect(app, "/", NULL, "200 OK", "Hello, World of WebOb !");
    csgi_app_free(app);
    csgi_loader_free(loader);

    /* the paths tried name it */
    ini = test_write_file("missing.ini", "[DEFAULT]\ncsgi_module_path = /opt/none\n\n"
                                         "[app:main]\npaste.app_factory = absent:app_factory\n");
    loader = new_loader(0);
    char message[4096];
    ck_assert_int_eq(test_load_fails(loader, ini, message, sizeof(message)), CSGI_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(message, "/opt/none/absent.so"));
    csgi_loader_free(loader);
}
END_TEST

START_TEST(module_beside_the_deploy_file)
{
    /* libMODULE.so in the deploy file's directory, no module path */
    char target[PATH_MAX + 64];
    snprintf(target, sizeof(target), "%s/wsgi_webob.so", module_dir());
    ck_assert_int_eq(symlink(target, test_tmp_path("libwsgi_webob.so")), 0);
    const char *ini = test_write_file("beside.ini", "[app:main]\n"
                                                    "paste.app_factory = wsgi_webob:app_factory\n");
    ck_assert_int_eq(unsetenv("CSGI_MODULE_PATH"), 0);
    csgi_loader *loader = new_loader(0);
    csgi_app *app = test_load(loader, ini);
    expect(app, "/", NULL, "200 OK", "Hello, World of WebOb !");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(call_references)
{
    const char *ini = test_write_file("call.ini", "[pipeline:main]\n"
                                                  "pipeline = auth hello\n"
                                                  "\n"
                                                  "[app:hello]\n"
                                                  "use = call:wsgi_webob_mid:app_factory\n"
                                                  "\n"
                                                  "[filter:auth]\n"
                                                  "use = call:wsgi_webob_mid:filter_factory\n"
                                                  "token = letmein\n"
                                                  "\n"
                                                  "[filter-app:wrapped]\n"
                                                  "paste.filter_app_factory = "
                                                  "wsgi_webob_mid:filter_factory\n"
                                                  "next = hello\n");
    csgi_loader *loader = new_loader(1);
    csgi_app *app = test_load(loader, ini);
    expect(app, "/", "X-Auth-Token: open-sesame", "403 Forbidden", NULL);
    expect(app, "/", "X-Auth-Token: letmein", "200 OK", secret);
    csgi_app_free(app);
    char uri[PATH_MAX + 64];
    snprintf(uri, sizeof(uri), "%s#wrapped", ini);
    app = test_load(loader, uri);
    expect(app, "/", NULL, "403 Forbidden", NULL);
    expect(app, "/", "X-Auth-Token: open-sesame", "200 OK", secret);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(add_module_path_rules)
{
    csgi_loader *loader = new_loader(0);
    ck_assert_int_eq(csgi_loader_add_module_path(NULL, "/tmp"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, ""), CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, "/tmp"), 0);
    csgi_loader_free(loader);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

START_TEST(module_not_found_lists_paths)
{
    const char *ini =
        test_write_file("missing.ini", "[app:main]\n"
                                       "paste.app_factory = no_such_module:app_factory\n");
    char ini_copy[PATH_MAX + 64];
    snprintf(ini_copy, sizeof(ini_copy), "%s", ini);
    ck_assert_int_eq(setenv("CSGI_MODULE_PATH", "/env/one:/env/two", 1), 0);
    csgi_loader *loader = new_loader(0);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, "/added/dir"), 0);
    char message[2048], expected[4 * PATH_MAX];
    ck_assert_int_eq(test_load_fails(loader, ini_copy, message, sizeof(message)), CSGI_ENOTFOUND);
    snprintf(expected, sizeof(expected),
             "%s:2: [app:main] paste.app_factory: unknown factory 'no_such_module:app_factory' "
             "(an app factory was expected): no module no_such_module.so or "
             "libno_such_module.so (tried %s/no_such_module.so, %s/libno_such_module.so, "
             "/added/dir/no_such_module.so, /added/dir/libno_such_module.so, "
             "/env/one/no_such_module.so, /env/one/libno_such_module.so, "
             "/env/two/no_such_module.so, /env/two/libno_such_module.so)",
             ini_copy, test_tmp_dir(), test_tmp_dir());
    ck_assert_str_eq(message, expected);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(symbol_not_found)
{
    const char *ini =
        test_write_file("nosymbol.ini", "[pipeline:main]\n"
                                        "pipeline = auth hello\n"
                                        "\n"
                                        "[app:hello]\n"
                                        "paste.app_factory = wsgi_webob:app_factory\n"
                                        "\n"
                                        "[filter:auth]\n"
                                        "paste.filter_factory = wsgi_webob:no_filter\n");
    char ini_copy[PATH_MAX + 64];
    snprintf(ini_copy, sizeof(ini_copy), "%s", ini);
    csgi_loader *loader = new_loader(1);
    char message[2048], expected[2 * PATH_MAX];
    ck_assert_int_eq(test_load_fails(loader, ini_copy, message, sizeof(message)), CSGI_ENOTFOUND);
    snprintf(expected, sizeof(expected),
             "%s:8: [filter:auth] paste.filter_factory: module 'wsgi_webob' has no entry point "
             "'no_filter' in its csgi_plugin_entry_points table",
             ini_copy);
    ck_assert_str_eq(message, expected);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(broken_module)
{
    test_write_file("broken.so", "not an ELF file\n");
    const char *ini = test_write_file("broken.ini", "[app:main]\n"
                                                    "paste.app_factory = broken:app_factory\n");
    csgi_loader *loader = new_loader(0);
    char message[2048];
    ck_assert_int_eq(test_load_fails(loader, ini, message, sizeof(message)), CSGI_EINVAL);
    ck_assert_ptr_nonnull(strstr(message, "[app:main] paste.app_factory: cannot load "));
    ck_assert_ptr_nonnull(strstr(message, "/broken.so: "));
    csgi_loader_free(loader);
}
END_TEST

/* ---- plugins ------------------------------------------------------------------------------ */

static const char plugin_ini[] = "[pipeline:main]\n"
                                 "pipeline = tea home\n"
                                 "\n"
                                 "[filter:tea]\n"
                                 "use = egg:testplugin#teapot\n"
                                 "\n"
                                 "[app:home]\n"
                                 "use = egg:testplugin\n"
                                 "\n"
                                 "[app:missing]\n"
                                 "use = egg:testplugin#nope\n"
                                 "\n"
                                 "[app:wrong_kind]\n"
                                 "use = egg:testplugin#teapot\n"
                                 "\n"
                                 "[app:no_table]\n"
                                 "use = egg:notable#main\n";

START_TEST(plugin_entry_points)
{
    const char *ini = test_write_file("plugin.ini", plugin_ini);
    char path[PATH_MAX + 64], uri[PATH_MAX + 128], message[2048];
    snprintf(path, sizeof(path), "%s", ini);
    csgi_loader *loader = new_loader(1);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, plugin_dir()), 0);
    csgi_app *app = test_load(loader, path);
    expect(app, "/", NULL, "200 OK", "plugin main");
    expect(app, "/tea", NULL, "418 I'm a teapot", "short and stout");
    csgi_app_free(app);

    snprintf(uri, sizeof(uri), "%s#missing", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(message, ":11: [app:missing] use: module 'testplugin' has no "
                                          "entry point 'nope' in its csgi_plugin_entry_points "
                                          "table"));

    snprintf(uri, sizeof(uri), "%s#wrong_kind", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
    ck_assert_ptr_nonnull(strstr(message, "'egg:testplugin#teapot' is a filter factory (an app "
                                          "factory was expected)"));

    snprintf(uri, sizeof(uri), "%s#no_table", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_ENOTFOUND);
    ck_assert_ptr_nonnull(
        strstr(message, "module 'notable' exports no csgi_plugin_entry_points table"));
    csgi_loader_free(loader);
}
END_TEST

/* Load section name of ini (written as file) with the plugin directory on
   the module path; it must fail with rc: the message in message. */
static void plugin_load_fails(const char *file, const char *ini, const char *name, int rc,
                              char *message, size_t size)
{
    char uri[PATH_MAX + 128];
    snprintf(uri, sizeof(uri), "%s#%s", test_write_file(file, ini), name);
    csgi_loader *loader = new_loader(0);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, plugin_dir()), 0);
    ck_assert_int_eq(test_load_fails(loader, uri, message, size), rc);
    /* --check builds the same way: an error too, never a crash. */
    const char *text = NULL;
    csgi_load_error error;
    ck_assert_int_eq(csgi_loader_describe(&text, loader, uri, 0, &error), rc);
    ck_assert_ptr_null(text);
    csgi_loader_free(loader);
}

static const char kinds_ini[] = "[app:filter_as_app]\n"
                                "paste.app_factory = testplugin:teapot\n"
                                "\n"
                                "[app:undeclared]\n"
                                "paste.app_factory = notable:filter_factory\n"
                                "\n"
                                "[app:unlisted]\n"
                                "paste.app_factory = testplugin:bare_filter\n"
                                "\n"
                                "[filter:app_as_filter]\n"
                                "paste.filter_factory = testplugin:main\n"
                                "\n"
                                "[pipeline:pipe]\n"
                                "pipeline = app_as_filter ok\n"
                                "\n"
                                "[app:ok]\n"
                                "use = call:testplugin:main\n";

/* A factory named with the wrong kind is an error, never a call through
   the wrong signature (which crashed csgi-serve --check). */
START_TEST(factory_kinds_checked)
{
    char message[2048];
    plugin_load_fails("kinds.ini", kinds_ini, "filter_as_app", CSGI_EINVAL, message,
                      sizeof(message));
    ck_assert_ptr_nonnull(strstr(message, "kinds.ini:2: [app:filter_as_app] paste.app_factory: "
                                          "'testplugin:teapot' is a filter factory (an app "
                                          "factory was expected)"));
    plugin_load_fails("kinds.ini", kinds_ini, "undeclared", CSGI_ENOTFOUND, message,
                      sizeof(message));
    ck_assert_ptr_nonnull(strstr(message, "kinds.ini:5: [app:undeclared] paste.app_factory: "
                                          "module 'notable' exports no csgi_plugin_entry_points "
                                          "table declaring its factories"));
    plugin_load_fails("kinds.ini", kinds_ini, "unlisted", CSGI_ENOTFOUND, message, sizeof(message));
    ck_assert_ptr_nonnull(strstr(message, "kinds.ini:8: [app:unlisted] paste.app_factory: module "
                                          "'testplugin' has no entry point 'bare_filter'"));
    plugin_load_fails("kinds.ini", kinds_ini, "pipe", CSGI_EINVAL, message, sizeof(message));
    ck_assert_ptr_nonnull(strstr(message, "kinds.ini:11: [filter:app_as_filter] "
                                          "paste.filter_factory: 'testplugin:main' is an app "
                                          "factory (a filter factory was expected)"));
}
END_TEST

static const char schemes_ini[] = "[app:upper_egg]\n"
                                  "use = EGG:testplugin#main\n"
                                  "\n"
                                  "[app:mixed_call]\n"
                                  "use = Call:testplugin:main\n"
                                  "\n"
                                  "[app:module_named_like_a_scheme]\n"
                                  "use = testplugin:main\n"
                                  "\n"
                                  "[app:unknown_scheme]\n"
                                  "use = nosuchscheme:thing\n"
                                  "\n"
                                  "[app:not_a_scheme]\n"
                                  "use = no_such_module:thing\n";

/* URI schemes are case-insensitive; `use = foo:bar` with foo letters only
   is a URI whose scheme PasteDeploy does not know, unless foo is a module. */
START_TEST(uri_schemes)
{
    const char *ini = test_write_file("schemes.ini", schemes_ini);
    char uri[PATH_MAX + 128], message[2048];
    const char *names[] = {"upper_egg", "mixed_call", "module_named_like_a_scheme"};
    csgi_loader *loader = new_loader(0);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, plugin_dir()), 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(uri, sizeof(uri), "%s#%s", ini, names[i]);
        csgi_app *app = test_load(loader, uri);
        expect(app, "/", NULL, "200 OK", "plugin main");
        csgi_app_free(app);
    }
    csgi_loader_free(loader);
    plugin_load_fails("schemes.ini", schemes_ini, "unknown_scheme", CSGI_ENOTFOUND, message,
                      sizeof(message));
    ck_assert_ptr_nonnull(strstr(message, "schemes.ini:11: [app:unknown_scheme] use: URI scheme "
                                          "not known: 'nosuchscheme' (from config, egg, call), "
                                          "nor a module nosuchscheme.so or libnosuchscheme.so"));
    plugin_load_fails("schemes.ini", schemes_ini, "not_a_scheme", CSGI_ENOTFOUND, message,
                      sizeof(message));
    ck_assert_ptr_nonnull(strstr(message, "schemes.ini:14: [app:not_a_scheme] use: unknown "
                                          "factory 'no_such_module:thing'"));
}
END_TEST

/* Registered factories come before shared objects. */
static int registered_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                              const csgi_conf *local_conf, csgi_load_error *error);

static csgi_body *registered_call(void *state, csgi_environ *environ,
                                  csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    (void)state;
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "registered", 10);
}

static const csgi_app_type registered_type = {"registered", registered_call, NULL};

static int registered_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                              const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &registered_type, NULL);
}

START_TEST(registered_before_modules)
{
    csgi_loader *loader = new_loader(1);
    ck_assert_int_eq(csgi_loader_register_app(loader, "wsgi_webob:app_factory", CSGI_FACTORY_APP,
                                              registered_factory),
                     0);
    csgi_app *app = test_load(loader, talk_ini("wsgi_webob.ini"));
    expect(app, "/", NULL, "200 OK", "registered");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("modules");

    TCase *talk = tcase_create("talk");
    tcase_add_test(talk, talk_middleware_pipeline);
    tcase_add_test(talk, talk_middleware_lint_clean);
    tcase_add_test(talk, talk_hello);
    tcase_add_test(talk, example_token_variant);
    suite_add_tcase(suite, talk);

    TCase *search = tcase_create("search");
    tcase_add_test(search, module_path_environment);
    tcase_add_test(search, module_path_in_the_deploy_file);
    tcase_add_test(search, module_beside_the_deploy_file);
    tcase_add_test(search, call_references);
    tcase_add_test(search, add_module_path_rules);
    tcase_add_test(search, registered_before_modules);
    suite_add_tcase(suite, search);

    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, module_not_found_lists_paths);
    tcase_add_test(errors, symbol_not_found);
    tcase_add_test(errors, broken_module);
    suite_add_tcase(suite, errors);

    TCase *plugins = tcase_create("plugins");
    tcase_add_test(plugins, plugin_entry_points);
    tcase_add_test(plugins, factory_kinds_checked);
    tcase_add_test(plugins, uri_schemes);
    suite_add_tcase(suite, plugins);

    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
