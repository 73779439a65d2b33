/* Deploy-file contexts (src/loader/conf.h): PasteDeploy's rules and test data. */
#include "loader/conf.h"

#include <csgi.h>

#include "test_alloc.h"
#include "test_files.h"

#include <check.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------- */

/* HERE of the PasteDeploy samples. */
static const char *pd_dir(void)
{
    static char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/pastedeploy", test_testdata_dir());
    return dir;
}

static const char *pd_path(const char *file)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", pd_dir(), file);
    return path;
}

static csgi_conf__loader *new_loader(void)
{
    csgi_conf__loader *loader = NULL;
    ck_assert_int_eq(csgi_conf__loader_new(&loader), 0);
    return loader;
}

static const csgi_conf__context *resolve(csgi_conf__loader *loader, csgi_conf__type type,
                                         const char *uri, const char *name,
                                         const csgi_conf__list *globals)
{
    csgi_load_error error;
    csgi_load_error__clear(&error);
    const csgi_conf__context *context = NULL;
    int rc = csgi_conf__resolve(loader, type, uri, name, globals, &context, &error);
    if (rc != 0) {
        char message[1024];
        csgi_load_error_format(&error, message, sizeof(message));
        ck_abort_msg("resolve %s#%s failed (%d): %s", uri, name ? name : "", rc, message);
    }
    ck_assert_ptr_nonnull(context);
    return context;
}

static const csgi_conf__context *child(csgi_conf__loader *loader, const csgi_conf__context *parent,
                                       csgi_conf__type type, const csgi_conf__reference *reference)
{
    csgi_load_error error;
    csgi_load_error__clear(&error);
    const csgi_conf__context *context = NULL;
    int rc = csgi_conf__resolve_child(loader, parent, type, reference, &context, &error);
    if (rc != 0) {
        char message[1024];
        csgi_load_error_format(&error, message, sizeof(message));
        ck_abort_msg("resolve child %s failed (%d): %s", reference->text, rc, message);
    }
    return context;
}

/* Resolving must fail with code; returns the formatted error. */
static const char *expect_failure(csgi_conf__loader *loader, csgi_conf__type type, const char *uri,
                                  const char *name, const csgi_conf__list *globals, int code,
                                  csgi_load_error *error)
{
    static char message[1024];
    csgi_load_error__clear(error);
    const csgi_conf__context *context = (const csgi_conf__context *)1;
    int rc = csgi_conf__resolve(loader, type, uri, name, globals, &context, error);
    csgi_load_error_format(error, message, sizeof(message));
    ck_assert_msg(rc == code, "expected %d, got %d (%s)", code, rc, message);
    ck_assert_ptr_null(context);
    return message;
}

/* list must be exactly the NULL-terminated name, value pairs (any order:
   PasteDeploy's tests compare dicts). */
static void expect_conf(const csgi_conf__list *list, ...)
{
    va_list args;
    va_start(args, list);
    size_t count = 0;
    for (;;) {
        const char *name = va_arg(args, const char *);
        if (!name)
            break;
        const char *value = va_arg(args, const char *);
        const char *actual = csgi_conf__list_get(list, name);
        ck_assert_msg(actual != NULL, "no '%s' in conf", name);
        ck_assert_msg(strcmp(actual, value) == 0, "'%s' is '%s', expected '%s'", name, actual,
                      value);
        count++;
    }
    va_end(args);
    if (count != list->count) {
        char names[1024] = "";
        for (const csgi_conf__entry *e = list->first; e; e = e->next) {
            strncat(names, e->name, sizeof(names) - strlen(names) - 2);
            strncat(names, "|", sizeof(names) - strlen(names) - 1);
        }
        ck_abort_msg("conf has %zu entries (%s), expected %zu", list->count, names, count);
    }
}

/* ---- test_config.ini (PasteDeploy's tests/test_config.py) ------------------ */

static void expect_test1(csgi_conf__loader *loader)
{
    char app[PATH_MAX + 8];
    snprintf(app, sizeof(app), "%s/app", pd_dir());
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_config.ini"), "test1", NULL);
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_APP);
    ck_assert_str_eq(c->section, "app:test1");
    ck_assert_int_eq(c->protocol, CSGI_CONF__PROTOCOL_NONE);
    ck_assert_str_eq(c->factory.text, "egg:FakeApp#configed");
    ck_assert_str_eq(c->factory.origin.key, "use");
    ck_assert_int_eq(c->factory.origin.line, 7);
    expect_conf(&c->local_conf, "setting1", "foo", "setting2", "bar", "apppath", app, NULL);
    expect_conf(&c->global_conf, "def1", "a", "def2", "b", "basepath", pd_dir(), "here", pd_dir(),
                "__file__", pd_path("test_config.ini"), NULL);
}

START_TEST(config_test1)
{
    csgi_conf__loader *loader = new_loader();
    expect_test1(loader);
    csgi_conf__loader_free(loader);
}
END_TEST

static void expect_test2(csgi_conf__loader *loader)
{
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_config.ini"), "test2", NULL);
    expect_conf(&c->local_conf, "local conf", "something", NULL);
    expect_conf(&c->global_conf, "def1", "test2", "def2", "b", "basepath", pd_dir(), "another",
                "TEST", "here", pd_dir(), "__file__", pd_path("test_config.ini"), NULL);
    /* where a global came from */
    const csgi_conf__entry *def1 = csgi_conf__list_find(&c->global_conf, "def1");
    ck_assert_str_eq(def1->origin.key, "set def1");
    ck_assert_int_eq(def1->origin.line, 14);
}

START_TEST(config_test2_leaves_test1_unchanged)
{
    csgi_conf__loader *loader = new_loader();
    expect_test2(loader);
    expect_test1(loader);
    expect_test2(loader);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(config_test3_uses_test2)
{
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_config.ini"), "test3", NULL);
    ck_assert_str_eq(c->section, "app:test3");
    ck_assert_str_eq(c->factory.text, "egg:FakeApp#configed");
    expect_conf(&c->local_conf, "local conf", "something", "another",
                "something more\nacross several\nlines", NULL);
    expect_conf(&c->global_conf, "def1", "test3", "def2", "b", "basepath", pd_dir(), "another",
                "TEST", "here", pd_dir(), "__file__", pd_path("test_config.ini"), NULL);
    expect_test2(loader);
    expect_test1(loader);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(config_foreign_config)
{
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_config.ini"), "test_foreign_config", NULL);
    ck_assert_str_eq(c->section, "app:test_foreign_config");
    ck_assert_int_eq(c->protocol, CSGI_CONF__PROTOCOL_APP_FACTORY);
    ck_assert_str_eq(c->factory.text, "fakeapp.configapps:SimpleApp.make_app");
    ck_assert_str_eq(c->factory.origin.file, pd_path("test_config_included.ini"));
    ck_assert_str_eq(c->factory.origin.section, "app:main");
    expect_conf(&c->local_conf, "another", "FOO", "bob", "your uncle", NULL);
    expect_conf(&c->global_conf, "def1", "a", "def2", "b", "def3", "c", "basepath", pd_dir(),
                "glob", "override", "here", pd_dir(), "__file__", pd_path("test_config.ini"), NULL);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(config_uri_percent_decoded)
{
    /* `use = config:` decodes %XX (either case) in the path, as
       PasteDeploy's urllib unquoting does; a '%' without two hex digits
       stays. A '%' in a value is written %% (interpolation). */
    csgi_conf__loader *loader = new_loader();
    test_write_file("with space*A.ini", "[app:inner]\nuse = egg:X#y\nfrom = there\n");
    const char *path = test_write_file(
        "percent.ini", "[app:main]\nuse = config:with%%20space%%2a%%41.ini#inner\n");
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    expect_conf(&c->local_conf, "from", "there", NULL);

    path =
        test_write_file("percent2.ini", "[app:main]\nuse = config:with%%20space%%zz.ini#inner\n");
    csgi_load_error error;
    expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_ENOTFOUND, &error);
    ck_assert_ptr_nonnull(strstr(error.text, "with space%zz.ini"));
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(config_get)
{
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_config.ini"), "test_get", NULL);
    expect_conf(&c->local_conf, "def1", "a", "foo", "TEST", NULL);
    expect_conf(&c->global_conf, "def1", "a", "def2", "TEST", "basepath", pd_dir(), "here",
                pd_dir(), "__file__", pd_path("test_config.ini"), NULL);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(config_global_conf_from_caller)
{
    csgi_conf__loader *loader = new_loader();
    csgi_conf__list globals = {0};
    ck_assert_int_eq(csgi_conf__list_add(loader, &globals, "def2", "TEST DEF 2"), 0);
    ck_assert_int_eq(csgi_conf__list_add(loader, &globals, "inherit", "bazbar"), 0);
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_config.ini"), "test_global_conf", &globals);
    expect_conf(&c->local_conf, "test_interp", "this:bazbar", NULL);
    expect_conf(&c->global_conf, "def1", "a", "def2", "TEST DEF 2", "basepath", pd_dir(), "here",
                pd_dir(), "inherit", "bazbar", "__file__", pd_path("test_config.ini"), NULL);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(config_included_file_alone)
{
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_config_included.ini"), NULL, NULL);
    expect_conf(&c->local_conf, "bob", "your uncle", "another", "BAR", NULL);
    expect_conf(&c->global_conf, "def2", "from include", "def3", "c", "glob", "orig", "here",
                pd_dir(), "__file__", pd_path("test_config_included.ini"), NULL);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(config_test_error)
{
    csgi_conf__loader *loader = new_loader();
    csgi_load_error error;
    const char *message = expect_failure(loader, CSGI_CONF__APP, pd_path("test_error.ini"), NULL,
                                         NULL, CSGI_EPARSE, &error);
    ck_assert_str_eq(error.file, pd_path("test_error.ini"));
    ck_assert_int_eq(error.line, 8);
    ck_assert_str_eq(error.section, "app:main");
    ck_assert_str_eq(error.key, "setting2");
    ck_assert_ptr_nonnull(strstr(error.text, "does_not_exist"));
    ck_assert_ptr_nonnull(strstr(message, "test_error.ini:8: [app:main] setting2: "));
    csgi_conf__loader_free(loader);
}
END_TEST

/* ---- the other samples ------------------------------------------------------ */

START_TEST(basic_app_names_and_aliases)
{
    csgi_conf__loader *loader = new_loader();
    const char *path = pd_path("basic_app.ini");
    char uri[PATH_MAX + 128];
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_APP);
    ck_assert_str_eq(c->section, "application:main");
    ck_assert_str_eq(c->name, "main");
    ck_assert_str_eq(c->factory.text, "egg:FakeApp#basic_app");
    expect_conf(&c->local_conf, NULL);

    snprintf(uri, sizeof(uri), "%s#main", path);
    c = resolve(loader, CSGI_CONF__APP, uri, NULL, NULL);
    ck_assert_str_eq(c->section, "application:main");
    snprintf(uri, sizeof(uri), "config:%s#ignored", path);
    c = resolve(loader, CSGI_CONF__APP, uri, "main", NULL);
    ck_assert_str_eq(c->section, "application:main");

    snprintf(uri, sizeof(uri), "%s#other", path);
    c = resolve(loader, CSGI_CONF__APP, uri, NULL, NULL);
    ck_assert_str_eq(c->section, "application:other");
    ck_assert_str_eq(c->factory.text, "egg:FakeApp#other");

    snprintf(uri, sizeof(uri), "%s#remote_addr", path);
    c = resolve(loader, CSGI_CONF__APP, uri, NULL, NULL);
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_COMPOSITE);
    ck_assert_str_eq(c->section, "composit:remote_addr");
    ck_assert_str_eq(csgi_conf__kind_name(c->kind), "composite");
    ck_assert_str_eq(c->factory.text, "egg:FakeApp#remote_addr");
    expect_conf(&c->local_conf, "app.1", "main", "addr.1", "127.0.0.1", "app.2", "other", "addr.2",
                "0.0.0.0", NULL);
    /* the composite resolves its apps through the loader */
    csgi_conf__reference main_ref = {"main", {NULL, NULL, NULL, 0}};
    const csgi_conf__context *m = child(loader, c, CSGI_CONF__APP, &main_ref);
    ck_assert_str_eq(m->section, "application:main");
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(test_func_call_references)
{
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_func.ini"), NULL, NULL);
    ck_assert_str_eq(c->factory.text, "call:fakeapp.apps:make_basic_app");
    ck_assert_int_eq(c->protocol, CSGI_CONF__PROTOCOL_NONE);
    ck_assert_int_eq(c->factory_kind, CSGI_CONF__KIND_APP);
    c = resolve(loader, CSGI_CONF__APP, pd_path("test_func.ini"), "remote_addr", NULL);
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_COMPOSITE);
    ck_assert_int_eq(c->factory_kind, CSGI_CONF__KIND_COMPOSITE);
    expect_conf(&c->local_conf, "app.1", "main", "addr.1", "127.0.0.1", "app.2", "other", "addr.2",
                "0.0.0.0", NULL);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(executable_bare_sections)
{
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("executable.ini"), NULL, NULL);
    ck_assert_str_eq(c->section, "app");
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_APP);
    ck_assert_str_eq(c->factory.text, "egg:FakeApp#basic_app");
    expect_conf(&c->local_conf, NULL);
    c = resolve(loader, CSGI_CONF__SERVER, pd_path("executable.ini"), NULL, NULL);
    ck_assert_str_eq(c->section, "server");
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_SERVER);
    ck_assert_str_eq(c->factory.text, "egg:PasteScript#cgi");
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(test_filter_sections)
{
    csgi_conf__loader *loader = new_loader();
    const char *path = pd_path("test_filter.ini");
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, "piped", NULL);
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_PIPELINE);
    ck_assert_uint_eq(c->pipeline_count, 2);
    ck_assert_str_eq(c->pipeline[0].text, "egg:FakeApp#caps");
    ck_assert_str_eq(c->pipeline[1].text, "normal");
    ck_assert_ptr_null(c->factory.text);
    const csgi_conf__context *f = child(loader, c, CSGI_CONF__FILTER, &c->pipeline[0]);
    ck_assert_int_eq(f->kind, CSGI_CONF__KIND_NONE);
    ck_assert_str_eq(f->factory.text, "egg:FakeApp#caps");
    const csgi_conf__context *a = child(loader, c, CSGI_CONF__APP, &c->pipeline[1]);
    ck_assert_str_eq(a->section, "app:normal");
    ck_assert_str_eq(a->factory.text, "egg:FakeApp#basic_app");

    c = resolve(loader, CSGI_CONF__APP, path, "filt", NULL);
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_FILTER_APP);
    ck_assert_int_eq(c->factory_kind, CSGI_CONF__KIND_FILTER);
    ck_assert_str_eq(c->factory.text, "egg:FakeApp#caps");
    ck_assert_str_eq(c->next_app.text, "normal");
    expect_conf(&c->local_conf, "method_to_call", "lower", NULL);
    a = child(loader, c, CSGI_CONF__APP, &c->next_app);
    ck_assert_str_eq(a->section, "app:normal");

    c = resolve(loader, CSGI_CONF__APP, path, "filt2", NULL);
    ck_assert_str_eq(c->factory.text, "egg:FakeApp#caps2");
    c = resolve(loader, CSGI_CONF__APP, path, "piped2", NULL);
    ck_assert_str_eq(c->pipeline[0].text, "egg:FakeApp#caps2");

    c = resolve(loader, CSGI_CONF__APP, path, "inv", NULL);
    ck_assert_ptr_nonnull(c->filter_with);
    ck_assert_str_eq(c->filter_with->reference.text, "egg:FakeApp#caps");
    ck_assert_ptr_null(c->filter_with->next);
    expect_conf(&c->local_conf, NULL);

    csgi_load_error error;
    expect_failure(loader, CSGI_CONF__APP, path, "piped3", NULL, CSGI_EPARSE, &error);
    ck_assert_str_eq(error.section, "pipeline:piped3");
    ck_assert_str_eq(error.key, "extra_config_option");
    ck_assert_int_eq(error.line, 26);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(test_filter_with_chain)
{
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c =
        resolve(loader, CSGI_CONF__APP, pd_path("test_filter_with.ini"), NULL, NULL);
    expect_conf(&c->local_conf, "example", "test", NULL);
    ck_assert_str_eq(c->filter_with->reference.text, "filter1");
    const csgi_conf__context *f1 = child(loader, c, CSGI_CONF__FILTER, &c->filter_with->reference);
    ck_assert_int_eq(f1->kind, CSGI_CONF__KIND_FILTER);
    ck_assert_str_eq(f1->section, "filter:filter1");
    ck_assert_str_eq(f1->filter_with->reference.text, "filter2");
    const csgi_conf__context *f2 =
        child(loader, f1, CSGI_CONF__FILTER, &f1->filter_with->reference);
    ck_assert_str_eq(f2->section, "filter:filter2");
    ck_assert_ptr_null(f2->filter_with);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(talk_files)
{
    csgi_conf__loader *loader = new_loader();
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/talk/wsgi_webob.ini", test_testdata_dir());
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    ck_assert_int_eq(c->protocol, CSGI_CONF__PROTOCOL_APP_FACTORY);
    ck_assert_str_eq(csgi_conf__protocol_name(c->protocol), "paste.app_factory");
    ck_assert_str_eq(c->factory.text, "wsgi_webob:app_factory");
    expect_conf(&c->local_conf, NULL);

    snprintf(path, sizeof(path), "%s/talk/wsgi_webob_mid.ini", test_testdata_dir());
    c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_PIPELINE);
    ck_assert_uint_eq(c->pipeline_count, 2);
    const csgi_conf__context *auth = child(loader, c, CSGI_CONF__FILTER, &c->pipeline[0]);
    ck_assert_int_eq(auth->protocol, CSGI_CONF__PROTOCOL_FILTER_FACTORY);
    ck_assert_str_eq(auth->factory.text, "wsgi_webob_mid:filter_factory");
    const csgi_conf__context *hello = child(loader, c, CSGI_CONF__APP, &c->pipeline[1]);
    ck_assert_str_eq(hello->factory.text, "wsgi_webob_mid:app_factory");
    csgi_conf__loader_free(loader);
}
END_TEST

/* ---- unit cases ---------------------------------------------------------------- */

START_TEST(interpolation_escapes_and_recursion)
{
    const char *path = test_write_file("a.ini", "[DEFAULT]\n"
                                                "pct = 100%%\n"
                                                "base = /srv\n"
                                                "[app:main]\n"
                                                "use = egg:X#y\n"
                                                "a = %(pct)s!\n"
                                                "b = 50%% off\n"
                                                "c = %(d)s/x\n"
                                                "d = %(base)s/d\n"
                                                "base = /local\n"
                                                "e = %%(pct)s\n");
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    /* `base` is in DEFAULT: dropped from local, but the section's value
       wins for interpolation inside the section (ConfigParser's ChainMap) */
    expect_conf(&c->local_conf, "a", "100%!", "b", "50% off", "c", "/local/d/x", "d", "/local/d",
                "e", "%(pct)s", NULL);
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "pct"), "100%");
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "base"), "/srv");
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(interpolation_errors)
{
    csgi_conf__loader *loader = new_loader();
    csgi_load_error error;
    const char *path = test_write_file("bad.ini", "[app:main]\nuse = egg:X#y\nv = 50% off\n");
    expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_EPARSE, &error);
    ck_assert_int_eq(error.line, 3);
    ck_assert_str_eq(error.key, "v");
    ck_assert_ptr_nonnull(strstr(error.text, "'%' must be followed by"));

    path = test_write_file("bad2.ini", "[app:main]\nuse = egg:X#y\nv = %(x)\n");
    expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_EPARSE, &error);
    ck_assert_str_eq(error.key, "v");

    path = test_write_file("loop.ini", "[app:main]\nuse = egg:X#y\nx = %(y)s\ny = %(x)s\n");
    expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_EPARSE, &error);
    ck_assert_str_eq(error.key, "x");
    ck_assert_ptr_nonnull(strstr(error.text, "deeper than 10"));

    /* Each level repeats the one below 16 times: 1 KiB becomes 64 MiB in
       four levels of a 1.5 KiB file, above the cap of an interpolated value. */
    char laughs[2048];
    int n = snprintf(laughs, sizeof(laughs), "[DEFAULT]\na0 = %01024d\n", 0);
    for (int level = 1; level <= 4; level++) {
        n += snprintf(laughs + n, sizeof(laughs) - (size_t)n, "a%d = ", level);
        for (int i = 0; i < 16; i++)
            n += snprintf(laughs + n, sizeof(laughs) - (size_t)n, "%%(a%d)s", level - 1);
        n += snprintf(laughs + n, sizeof(laughs) - (size_t)n, "\n");
    }
    snprintf(laughs + n, sizeof(laughs) - (size_t)n, "[app:main]\nuse = egg:X#y\n");
    path = test_write_file("laughs.ini", laughs);
    expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_ETOOBIG, &error);
    ck_assert_str_eq(error.key, "a4");
    ck_assert_ptr_nonnull(strstr(error.text, "interpolated value longer than"));

    path = test_write_file("def.ini", "[DEFAULT]\nroot = %(nothing)s\n[app:main]\nuse = egg:X#y\n");
    expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_EPARSE, &error);
    ck_assert_str_eq(error.section, "DEFAULT");
    ck_assert_str_eq(error.key, "root");
    ck_assert_int_eq(error.line, 2);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(default_keys_dropped_unless_set)
{
    const char *path = test_write_file("d.ini", "[DEFAULT]\n"
                                                "port = 1\n"
                                                "[app:main]\n"
                                                "use = egg:X#y\n"
                                                "port = 2\n"
                                                "[app:setter]\n"
                                                "use = egg:X#y\n"
                                                "set port = 3\n"
                                                "set  fresh  = new\n");
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    expect_conf(&c->local_conf, NULL);
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "port"), "1");
    c = resolve(loader, CSGI_CONF__APP, path, "setter", NULL);
    expect_conf(&c->local_conf, NULL);
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "port"), "3");
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "fresh"), "new");
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(caller_globals_precedence)
{
    const char *path = test_write_file("g.ini", "[DEFAULT]\n"
                                                "x = file\n"
                                                "[app:main]\n"
                                                "use = egg:X#y\n"
                                                "v = %(x)s %(y)s\n"
                                                "y = local\n");
    csgi_conf__loader *loader = new_loader();
    csgi_conf__list globals = {0};
    csgi_conf__list_add(loader, &globals, "x", "caller");
    csgi_conf__list_add(loader, &globals, "y", "caller-y");
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, &globals);
    /* interpolation: the file's DEFAULT wins, then the section's own key;
       caller globals join the defaults, so `y` leaves the local conf as
       PasteDeploy's update_defaults makes it */
    expect_conf(&c->local_conf, "v", "file local", NULL);
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "x"), "caller");
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "y"), "caller-y");
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(get_missing_global)
{
    const char *path = test_write_file("get.ini", "[app:main]\nuse = egg:X#y\nget v = nowhere\n");
    csgi_conf__loader *loader = new_loader();
    csgi_load_error error;
    expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_EPARSE, &error);
    ck_assert_str_eq(error.key, "get v");
    ck_assert_ptr_nonnull(strstr(error.text, "nowhere"));
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(use_extends_and_overrides)
{
    const char *path = test_write_file("u.ini", "[app:base]\n"
                                                "paste.app_factory = mod:make\n"
                                                "a = 1\n"
                                                "b = 2\n"
                                                "set g = base\n"
                                                "[app:main]\n"
                                                "use = base\n"
                                                "b = 3\n"
                                                "c = 4\n"
                                                "set g = main\n"
                                                "[app:plain]\n"
                                                "use = wsgi_webob:app_factory\n"
                                                "[composite:map]\n"
                                                "use = call:m:make_map\n"
                                                "[app:outer]\n"
                                                "use = map\n");
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    ck_assert_str_eq(c->section, "app:main");
    ck_assert_int_eq(c->protocol, CSGI_CONF__PROTOCOL_APP_FACTORY);
    ck_assert_str_eq(c->factory.text, "mod:make");
    expect_conf(&c->local_conf, "a", "1", "b", "3", "c", "4", NULL);
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "g"), "main");
    c = resolve(loader, CSGI_CONF__APP, path, "base", NULL);
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "g"), "base");
    c = resolve(loader, CSGI_CONF__APP, path, "plain", NULL);
    ck_assert_int_eq(c->protocol, CSGI_CONF__PROTOCOL_NONE);
    ck_assert_str_eq(c->factory.text, "wsgi_webob:app_factory");
    /* the section that wrote the call: decides its protocol */
    c = resolve(loader, CSGI_CONF__APP, path, "outer", NULL);
    ck_assert_int_eq(c->kind, CSGI_CONF__KIND_APP);
    ck_assert_int_eq(c->factory_kind, CSGI_CONF__KIND_COMPOSITE);
    ck_assert_str_eq(c->factory.origin.section, "composite:map");
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(included_file_here_and_relative_path)
{
    test_write_file("sub/inc.ini", "[app:x]\n"
                                   "paste.app_factory = m:f\n"
                                   "where = %(here)s\n");
    const char *path = test_write_file("top.ini", "[app:main]\nuse = config:sub/inc.ini#x\n");
    char sub[PATH_MAX + 8];
    snprintf(sub, sizeof(sub), "%s/sub", test_tmp_dir());
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    expect_conf(&c->local_conf, "where", sub, NULL);
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "here"), test_tmp_dir());
    ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "__file__"), path);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(use_cycles)
{
    csgi_conf__loader *loader = new_loader();
    csgi_load_error error;
    const char *path = test_write_file("c.ini", "[app:a]\nuse = b\n[app:b]\nuse = a\n"
                                                "[app:self]\nuse = self\n");
    const char *message =
        expect_failure(loader, CSGI_CONF__APP, path, "a", NULL, CSGI_EPARSE, &error);
    ck_assert_str_eq(error.section, "app:b");
    ck_assert_str_eq(error.key, "use");
    ck_assert_int_eq(error.line, 4);
    ck_assert_msg(strstr(message, "c.ini[app:a] -> [app:b] -> [app:a]") != NULL, "%s", message);
    expect_failure(loader, CSGI_CONF__APP, path, "self", NULL, CSGI_EPARSE, &error);
    ck_assert_ptr_nonnull(strstr(error.text, "[app:self] -> [app:self]"));

    test_write_file("x.ini", "[app:main]\nuse = config:y.ini\n");
    path = test_write_file("y.ini", "[app:main]\nuse = config:x.ini\n");
    message = expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_EPARSE, &error);
    ck_assert_msg(strstr(message, "y.ini[app:main] -> ") && strstr(message, "x.ini[app:main] -> "),
                  "%s", message);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(child_cycles)
{
    csgi_conf__loader *loader = new_loader();
    const char *path = test_write_file("p.ini", "[pipeline:main]\n"
                                                "pipeline = f main\n"
                                                "[filter:f]\n"
                                                "use = egg:X#f\n"
                                                "filter-with = f\n"
                                                "[composite:map]\n"
                                                "use = egg:X#urlmap\n"
                                                "/ = app\n"
                                                "/b = app\n"
                                                "[app:app]\n"
                                                "use = egg:X#a\n");
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    csgi_load_error error;
    csgi_load_error__clear(&error);
    const csgi_conf__context *out = NULL;
    ck_assert_int_eq(
        csgi_conf__resolve_child(loader, c, CSGI_CONF__APP, &c->pipeline[1], &out, &error),
        CSGI_EPARSE);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(error.line, 2);
    ck_assert_str_eq(error.key, "pipeline");
    ck_assert_msg(strstr(error.text, "[pipeline:main] -> [pipeline:main]") != NULL, "%s",
                  error.text);

    /* a filter whose filter-with names itself */
    const csgi_conf__context *f = child(loader, c, CSGI_CONF__FILTER, &c->pipeline[0]);
    ck_assert_ptr_eq(f->parent, c);
    csgi_load_error__clear(&error);
    ck_assert_int_eq(csgi_conf__resolve_child(loader, f, CSGI_CONF__FILTER,
                                              &f->filter_with->reference, &out, &error),
                     CSGI_EPARSE);
    ck_assert_msg(strstr(error.text, "[filter:f] -> [filter:f]") != NULL, "%s", error.text);

    /* siblings naming the same section are not a cycle */
    c = resolve(loader, CSGI_CONF__APP, path, "map", NULL);
    csgi_conf__reference app = {"app", {NULL, NULL, NULL, 0}};
    ck_assert_str_eq(child(loader, c, CSGI_CONF__APP, &app)->section, "app:app");
    ck_assert_str_eq(child(loader, c, CSGI_CONF__APP, &app)->section, "app:app");
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(missing_and_unreadable)
{
    csgi_conf__loader *loader = new_loader();
    csgi_load_error error;
    const char *path = test_write_file("m.ini", "[app:main]\nuse = nope\n"
                                                "[app:inc]\nuse = config:missing.ini\n");
    const char *message =
        expect_failure(loader, CSGI_CONF__APP, path, "absent", NULL, CSGI_ENOTFOUND, &error);
    ck_assert_msg(strstr(message, "no section 'absent'") && strstr(message, "'application'"), "%s",
                  message);
    expect_failure(loader, CSGI_CONF__APP, path, NULL, NULL, CSGI_ENOTFOUND, &error);
    ck_assert_str_eq(error.section, "app:main");
    ck_assert_str_eq(error.key, "use");
    ck_assert_ptr_nonnull(strstr(error.text, "no section 'nope'"));
    message = expect_failure(loader, CSGI_CONF__APP, path, "inc", NULL, CSGI_ENOTFOUND, &error);
    ck_assert_int_eq(error.line, 4);
    ck_assert_msg(strstr(message, "missing.ini") != NULL, "%s", message);
    /* a filter request does not see app sections */
    expect_failure(loader, CSGI_CONF__FILTER, path, NULL, NULL, CSGI_ENOTFOUND, &error);
    /* the top-level file */
    expect_failure(loader, CSGI_CONF__APP, "/nonexistent/x.ini", NULL, NULL, CSGI_ENOTFOUND,
                   &error);
    csgi_conf__loader_free(loader);
}
END_TEST

START_TEST(section_errors)
{
    csgi_conf__loader *loader = new_loader();
    csgi_load_error error;
    const char *path = test_write_file("s.ini", "[app:dup]\nuse = egg:X#y\n"
                                                "[composite:dup]\nuse = egg:X#z\n"
                                                "[app:two]\npaste.app_factory = a:b\n"
                                                "paste.composite_factory = c:d\n"
                                                "[app:none]\nkey = v\n"
                                                "[filter-app:fa]\nuse = egg:X#f\n"
                                                "[app: spaced ]\nuse = egg:X#s\n"
                                                "[application:dup2]\nuse = egg:X#late\n"
                                                "[app:dup2]\nuse = egg:X#early\n");
    const char *message =
        expect_failure(loader, CSGI_CONF__APP, path, "dup", NULL, CSGI_EPARSE, &error);
    ck_assert_msg(strstr(message, "ambiguous") && strstr(message, "[composite:dup]"), "%s",
                  message);
    expect_failure(loader, CSGI_CONF__APP, path, "two", NULL, CSGI_EPARSE, &error);
    ck_assert_ptr_nonnull(strstr(error.text, "more than one factory"));
    expect_failure(loader, CSGI_CONF__APP, path, "none", NULL, CSGI_EPARSE, &error);
    ck_assert_ptr_nonnull(strstr(error.text, "paste.app_factory"));
    expect_failure(loader, CSGI_CONF__APP, path, "fa", NULL, CSGI_EPARSE, &error);
    ck_assert_ptr_nonnull(strstr(error.text, "'next'"));
    const csgi_conf__context *c = resolve(loader, CSGI_CONF__APP, path, "spaced", NULL);
    ck_assert_str_eq(c->factory.text, "egg:X#s");
    /* app: is looked at before application: */
    c = resolve(loader, CSGI_CONF__APP, path, "dup2", NULL);
    ck_assert_str_eq(c->factory.text, "egg:X#early");
    csgi_conf__loader_free(loader);
}
END_TEST

/* Fail the Nth allocation for every N: each failure is ENOMEM, nothing leaks. */
START_TEST(out_of_memory_every_allocation)
{
    /* A value long enough to need the interpolation buffer to grow and a
       block of its own in the arena. */
    char text[6000];
    int n = snprintf(text, sizeof(text), "[DEFAULT]\nx = %%(here)s/");
    for (int i = 0; i < 400; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "long%d ", i);
    snprintf(text + n, sizeof(text) - (size_t)n,
             "\n[app:main]\nuse = config:inc.ini\nv = %%(x)s%%%%\nset g = 1\n");
    test_write_file("inc.ini",
                    "[app:main]\nuse = base\nget w = g\n[app:base]\npaste.app_factory = a:b\n");
    const char *path = test_write_file("oom.ini", text);
    ck_assert_int_eq(test_alloc_install(), 0);
    int successes = 0;
    long succeeded_at = 0;
    for (long budget = 0; budget < 500 && !successes; budget++) {
        csgi_conf__loader *loader = NULL;
        test_alloc_fail_after(budget);
        int rc = csgi_conf__loader_new(&loader);
        if (rc == 0) {
            csgi_load_error error;
            csgi_load_error__clear(&error);
            const csgi_conf__context *c = NULL;
            rc = csgi_conf__resolve(loader, CSGI_CONF__APP, path, NULL, NULL, &c, &error);
            if (rc == 0) {
                test_alloc_fail_never();
                successes++;
                succeeded_at = budget;
                ck_assert_str_eq(csgi_conf__list_get(&c->local_conf, "w"), "1");
                ck_assert_str_eq(csgi_conf__list_get(&c->global_conf, "g"), "1");
                const char *v = csgi_conf__list_get(&c->local_conf, "v");
                ck_assert_uint_gt(strlen(v), 2000);
                ck_assert_int_eq(v[strlen(v) - 1], '%');
            } else {
                ck_assert_msg(rc == CSGI_ENOMEM, "budget %ld: %d %s", budget, rc, error.text);
                ck_assert_ptr_null(c);
            }
        } else {
            ck_assert_int_eq(rc, CSGI_ENOMEM);
        }
        test_alloc_fail_never();
        csgi_conf__loader_free(loader);
    }
    ck_assert_int_eq(successes, 1);
    ck_assert_int_gt(succeeded_at, 10); /* the failures above covered many paths */
    test_alloc_restore();
}
END_TEST

START_TEST(null_arguments)
{
    const csgi_conf__context *c = (const csgi_conf__context *)1;
    ck_assert_int_eq(csgi_conf__resolve(NULL, CSGI_CONF__APP, "x.ini", NULL, NULL, &c, NULL),
                     CSGI_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(csgi_conf__loader_new(NULL), CSGI_EINVAL);
    csgi_conf__loader_free(NULL);
    ck_assert_ptr_null(csgi_conf__list_find(NULL, "x"));
    ck_assert_ptr_null(csgi_conf__protocol_name(CSGI_CONF__PROTOCOL_NONE));
    ck_assert_str_eq(csgi_conf__kind_name(CSGI_CONF__KIND_FILTER_APP), "filter-app");
}
END_TEST

/* 100,000 local keys and 20,000 defaults through `use`: the conf lists
   find their entries through an index (a scan per key took minutes). */
START_TEST(hundred_thousand_keys)
{
    enum { LOCAL = 100000, DEFAULTS = 20000 };
    size_t size = (size_t)(LOCAL + DEFAULTS) * 40 + 256, len = 0;
    char *text = malloc(size);
    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text + len, size - len, "[DEFAULT]\n");
    for (int i = 0; i < DEFAULTS; i++)
        len += (size_t)snprintf(text + len, size - len, "d%d = %d\n", i, i);
    len += (size_t)snprintf(text + len, size - len,
                            "[app:base]\nuse = egg:X#y\n[app:main]\nuse = base\n");
    for (int i = 0; i < LOCAL; i++)
        len += (size_t)snprintf(text + len, size - len, "key%d = %%(d%d)s\n", i, i % DEFAULTS);
    const char *path = test_write_file("many.ini", text);
    free(text);
    csgi_conf__loader *loader = new_loader();
    const csgi_conf__context *context = resolve(loader, CSGI_CONF__APP, path, NULL, NULL);
    ck_assert_uint_eq(context->local_conf.count, LOCAL);
    ck_assert_str_eq(csgi_conf__list_get(&context->local_conf, "key99999"), "19999");
    ck_assert_ptr_null(csgi_conf__list_get(&context->local_conf, "d5"));
    ck_assert_str_eq(csgi_conf__list_get(&context->global_conf, "d12345"), "12345");
    csgi_conf__loader_free(loader);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("conf");
    TCase *config = tcase_create("test_config");
    tcase_add_test(config, config_test1);
    tcase_add_test(config, config_test2_leaves_test1_unchanged);
    tcase_add_test(config, config_test3_uses_test2);
    tcase_add_test(config, config_foreign_config);
    tcase_add_test(config, config_get);
    tcase_add_test(config, config_uri_percent_decoded);
    tcase_add_test(config, config_global_conf_from_caller);
    tcase_add_test(config, config_included_file_alone);
    tcase_add_test(config, config_test_error);
    suite_add_tcase(suite, config);

    TCase *samples = tcase_create("samples");
    tcase_add_test(samples, basic_app_names_and_aliases);
    tcase_add_test(samples, test_func_call_references);
    tcase_add_test(samples, executable_bare_sections);
    tcase_add_test(samples, test_filter_sections);
    tcase_add_test(samples, test_filter_with_chain);
    tcase_add_test(samples, talk_files);
    suite_add_tcase(suite, samples);

    TCase *rules = tcase_create("rules");
    tcase_add_test(rules, interpolation_escapes_and_recursion);
    tcase_add_test(rules, interpolation_errors);
    tcase_add_test(rules, default_keys_dropped_unless_set);
    tcase_add_test(rules, caller_globals_precedence);
    tcase_add_test(rules, get_missing_global);
    tcase_add_test(rules, use_extends_and_overrides);
    tcase_add_test(rules, included_file_here_and_relative_path);
    tcase_add_test(rules, use_cycles);
    tcase_add_test(rules, child_cycles);
    tcase_add_test(rules, missing_and_unreadable);
    tcase_add_test(rules, section_errors);
    tcase_add_test(rules, null_arguments);
    tcase_add_test(rules, out_of_memory_every_allocation);
    tcase_add_test(rules, hundred_thousand_keys);
    suite_add_tcase(suite, rules);

    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
