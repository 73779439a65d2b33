/* The factory resolver (csgi/loader.h): PasteDeploy's sample configs built
   with C FakeApp factories and run in-process. */
#include "common/arena.h"
#include "gateway/environ_private.h"
#include "gateway/gateway.h"
#include "http/parser.h"

#include <csgi.h>
#include <csgi/testing.h>
#include <csgi/composite.h>
#include <csgi/loader.h>
#include <csgi/server.h>

#include "test_alloc.h"
#include "test_deploy.h"
#include "test_files.h"

#include <check.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FIELDS 32

/* ---- test data ------------------------------------------------------------------ */

static const char *pd_dir(void)
{
    static char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/pastedeploy", test_testdata_dir());
    return dir;
}

/* PATH/pastedeploy/file plus an optional fragment. */
static const char *pd_uri(const char *file, const char *name)
{
    static char uri[PATH_MAX + 128];
    snprintf(uri, sizeof(uri), "%s/%s%s%s", pd_dir(), file, name ? "#" : "", name ? name : "");
    return uri;
}

/* ---- FakeApp ------------------------------------------------------------------------ */

/* Every plain FakeApp app: a body and copies of the conf it was made from. */
typedef struct fake_app {
    const char *body;
    const char *status;
    size_t global_count;
    char **global; /* name, value, name, value, ... */
    size_t local_count;
    char **local;
} fake_app;

static char **copy_conf(const csgi_conf *conf, size_t *count)
{
    *count = csgi_conf_count(conf);
    char **pairs = calloc(*count * 2 + 1, sizeof(char *));
    ck_assert_ptr_nonnull(pairs);
    for (size_t i = 0; i < *count; i++) {
        const char *name = NULL, *value = NULL;
        ck_assert_int_eq(csgi_conf_entry(conf, i, &name, &value), 1);
        pairs[2 * i] = strdup(name);
        pairs[2 * i + 1] = strdup(value);
    }
    ck_assert_int_eq(csgi_conf_entry(conf, *count, NULL, NULL), 0);
    return pairs;
}

static void free_pairs(char **pairs, size_t count)
{
    for (size_t i = 0; i < 2 * count; i++)
        free(pairs[i]);
    free(pairs);
}

static csgi_body *fake_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    fake_app *fake = state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    if (csgi_start_response_call(start_response, fake->status, headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, fake->body, strlen(fake->body));
}

static void fake_destroy(void *state)
{
    fake_app *fake = state;
    free_pairs(fake->global, fake->global_count);
    free_pairs(fake->local, fake->local_count);
    free(fake);
}

static const csgi_app_type basic_type = {"basic_app", fake_call, fake_destroy};
static const csgi_app_type other_type = {"other", fake_call, fake_destroy};
static const csgi_app_type configed_type = {"configed", fake_call, fake_destroy};

static int make_fake(const csgi_app_type *type, const char *body, const char *status,
                     const csgi_conf *global_conf, const csgi_conf *local_conf, csgi_app **out)
{
    fake_app *fake = calloc(1, sizeof(*fake));
    ck_assert_ptr_nonnull(fake);
    fake->body = body;
    fake->status = status;
    fake->global = copy_conf(global_conf, &fake->global_count);
    fake->local = copy_conf(local_conf, &fake->local_count);
    return csgi_app_new(out, type, fake);
}

static int basic_app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)error;
    /* Not a composite: no names to resolve. */
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_loader_get_app(&app, loader, "main", NULL), CSGI_ESTATE);
    return make_fake(&basic_type, "This is basic app", "200 OK", global_conf, local_conf, out);
}

static int other_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)error;
    return make_fake(&other_type, "This is another app", "200 OK", global_conf, local_conf, out);
}

static int configed_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                            const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)error;
    return make_fake(&configed_type, "configed", "200 OK", global_conf, local_conf, out);
}

static int not_found_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)error;
    return make_fake(&other_type, "nothing here", "404 Not Found", global_conf, local_conf, out);
}

/* caps: upper-cases (or with method_to_call = lower, lower-cases) the body. */
typedef struct caps_filter {
    csgi_app *next;
    int lower;
} caps_filter;

typedef struct caps_body {
    csgi_body *inner;
    int lower;
    char *buf;
} caps_body;

static int caps_body_next(void *state, csgi_chunk *chunk)
{
    caps_body *b = state;
    int rc = csgi_body_next(b->inner, chunk);
    if (rc != 1)
        return rc;
    free(b->buf);
    b->buf = malloc(chunk->len + 1);
    if (!b->buf)
        return CSGI_ENOMEM;
    const char *data = chunk->data;
    for (size_t i = 0; i < chunk->len; i++)
        b->buf[i] =
            (char)(b->lower ? tolower((unsigned char)data[i]) : toupper((unsigned char)data[i]));
    chunk->data = b->buf;
    return 1;
}

static void caps_body_close(void *state)
{
    caps_body *b = state;
    csgi_body_close(b->inner);
    free(b->buf);
}

static const csgi_body_type caps_body_type = {"caps", caps_body_next, caps_body_close};

static csgi_body *caps_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    caps_filter *caps = state;
    csgi_body *inner = csgi_app_call(caps->next, environ, start_response);
    if (!inner)
        return NULL;
    caps_body *b = csgi_environ_alloc(environ, sizeof(*b));
    if (!b) {
        csgi_body_close(inner);
        return NULL;
    }
    b->inner = inner;
    b->lower = caps->lower;
    b->buf = NULL;
    return csgi_body_new(environ, &caps_body_type, b);
}

static void caps_destroy(void *state)
{
    caps_filter *caps = state;
    csgi_app_free(caps->next);
    free(caps);
}

static const csgi_app_type caps_type = {"caps", caps_call, caps_destroy};

static int caps_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                        const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)error;
    caps_filter *caps = calloc(1, sizeof(*caps));
    ck_assert_ptr_nonnull(caps);
    caps->next = next;
    const char *method = csgi_conf_get(local_conf, "method_to_call");
    caps->lower = method && strcmp(method, "lower") == 0;
    return csgi_app_new(out, &caps_type, caps);
}

/* remote_addr: picks an app by REMOTE_ADDR from app.N / addr.N pairs;
   0.0.0.0 is the fallback. */
#define MAX_ROUTES 8

typedef struct remote_addr {
    size_t count;
    char *addr[MAX_ROUTES];
    csgi_app *app[MAX_ROUTES];
} remote_addr;

static csgi_body *remote_addr_call(void *state, csgi_environ *environ,
                                   csgi_start_response *start_response)
{
    remote_addr *r = state;
    const char *addr = csgi_environ_get(environ, "REMOTE_ADDR");
    csgi_app *fallback = NULL;
    for (size_t i = 0; i < r->count; i++) {
        if (addr && strcmp(r->addr[i], addr) == 0)
            return csgi_app_call(r->app[i], environ, start_response);
        if (strcmp(r->addr[i], "0.0.0.0") == 0)
            fallback = r->app[i];
    }
    return fallback ? csgi_app_call(fallback, environ, start_response) : NULL;
}

static void remote_addr_destroy(void *state)
{
    remote_addr *r = state;
    for (size_t i = 0; i < r->count; i++) {
        free(r->addr[i]);
        csgi_app_free(r->app[i]);
    }
    free(r);
}

static const csgi_app_type remote_addr_type = {"remote_addr", remote_addr_call,
                                               remote_addr_destroy};

static int remote_addr_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                               const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    remote_addr *r = calloc(1, sizeof(*r));
    ck_assert_ptr_nonnull(r);
    const char *name = NULL, *value = NULL;
    for (size_t i = 0; csgi_conf_entry(local_conf, i, &name, &value); i++) {
        if (strncmp(name, "app.", 4) != 0)
            continue;
        char addr_key[64];
        snprintf(addr_key, sizeof(addr_key), "addr.%s", name + 4);
        const char *addr = csgi_conf_get(local_conf, addr_key);
        ck_assert_ptr_nonnull(addr);
        ck_assert_uint_lt(r->count, MAX_ROUTES);
        int rc = csgi_loader_get_app(&r->app[r->count], loader, value, error);
        if (rc != 0) {
            remote_addr_destroy(r);
            return rc;
        }
        r->addr[r->count++] = strdup(addr);
    }
    return csgi_app_new(out, &remote_addr_type, r);
}

/* A factory that fails with a bare message. */
static int failing_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                           const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)out;
    snprintf(error->text, sizeof(error->text), "boom");
    return CSGI_EINVAL;
}

/* The typed conf helpers, called from a factory (confs exist only there). */
static struct {
    int flag, flag2, missing_flag, bad_flag_rc;
    long long n, missing_n;
    int bad_n_rc, big_n_rc;
    size_t item_count, missing_count;
    char items[4][32];
    char bad_flag_message[1024];
    char bad_n_message[1024];
} typed;

static int typed_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    csgi_load_error e;
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(csgi_conf_asbool(local_conf, "flag", 0, &typed.flag, &e), 0);
    ck_assert_int_eq(csgi_conf_asbool(local_conf, "flag2", 1, &typed.flag2, &e), 0);
    ck_assert_int_eq(csgi_conf_asbool(local_conf, "nope", 1, &typed.missing_flag, &e), 0);
    int dummy = 0;
    typed.bad_flag_rc = csgi_conf_asbool(local_conf, "bad_flag", 0, &dummy, &e);
    csgi_load_error_format(&e, typed.bad_flag_message, sizeof(typed.bad_flag_message));
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(csgi_conf_asint(local_conf, "n", 0, &typed.n, &e), 0);
    ck_assert_int_eq(csgi_conf_asint(local_conf, "nope", 42, &typed.missing_n, &e), 0);
    long long ignored = 0;
    typed.bad_n_rc = csgi_conf_asint(local_conf, "bad_n", 0, &ignored, &e);
    csgi_load_error_format(&e, typed.bad_n_message, sizeof(typed.bad_n_message));
    memset(&e, 0, sizeof(e));
    typed.big_n_rc = csgi_conf_asint(local_conf, "big_n", 0, &ignored, &e);
    const char *const *items = NULL;
    int rc = csgi_conf_aslist(local_conf, "items", &items, &typed.item_count, error);
    if (rc != 0)
        return rc; /* out of memory */
    for (size_t i = 0; i < typed.item_count && i < 4; i++)
        snprintf(typed.items[i], sizeof(typed.items[i]), "%s", items[i]);
    ck_assert_int_eq(csgi_conf_aslist(local_conf, "nope", &items, &typed.missing_count, error), 0);
    ck_assert_ptr_null(items);
    return make_fake(&basic_type, "typed", "200 OK", global_conf, local_conf, out);
}

/* A composite that wraps its `app` with its `filter`, both by name. */
static int filtered_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                            const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    csgi_app *inner = NULL;
    int rc = csgi_loader_get_app(&inner, loader, csgi_conf_get(local_conf, "app"), error);
    if (rc != 0)
        return rc;
    return csgi_loader_get_filter(out, loader, csgi_conf_get(local_conf, "filter"), inner, error);
}

static csgi_loader *new_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:FakeApp#basic_app", CSGI_FACTORY_APP,
                                              basic_app_factory),
                     0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:FakeApp#other", CSGI_FACTORY_APP, other_factory), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:FakeApp#configed", CSGI_FACTORY_APP,
                                              configed_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:FakeApp#remote_addr",
                                              CSGI_FACTORY_COMPOSITE, remote_addr_factory),
                     0);
    ck_assert_int_eq(
        csgi_loader_register_filter(loader, "egg:FakeApp#caps", CSGI_FACTORY_FILTER, caps_factory),
        0);
    ck_assert_int_eq(csgi_loader_register_filter(loader, "egg:FakeApp#caps2",
                                                 CSGI_FACTORY_FILTER_APP, caps_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "call:fakeapp.apps:make_basic_app",
                                              CSGI_FACTORY_APP, basic_app_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "call:fakeapp.apps:make_basic_app2",
                                              CSGI_FACTORY_APP, other_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "call:fakeapp.apps:make_remote_addr",
                                              CSGI_FACTORY_COMPOSITE, remote_addr_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "fakeapp.configapps:SimpleApp.make_app",
                                              CSGI_FACTORY_APP, configed_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:FakeApp#not_found", CSGI_FACTORY_APP,
                                              not_found_factory),
                     0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#fail", CSGI_FACTORY_APP, failing_factory), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#typed", CSGI_FACTORY_APP, typed_factory), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:Test#filtered", CSGI_FACTORY_COMPOSITE,
                                              filtered_factory),
                     0);
    return loader;
}

/* GET path from remote, through app; the response in *out. */
static void run(csgi_app *app, const char *path, const char *remote, test_client_response *out)
{
    test_run_request(app, path, remote, NULL, out);
}

/* Run and check status code and body. */
static void expect(csgi_app *app, const char *path, const char *remote, const char *status,
                   const char *body)
{
    test_client_response r;
    run(app, path, remote, &r);
    ck_assert_str_eq(r.status, status);
    if (body)
        ck_assert_str_eq(r.body, body);
}

static const char *const *pairs_find(char **pairs, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(pairs[2 * i], name) == 0)
            return (const char *const *)&pairs[2 * i + 1];
    return NULL;
}

static void expect_pair(char **pairs, size_t count, const char *name, const char *value)
{
    const char *const *found = pairs_find(pairs, count, name);
    ck_assert_msg(found != NULL, "no conf key '%s'", name);
    ck_assert_str_eq(*found, value);
}

/* ---- samples ------------------------------------------------------------------------- */

START_TEST(basic_app_names)
{
    csgi_loader *loader = new_loader();
    const char *uris[] = {pd_uri("basic_app.ini", NULL), pd_uri("basic_app.ini", "main")};
    for (size_t i = 0; i < 2; i++) {
        csgi_app *app = test_load(loader, uris[i]);
        ck_assert_str_eq(csgi_app_name(app), "basic_app");
        expect(app, "/", NULL, "200 OK", "This is basic app");
        csgi_app_free(app);
    }
    char config[PATH_MAX + 256];
    snprintf(config, sizeof(config), "config:%s", pd_uri("basic_app.ini", "other"));
    csgi_app *other = test_load(loader, config);
    expect(other, "/", NULL, "200 OK", "This is another app");
    csgi_app_free(other);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(basic_app_remote_addr)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = test_load(loader, pd_uri("basic_app.ini", "remote_addr"));
    ck_assert_str_eq(csgi_app_name(app), "remote_addr");
    expect(app, "/", "127.0.0.1", "200 OK", "This is basic app");
    expect(app, "/", "192.0.2.9", "200 OK", "This is another app");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(test_func_call_references)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = test_load(loader, pd_uri("test_func.ini", NULL));
    expect(app, "/", NULL, "200 OK", "This is basic app");
    csgi_app_free(app);
    app = test_load(loader, pd_uri("test_func.ini", "other"));
    expect(app, "/", NULL, "200 OK", "This is another app");
    csgi_app_free(app);
    app = test_load(loader, pd_uri("test_func.ini", "remote_addr"));
    expect(app, "/", "127.0.0.1", "200 OK", "This is basic app");
    expect(app, "/", "10.9.9.9", "200 OK", "This is another app");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(test_filter_sections)
{
    csgi_loader *loader = new_loader();
    static const struct {
        const char *name;
        const char *body;
    } cases[] = {
        {"piped", "THIS IS BASIC APP"},  {"filt", "this is basic app"},
        {"piped2", "THIS IS BASIC APP"}, {"filt2", "this is basic app"},
        {"inv", "THIS IS BASIC APP"},    {"normal", "This is basic app"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_app *app = test_load(loader, pd_uri("test_filter.ini", cases[i].name));
        expect(app, "/", NULL, "200 OK", cases[i].body);
        if (strcmp(cases[i].name, "normal") != 0) {
            ck_assert_str_eq(csgi_app_name(app), "caps");
            caps_filter *caps = csgi_app_state(app);
            ck_assert_str_eq(csgi_app_name(caps->next), "basic_app");
        }
        csgi_app_free(app);
    }
    char message[2048];
    int rc = test_load_fails(loader, pd_uri("test_filter.ini", "piped3"), message, sizeof(message));
    ck_assert_int_eq(rc, CSGI_EPARSE);
    ck_assert_ptr_nonnull(strstr(message, "extra_config_option"));
    ck_assert_ptr_nonnull(strstr(message, "[pipeline:piped3]"));
    csgi_loader_free(loader);
}
END_TEST

START_TEST(test_filter_with_chain)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = test_load(loader, pd_uri("test_filter_with.ini", NULL));
    expect(app, "/", NULL, "200 OK", "THIS IS BASIC APP");
    /* filter2(filter1(basic_app)) */
    ck_assert_str_eq(csgi_app_name(app), "caps");
    caps_filter *outer = csgi_app_state(app);
    ck_assert_str_eq(csgi_app_name(outer->next), "caps");
    caps_filter *inner = csgi_app_state(outer->next);
    ck_assert_str_eq(csgi_app_name(inner->next), "basic_app");
    fake_app *fake = csgi_app_state(inner->next);
    ck_assert_uint_eq(fake->local_count, 1);
    expect_pair(fake->local, fake->local_count, "example", "test");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

/* The conf a configed app kept. */
static fake_app *configed(csgi_app *app)
{
    ck_assert_str_eq(csgi_app_name(app), "configed");
    return csgi_app_state(app);
}

static void expect_here(const fake_app *fake)
{
    char file[PATH_MAX + 64];
    snprintf(file, sizeof(file), "%s/test_config.ini", pd_dir());
    expect_pair(fake->global, fake->global_count, "here", pd_dir());
    expect_pair(fake->global, fake->global_count, "__file__", file);
    expect_pair(fake->global, fake->global_count, "basepath", pd_dir());
}

START_TEST(config_test1_test2_test3)
{
    csgi_loader *loader = new_loader();
    char apppath[PATH_MAX + 16];
    snprintf(apppath, sizeof(apppath), "%s/app", pd_dir());

    csgi_app *test1 = test_load(loader, pd_uri("test_config.ini", "test1"));
    fake_app *c = configed(test1);
    ck_assert_uint_eq(c->local_count, 3);
    expect_pair(c->local, c->local_count, "setting1", "foo");
    expect_pair(c->local, c->local_count, "setting2", "bar");
    expect_pair(c->local, c->local_count, "apppath", apppath);
    ck_assert_uint_eq(c->global_count, 5);
    expect_pair(c->global, c->global_count, "def1", "a");
    expect_pair(c->global, c->global_count, "def2", "b");
    expect_here(c);
    expect(test1, "/", NULL, "200 OK", "configed");

    csgi_app *test2 = test_load(loader, pd_uri("test_config.ini", "test2"));
    c = configed(test2);
    ck_assert_uint_eq(c->local_count, 1);
    expect_pair(c->local, c->local_count, "local conf", "something");
    ck_assert_uint_eq(c->global_count, 6);
    expect_pair(c->global, c->global_count, "def1", "test2");
    expect_pair(c->global, c->global_count, "def2", "b");
    expect_pair(c->global, c->global_count, "another", "TEST");
    expect_here(c);

    /* test1 again: unchanged by test2 */
    csgi_app *again = test_load(loader, pd_uri("test_config.ini", "test1"));
    c = configed(again);
    expect_pair(c->global, c->global_count, "def1", "a");
    ck_assert_ptr_null(pairs_find(c->global, c->global_count, "another"));
    csgi_app_free(again);

    csgi_app *test3 = test_load(loader, pd_uri("test_config.ini", "test3"));
    c = configed(test3);
    ck_assert_uint_eq(c->local_count, 2);
    expect_pair(c->local, c->local_count, "local conf", "something");
    expect_pair(c->local, c->local_count, "another", "something more\nacross several\nlines");
    expect_pair(c->global, c->global_count, "def1", "test3");
    expect_pair(c->global, c->global_count, "def2", "b");
    expect_pair(c->global, c->global_count, "another", "TEST");
    expect_here(c);

    csgi_app_free(test1);
    csgi_app_free(test2);
    csgi_app_free(test3);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(config_foreign_and_get)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = test_load(loader, pd_uri("test_config.ini", "test_foreign_config"));
    fake_app *c = configed(app);
    ck_assert_uint_eq(c->local_count, 2);
    expect_pair(c->local, c->local_count, "another", "FOO");
    expect_pair(c->local, c->local_count, "bob", "your uncle");
    expect_pair(c->global, c->global_count, "def1", "a");
    expect_pair(c->global, c->global_count, "def2", "b");
    expect_pair(c->global, c->global_count, "def3", "c");
    expect_pair(c->global, c->global_count, "glob", "override");
    expect_here(c);
    csgi_app_free(app);

    app = test_load(loader, pd_uri("test_config.ini", "test_get"));
    c = configed(app);
    ck_assert_uint_eq(c->local_count, 2);
    expect_pair(c->local, c->local_count, "def1", "a");
    expect_pair(c->local, c->local_count, "foo", "TEST");
    expect_pair(c->global, c->global_count, "def1", "a");
    expect_pair(c->global, c->global_count, "def2", "TEST");
    expect_here(c);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(config_caller_globals)
{
    csgi_loader *loader = new_loader();
    ck_assert_int_eq(csgi_loader_set_global(loader, "def2", "TEST DEF 2"), 0);
    ck_assert_int_eq(csgi_loader_set_global(loader, "inherit", "bazbar"), 0);
    ck_assert_int_eq(csgi_loader_set_global(loader, "", "x"), CSGI_EINVAL);
    csgi_app *app = test_load(loader, pd_uri("test_config.ini", "test_global_conf"));
    fake_app *c = configed(app);
    ck_assert_uint_eq(c->local_count, 1);
    expect_pair(c->local, c->local_count, "test_interp", "this:bazbar");
    expect_pair(c->global, c->global_count, "def2", "TEST DEF 2");
    expect_pair(c->global, c->global_count, "inherit", "bazbar");
    expect_pair(c->global, c->global_count, "def1", "a");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(config_test_error)
{
    csgi_loader *loader = new_loader();
    char message[2048];
    int rc = test_load_fails(loader, pd_uri("test_error.ini", NULL), message, sizeof(message));
    ck_assert_int_eq(rc, CSGI_EPARSE);
    ck_assert_ptr_nonnull(strstr(message, "test_error.ini:8: [app:main] setting2: "));
    ck_assert_ptr_nonnull(strstr(message, "does_not_exist"));
    csgi_loader_free(loader);
}
END_TEST

START_TEST(executable_main)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = test_load(loader, pd_uri("executable.ini", NULL));
    expect(app, "/", NULL, "200 OK", "This is basic app");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

/* ---- built-ins ------------------------------------------------------------------------- */

static const char urlmap_ini[] = "[composite:main]\n"
                                 "use = egg:Paste#urlmap\n"
                                 "/ = home\n"
                                 "/v2 = caps_home\n"
                                 "domain other.example.com / = other\n"
                                 "\n"
                                 "[composite:strict]\n"
                                 "use = egg:csgi#urlmap\n"
                                 "/only = home\n"
                                 "not_found_app = missing\n"
                                 "debug = false\n"
                                 "\n"
                                 "[composite:plain]\n"
                                 "use = egg:csgi#urlmap\n"
                                 "/only = home\n"
                                 "\n"
                                 "[composite:cascade]\n"
                                 "use = egg:Paste#cascade\n"
                                 "app2 = home\n"
                                 "app1 = missing\n"
                                 "\n"
                                 "[composite:cascade_caught]\n"
                                 "use = egg:csgi#cascade\n"
                                 "app1 = missing\n"
                                 "app2 = other\n"
                                 "catch = 500\n"
                                 "\n"
                                 "[composite:bad_cascade]\n"
                                 "use = egg:csgi#cascade\n"
                                 "first = home\n"
                                 "\n"
                                 "[composite:bad_debug]\n"
                                 "use = egg:csgi#urlmap\n"
                                 "debug = maybe\n"
                                 "\n"
                                 "[composite:bad_route]\n"
                                 "use = egg:csgi#urlmap\n"
                                 "/x = nowhere\n"
                                 "\n"
                                 "[app:home]\n"
                                 "use = egg:FakeApp#basic_app\n"
                                 "\n"
                                 "[app:other]\n"
                                 "use = egg:FakeApp#other\n"
                                 "\n"
                                 "[app:missing]\n"
                                 "use = egg:FakeApp#not_found\n"
                                 "\n"
                                 "[pipeline:caps_home]\n"
                                 "pipeline = egg:FakeApp#caps home\n";

START_TEST(urlmap_builtin)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("urlmap.ini", urlmap_ini);
    char uri[PATH_MAX + 64];
    csgi_app *app = test_load(loader, path);
    expect(app, "/", NULL, "200 OK", "This is basic app");
    expect(app, "/v2/x", NULL, "200 OK", "THIS IS BASIC APP");
    expect(app, "/v21", NULL, "200 OK", "This is basic app");
    csgi_app_free(app);

    snprintf(uri, sizeof(uri), "%s#strict", path);
    app = test_load(loader, uri);
    expect(app, "/only/x", NULL, "200 OK", "This is basic app");
    expect(app, "/elsewhere", NULL, "404 Not Found", "nothing here");
    csgi_app_free(app);

    snprintf(uri, sizeof(uri), "%s#plain", path);
    app = test_load(loader, uri);
    test_client_response r;
    run(app, "/elsewhere", NULL, &r);
    ck_assert_int_eq(strncmp(r.status, "404", 3), 0);
    csgi_app_free(app);

    char message[2048];
    snprintf(uri, sizeof(uri), "%s#bad_debug", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
    ck_assert_ptr_nonnull(strstr(message, "urlmap.ini:34: [composite:bad_debug] debug: "));
    ck_assert_ptr_nonnull(strstr(message, "maybe"));

    snprintf(uri, sizeof(uri), "%s#bad_route", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(message, "nowhere"));
    csgi_loader_free(loader);
}
END_TEST

START_TEST(cascade_builtin)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("cascade.ini", urlmap_ini);
    char uri[PATH_MAX + 64];
    snprintf(uri, sizeof(uri), "%s#cascade", path);
    csgi_app *app = test_load(loader, uri);
    expect(app, "/", NULL, "200 OK", "This is basic app");
    csgi_app_free(app);

    /* catch = 500: the 404 of app1 is the answer */
    snprintf(uri, sizeof(uri), "%s#cascade_caught", path);
    app = test_load(loader, uri);
    expect(app, "/", NULL, "404 Not Found", "nothing here");
    csgi_app_free(app);

    char message[2048];
    snprintf(uri, sizeof(uri), "%s#bad_cascade", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
    ck_assert_ptr_nonnull(strstr(message, "[composite:bad_cascade] first: "));
    csgi_loader_free(loader);
}
END_TEST

/* ---- errors and rules ------------------------------------------------------------------ */

START_TEST(unknown_factory_names_place)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("unknown.ini", "[app:main]\n"
                                                      "use = egg:Nope#x\n"
                                                      "\n"
                                                      "[pipeline:piped]\n"
                                                      "pipeline = egg:Nope#filter main\n"
                                                      "\n"
                                                      "[app:direct]\n"
                                                      "paste.app_factory = nope.module:factory\n");
    char message[2048], expected[PATH_MAX + 256], uri[PATH_MAX + 64];
    ck_assert_int_eq(test_load_fails(loader, path, message, sizeof(message)), CSGI_ENOTFOUND);
    snprintf(expected, sizeof(expected),
             "%s:2: [app:main] use: unknown factory 'egg:Nope#x' (an app factory was expected)",
             path);
    /* then the shared-object paths tried */
    ck_assert_int_eq(strncmp(message, expected, strlen(expected)), 0);

    /* the pipeline's filter is reached after its app: it is main that fails */
    snprintf(uri, sizeof(uri), "%s#direct", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_ENOTFOUND);
    snprintf(expected, sizeof(expected),
             "%s:8: [app:direct] paste.app_factory: unknown factory 'nope.module:factory' (an "
             "app factory was expected)",
             path);
    /* then the shared-object paths tried */
    ck_assert_int_eq(strncmp(message, expected, strlen(expected)), 0);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(unknown_filter_in_pipeline)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("unknown_filter.ini", "[pipeline:main]\n"
                                                             "pipeline = egg:Nope#filter home\n"
                                                             "\n"
                                                             "[app:home]\n"
                                                             "use = egg:FakeApp#basic_app\n");
    char message[2048];
    ck_assert_int_eq(test_load_fails(loader, path, message, sizeof(message)), CSGI_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(message, ":2: [pipeline:main] pipeline: unknown factory "
                                          "'egg:Nope#filter' (a filter factory was expected)"));
    csgi_loader_free(loader);
}
END_TEST

START_TEST(lazy_building)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("lazy.ini", "[app:broken]\n"
                                                   "use = egg:NotInstalled#thing\n"
                                                   "\n"
                                                   "[filter:unused]\n"
                                                   "use = egg:NotInstalled#filter\n"
                                                   "\n"
                                                   "[app:main]\n"
                                                   "use = egg:FakeApp#basic_app\n");
    csgi_app *app = test_load(loader, path);
    expect(app, "/", NULL, "200 OK", "This is basic app");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(filter_with_composes)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("chain.ini", "[app:main]\n"
                                                    "use = egg:FakeApp#basic_app\n"
                                                    "filter-with = lower\n"
                                                    "\n"
                                                    "[filter:lower]\n"
                                                    "use = egg:FakeApp#caps\n"
                                                    "method_to_call = lower\n"
                                                    "filter-with = upper\n"
                                                    "\n"
                                                    "[filter:upper]\n"
                                                    "use = egg:FakeApp#caps\n"
                                                    "\n"
                                                    "[filter-app:fa]\n"
                                                    "use = egg:FakeApp#caps\n"
                                                    "next = main\n"
                                                    "method_to_call = lower\n");
    /* upper(lower(basic)): upper wins */
    csgi_app *app = test_load(loader, path);
    expect(app, "/", NULL, "200 OK", "THIS IS BASIC APP");
    caps_filter *outer = csgi_app_state(app);
    ck_assert_int_eq(outer->lower, 0);
    caps_filter *inner = csgi_app_state(outer->next);
    ck_assert_int_eq(inner->lower, 1);
    csgi_app_free(app);

    char uri[PATH_MAX + 64];
    snprintf(uri, sizeof(uri), "%s#fa", path);
    app = test_load(loader, uri);
    expect(app, "/", NULL, "200 OK", "this is basic app");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(factory_error_located)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("fail.ini", "[composite:main]\n"
                                                   "use = egg:csgi#urlmap\n"
                                                   "/ = good\n"
                                                   "/bad = bad\n"
                                                   "\n"
                                                   "[app:good]\n"
                                                   "use = egg:FakeApp#basic_app\n"
                                                   "\n"
                                                   "[app:bad]\n"
                                                   "use = egg:Test#fail\n");
    char message[2048], expected[PATH_MAX + 256], uri[PATH_MAX + 64];
    snprintf(uri, sizeof(uri), "%s#bad", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
    snprintf(expected, sizeof(expected), "%s:10: [app:bad] boom", path);
    ck_assert_str_eq(message, expected);
    /* inside a composite: the good app built first is released (ASan) */
    ck_assert_int_eq(test_load_fails(loader, path, message, sizeof(message)), CSGI_EINVAL);
    ck_assert_str_eq(message, expected);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(typed_conf)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("typed.ini", "[app:main]\n"
                                                    "use = egg:Test#typed\n"
                                                    "flag = Yes\n"
                                                    "flag2 = off\n"
                                                    "bad_flag = maybe\n"
                                                    "n = -12\n"
                                                    "bad_n = 12x\n"
                                                    "big_n = 99999999999999999999999\n"
                                                    "items = a  b\n"
                                                    "   c\n");
    csgi_app *app = test_load(loader, path);
    ck_assert_int_eq(typed.flag, 1);
    ck_assert_int_eq(typed.flag2, 0);
    ck_assert_int_eq(typed.missing_flag, 1);
    ck_assert_int_eq(typed.bad_flag_rc, CSGI_EINVAL);
    char expected[PATH_MAX + 128];
    snprintf(expected, sizeof(expected), "%s:5: [app:main] bad_flag: ", path);
    ck_assert_msg(strncmp(typed.bad_flag_message, expected, strlen(expected)) == 0, "%s",
                  typed.bad_flag_message);
    ck_assert_int_eq(typed.n, -12);
    ck_assert_int_eq(typed.missing_n, 42);
    ck_assert_int_eq(typed.bad_n_rc, CSGI_EINVAL);
    snprintf(expected, sizeof(expected), "%s:7: [app:main] bad_n: ", path);
    ck_assert_msg(strncmp(typed.bad_n_message, expected, strlen(expected)) == 0, "%s",
                  typed.bad_n_message);
    ck_assert_int_eq(typed.big_n_rc, CSGI_EINVAL);
    ck_assert_uint_eq(typed.item_count, 3);
    ck_assert_str_eq(typed.items[0], "a");
    ck_assert_str_eq(typed.items[1], "b");
    ck_assert_str_eq(typed.items[2], "c");
    ck_assert_uint_eq(typed.missing_count, 0);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(registration_rules)
{
    csgi_loader *loader = new_loader();
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:FakeApp#basic_app", CSGI_FACTORY_APP,
                                              basic_app_factory),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_register_app(loader, "x", CSGI_FACTORY_FILTER, basic_app_factory),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_register_filter(loader, "x", CSGI_FACTORY_APP, caps_factory),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_register_app(loader, "", CSGI_FACTORY_APP, basic_app_factory),
                     CSGI_EINVAL);
    /* "egg:Short" is "egg:Short#main", both ways */
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:Short", CSGI_FACTORY_APP, other_factory),
                     0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Short#main", CSGI_FACTORY_APP, other_factory),
        CSGI_EINVAL);
    const char *path = test_write_file("short.ini", "[app:main]\n"
                                                    "use = egg:Short#main\n"
                                                    "\n"
                                                    "[app:bare]\n"
                                                    "use = egg:Short\n");
    csgi_app *app = test_load(loader, path);
    expect(app, "/", NULL, "200 OK", "This is another app");
    csgi_app_free(app);
    char uri[PATH_MAX + 64];
    snprintf(uri, sizeof(uri), "%s#bare", path);
    app = test_load(loader, uri);
    csgi_app_free(app);

    /* outside a composite factory */
    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    ck_assert_int_eq(csgi_loader_get_app(&app, loader, "main", &error), CSGI_ESTATE);
    ck_assert_ptr_null(app);
    /* missing file and section */
    char message[2048];
    snprintf(uri, sizeof(uri), "%s#absent", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_ENOTFOUND);
    ck_assert_int_eq(test_load_fails(loader, "/nonexistent/x.ini", message, sizeof(message)),
                     CSGI_ENOTFOUND);
    ck_assert_int_eq(csgi_loader_load_app(&app, loader, NULL, NULL), CSGI_EINVAL);
    csgi_loader_free(NULL);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(error_format)
{
    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    snprintf(error.file, sizeof(error.file), "app.ini");
    error.line = 12;
    snprintf(error.section, sizeof(error.section), "filter:auth");
    snprintf(error.key, sizeof(error.key), "token");
    snprintf(error.text, sizeof(error.text), "missing");
    char buf[256];
    ck_assert_uint_eq(csgi_load_error_format(&error, buf, sizeof(buf)),
                      strlen("app.ini:12: [filter:auth] token: missing"));
    ck_assert_str_eq(buf, "app.ini:12: [filter:auth] token: missing");
    char small[8];
    csgi_load_error_format(&error, small, sizeof(small));
    ck_assert_str_eq(small, "app.ini");
    memset(&error, 0, sizeof(error));
    snprintf(error.text, sizeof(error.text), "only text");
    csgi_load_error_format(&error, buf, sizeof(buf));
    ck_assert_str_eq(buf, "only text");
}
END_TEST

START_TEST(composite_cycles_and_nesting)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("nested.ini", "[composite:main]\n"
                                                     "use = egg:csgi#urlmap\n"
                                                     "/api = inner\n"
                                                     "/ = egg:FakeApp#other\n"
                                                     "\n"
                                                     "[composite:inner]\n"
                                                     "use = egg:csgi#urlmap\n"
                                                     "/v1 = egg:FakeApp#basic_app\n"
                                                     "\n"
                                                     "[composite:loop]\n"
                                                     "use = egg:csgi#urlmap\n"
                                                     "/ = loop\n");
    csgi_app *app = test_load(loader, path);
    expect(app, "/api/v1/x", NULL, "200 OK", "This is basic app");
    expect(app, "/elsewhere", NULL, "200 OK", "This is another app");
    csgi_app_free(app);
    char uri[PATH_MAX + 64], message[2048];
    snprintf(uri, sizeof(uri), "%s#loop", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EPARSE);
    ck_assert_ptr_nonnull(strstr(message, "[composite:loop]"));
    csgi_loader_free(loader);
}
END_TEST

/* Fail the Nth allocation for every N: each failure is ENOMEM, nothing leaks. */
START_TEST(out_of_memory_every_allocation)
{
    const char *path =
        test_write_file("oom.ini", "[composite:main]\n"
                                   "use = egg:Paste#urlmap\n"
                                   "/ = piped\n"
                                   "/c = casc\n"
                                   "not_found_app = egg:FakeApp#other\n"
                                   "\n"
                                   "[composite:casc]\n"
                                   "use = egg:Paste#cascade\n"
                                   "app1 = egg:FakeApp#not_found\n"
                                   "app2 = fa\n"
                                   "catch = 404 500\n"
                                   "\n"
                                   "[pipeline:piped]\n"
                                   "pipeline = egg:FakeApp#caps egg:FakeApp#caps2 home\n"
                                   "\n"
                                   "[app:home]\n"
                                   "use = egg:Test#typed\n"
                                   "filter-with = f\n"
                                   "items = a b c\n"
                                   "flag = on\n"
                                   "n = 3\n"
                                   "\n"
                                   "[filter:f]\n"
                                   "use = egg:FakeApp#caps\n"
                                   "\n"
                                   "[filter-app:fa]\n"
                                   "use = egg:FakeApp#caps\n"
                                   "next = home\n");
    ck_assert_int_eq(test_alloc_install(), 0);
    int done = 0;
    long succeeded_at = -1;
    for (long budget = 0; budget < 2000 && !done; budget++) {
        test_alloc_fail_never();
        csgi_loader *loader = new_loader();
        test_alloc_fail_after(budget);
        csgi_app *app = NULL;
        csgi_load_error error;
        int rc = csgi_loader_load_app(&app, loader, path, &error);
        test_alloc_fail_never();
        if (rc == 0) {
            done = 1;
            succeeded_at = budget;
            ck_assert_ptr_nonnull(app);
        } else {
            ck_assert_msg(rc == CSGI_ENOMEM, "budget %ld: %s (%s)", budget, error.text,
                          csgi_err_name(rc));
            ck_assert_ptr_null(app);
            ck_assert(error.text[0] != '\0');
        }
        csgi_app_free(app);
        csgi_loader_free(loader);
    }
    ck_assert_int_eq(done, 1);
    /* every allocation of the whole graph was made to fail once */
    ck_assert_int_gt(succeeded_at, 20);
}
END_TEST

/* `use` of a pipeline builds the pipeline (PasteDeploy keeps its type). */
START_TEST(use_of_a_pipeline)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("use_pipeline.ini", "[app:main]\n"
                                                           "use = piped\n"
                                                           "\n"
                                                           "[app:extra]\n"
                                                           "use = piped\n"
                                                           "stray = 1\n"
                                                           "\n"
                                                           "[pipeline:piped]\n"
                                                           "pipeline = egg:FakeApp#caps home\n"
                                                           "\n"
                                                           "[app:home]\n"
                                                           "use = EGG:FakeApp#basic_app\n");
    csgi_app *app = test_load(loader, path);
    expect(app, "/", NULL, "200 OK", "THIS IS BASIC APP");
    csgi_app_free(app);
    char uri[PATH_MAX + 64], message[2048];
    snprintf(uri, sizeof(uri), "%s#extra", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EPARSE);
    ck_assert_ptr_nonnull(strstr(message, "use_pipeline.ini:6: [app:extra] stray: a section "
                                          "using a pipeline holds only 'use' (and set/get)"));
    csgi_loader_free(loader);
}
END_TEST

static int counted_calls;

static int counted_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                           const csgi_conf *local_conf, csgi_load_error *error)
{
    counted_calls++;
    return basic_app_factory(out, loader, global_conf, local_conf, error);
}

/* Every name of a pipeline is resolved before any factory runs. */
START_TEST(pipeline_names_before_factories)
{
    csgi_loader *loader = new_loader();
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#counted", CSGI_FACTORY_APP, counted_factory), 0);
    const char *path = test_write_file("missing_filter.ini", "[pipeline:main]\n"
                                                             "pipeline = auth nosuch home\n"
                                                             "\n"
                                                             "[filter:auth]\n"
                                                             "use = egg:FakeApp#caps\n"
                                                             "\n"
                                                             "[app:home]\n"
                                                             "use = egg:Test#counted\n");
    char message[2048];
    counted_calls = 0;
    ck_assert_int_eq(test_load_fails(loader, path, message, sizeof(message)), CSGI_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(message, "missing_filter.ini:2: [pipeline:main] pipeline: no "
                                          "section 'nosuch' (prefixed by 'filter')"));
    ck_assert_int_eq(counted_calls, 0);
    csgi_loader_free(loader);
}
END_TEST

static const char server_ini[] = "[app:main]\n"
                                 "use = egg:FakeApp#basic_app\n"
                                 "\n"
                                 "[server:main]\n"
                                 "use = egg:csgi#http\n"
                                 "port = 8081\n"
                                 "grace_timeout = 3\n"
                                 "\n"
                                 "[server:typo]\n"
                                 "use = egg:csgi#http\n"
                                 "worker = 4\n"
                                 "\n"
                                 "[server:bad_port]\n"
                                 "use = egg:Paste#http\n"
                                 "port = 70000\n"
                                 "\n"
                                 "[server:unknown]\n"
                                 "use = egg:Nope#http\n"
                                 "\n"
                                 "[server:an_app]\n"
                                 "use = egg:FakeApp#basic_app\n"
                                 "\n"
                                 "[server:rates]\n"
                                 "use = egg:csgi#http\n"
                                 "body_min_rate = 0\n"
                                 "\n"
                                 "[server:bad_rate]\n"
                                 "use = egg:csgi#http\n"
                                 "body_min_rate = slow\n"
                                 "\n"
                                 "[server:negative_rate]\n"
                                 "use = egg:csgi#http\n"
                                 "body_min_rate = -1\n"
                                 "\n"
                                 "[server:bad_backlog]\n"
                                 "use = egg:csgi#http\n"
                                 "backlog = 0\n"
                                 "\n"
                                 "[server:bad_mode]\n"
                                 "use = egg:csgi#http\n"
                                 "unix_mode = 0999\n"
                                 "\n"
                                 "[server:bad_owner]\n"
                                 "use = egg:csgi#http\n"
                                 "unix_owner = no-such-user-of-csgi\n"
                                 "\n"
                                 "[server:uwsgi_names]\n"
                                 "use = egg:csgi#http\n"
                                 "chmod_socket = 0660\n"
                                 "\n"
                                 "[server:listeners]\n"
                                 "use = egg:csgi#http\n"
                                 "backlog = 1024\n"
                                 "unix_mode = 660\n"
                                 "unix_owner = root\n"
                                 "unix_group = 0\n"
                                 "umask = 0\n"
                                 "pidfile = /run/csgi.pid\n"
                                 "chdir = /\n"
                                 "user = nobody\n"
                                 "group = nogroup\n"
                                 "\n"
                                 "[server:bad_user]\n"
                                 "use = egg:csgi#http\n"
                                 "user = no-such-user-of-csgi\n";

/* The server section checked without serving (csgi-serve --check). */
START_TEST(server_section_checked)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("servers.ini", server_ini);
    char uri[PATH_MAX + 64], message[2048];
    csgi_load_error error;
    ck_assert_int_eq(csgi_loader_has_server(loader, path, &error), 1);
    snprintf(uri, sizeof(uri), "%s#nosuch", path);
    ck_assert_int_eq(csgi_loader_has_server(loader, uri, &error), 0);
    ck_assert_int_eq(csgi_loader_has_server(loader, "/nonexistent/x.ini", &error), CSGI_ENOTFOUND);
    ck_assert_int_eq(csgi_loader_check_server(loader, path, &error), 0);
    snprintf(uri, sizeof(uri), "%s#rates", path);
    ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), 0);
    snprintf(uri, sizeof(uri), "%s#listeners", path);
    ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), 0);

    static const struct {
        const char *name;
        int rc;
        const char *text;
    } bad[] = {
        {"typo", CSGI_EINVAL,
         "servers.ini:11: [server:typo] worker: unknown key for egg:csgi#http (did you mean "
         "workers?"},
        {"bad_port", CSGI_EINVAL,
         "servers.ini:15: [server:bad_port] port: 70000 is out of range (0 to 65535)"},
        {"unknown", CSGI_ENOTFOUND,
         "servers.ini:18: [server:unknown] use: unknown factory 'egg:Nope#http'"},
        {"an_app", CSGI_EINVAL,
         "servers.ini:21: [server:an_app] use: 'egg:FakeApp#basic_app' "
         "is an app factory (a server runner was expected)"},
        {"bad_rate", CSGI_EINVAL, "servers.ini:29: [server:bad_rate] body_min_rate: "},
        {"negative_rate", CSGI_EINVAL,
         "servers.ini:33: [server:negative_rate] body_min_rate: -1 is out of range (0 to "},
        {"bad_backlog", CSGI_EINVAL,
         "servers.ini:37: [server:bad_backlog] backlog: 0 is out of range (1 to 65535)"},
        {"bad_mode", CSGI_EINVAL,
         "servers.ini:41: [server:bad_mode] unix_mode: '0999' is not an octal mode"},
        {"bad_owner", CSGI_EINVAL,
         "servers.ini:45: [server:bad_owner] unix_owner: no user 'no-such-user-of-csgi'"},
        {"bad_user", CSGI_EINVAL,
         "servers.ini:65: [server:bad_user] user: no user 'no-such-user-of-csgi' on this system"},
        {"uwsgi_names", CSGI_EINVAL,
         "servers.ini:49: [server:uwsgi_names] chmod_socket: unknown key for egg:csgi#http (it "
         "is unix_mode)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(uri, sizeof(uri), "%s#%s", path, bad[i].name);
        ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), bad[i].rc);
        csgi_load_error_format(&error, message, sizeof(message));
        ck_assert_msg(strstr(message, bad[i].text) != NULL, "%s", message);
        /* serving checks the same, before it would listen */
        csgi_app *app = test_load(loader, path);
        ck_assert_int_eq(csgi_loader_serve(loader, uri, app, &error), bad[i].rc);
        csgi_load_error_format(&error, message, sizeof(message));
        ck_assert_msg(strstr(message, bad[i].text) != NULL, "%s", message);
    }
    csgi_loader_free(loader);
}
END_TEST

/* A runner of the host's: what it was last given. */
static int own_runner_calls;
static const char *own_runner_port;

static int own_runner(csgi_loader *loader, const csgi_conf *global_conf,
                      const csgi_conf *local_conf, csgi_app *app, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)error;
    own_runner_calls++;
    own_runner_port = csgi_conf_get(local_conf, "port");
    csgi_app_free(app);
    return 0;
}

/* csgi_loader_serve_app builds the application and hands it to a runner
   that is not csgi's own, as csgi_loader_serve does; server options meant
   for egg:csgi#http are an error there, and csgi's own server checks them
   as it checks its section's keys. */
START_TEST(serve_app_and_server_options)
{
    const char *path = test_write_file("own_runner.ini", "[app:main]\n"
                                                         "use = egg:FakeApp#basic_app\n"
                                                         "\n"
                                                         "[server:main]\n"
                                                         "use = egg:Own#runner\n"
                                                         "port = 4321\n"
                                                         "\n"
                                                         "[server:builtin]\n"
                                                         "use = egg:csgi#http\n");
    char uri[PATH_MAX + 64], message[2048];
    csgi_load_error error;
    csgi_loader *loader = new_loader();
    ck_assert_int_eq(csgi_loader_register_server(loader, "egg:Own#runner", own_runner), 0);
    own_runner_calls = 0;
    ck_assert_int_eq(csgi_loader_serve_app(loader, path, path, &error), 0);
    ck_assert_int_eq(own_runner_calls, 1);
    ck_assert_str_eq(own_runner_port, "4321");

    ck_assert_int_eq(csgi_loader_set_server_option(loader, "workers", "2"), 0);
    ck_assert_int_eq(csgi_loader_serve_app(loader, path, path, &error), CSGI_EINVAL);
    ck_assert_int_eq(own_runner_calls, 1);
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_msg(strstr(message, "own_runner.ini:4: [server:main] workers: given for "
                                  "egg:csgi#http, but this server has another runner"),
                  "%s", message);

    snprintf(uri, sizeof(uri), "%s#builtin", path);
    ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), 0);
    ck_assert_int_eq(csgi_loader_set_server_option(loader, "workers", "many"), 0);
    ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), CSGI_EINVAL);
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_msg(strstr(message, "workers: ") && strstr(message, "many"), "%s", message);
    ck_assert_int_eq(csgi_loader_set_server_option(loader, "workers", "2"), 0);
    ck_assert_int_eq(csgi_loader_set_server_option(loader, "worker", "2"), 0);
    ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), CSGI_EINVAL);
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_msg(strstr(message, "worker: unknown key for egg:csgi#http"), "%s", message);
    ck_assert_int_eq(csgi_loader_set_server_option(loader, "", "2"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_loader_serve_app(loader, NULL, path, &error), CSGI_EINVAL);
    csgi_loader_free(loader);
}
END_TEST

/* csgi_loader_describe's text comes from csgi's allocator: failing each
   allocation in turn fails the call cleanly (and leaks nothing). */
START_TEST(describe_out_of_memory)
{
    const char *path = test_write_file("describe_oom.ini", "[pipeline:main]\n"
                                                           "pipeline = egg:FakeApp#caps home\n"
                                                           "\n"
                                                           "[app:home]\n"
                                                           "use = egg:FakeApp#basic_app\n"
                                                           "a = 1\n"
                                                           "b = 2\n");
    ck_assert_int_eq(test_alloc_install(), 0);
    int done = 0;
    for (long budget = 0; budget < 2000 && !done; budget++) {
        test_alloc_fail_never();
        csgi_loader *loader = new_loader();
        test_alloc_fail_after(budget);
        const char *text = NULL;
        csgi_load_error error;
        int rc = csgi_loader_describe(&text, loader, path, 0, &error);
        test_alloc_fail_never();
        if (rc == 0) {
            done = 1;
            ck_assert_ptr_nonnull(strstr(text, "[app:home] app use = egg:FakeApp#basic_app"));
        } else {
            ck_assert_msg(rc == CSGI_ENOMEM, "budget %ld: %s", budget, error.text);
            ck_assert_ptr_null(text);
        }
        csgi_loader_free(loader);
    }
    ck_assert_int_eq(done, 1);
}
END_TEST

/* ---- serving until a signal ------------------------------------------------------------ */

static volatile sig_atomic_t own_handler_calls;

static void own_handler(int signal_number)
{
    (void)signal_number;
    own_handler_calls++;
}

typedef struct signaller {
    pthread_t thread;
    int port;             /* > 0: GET / on it first */
    char response[256];   /* what came back */
    volatile int stopped; /* set once the server returned */
} signaller;

/* GET / once (when a port is given), then SIGTERM to the process every
   20 ms until the server has returned: a signal before the server listens
   for it reaches own_handler, harmlessly. */
static void *signal_until_stopped(void *arg)
{
    signaller *s = arg;
    if (s->port > 0) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0) {
            static const char request[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            if (write(fd, request, sizeof(request) - 1) == (ssize_t)sizeof(request) - 1) {
                size_t len = 0;
                ssize_t n;
                while (len + 1 < sizeof(s->response) &&
                       (n = read(fd, s->response + len, sizeof(s->response) - 1 - len)) > 0)
                    len += (size_t)n;
            }
        }
        if (fd >= 0)
            close(fd);
    }
    while (!s->stopped) {
        kill(getpid(), SIGTERM);
        usleep(20000);
    }
    return NULL;
}

static void signaller_start(signaller *s, int port)
{
    memset(s, 0, sizeof(*s));
    s->port = port;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = own_handler;
    sigemptyset(&action.sa_mask);
    ck_assert_int_eq(sigaction(SIGTERM, &action, NULL), 0);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, signal_until_stopped, s), 0);
}

static void signaller_stop(signaller *s)
{
    s->stopped = 1;
    pthread_join(s->thread, NULL);
    /* the server put the previous handler back */
    struct sigaction current;
    ck_assert_int_eq(sigaction(SIGTERM, NULL, &current), 0);
    ck_assert_ptr_eq((void *)current.sa_handler, (void *)own_handler);
}

static char captured[8][256];
static int captured_levels[8];
static int captured_count;

static void capture_log(int level, const char *message, void *userdata)
{
    (void)userdata;
    if (captured_count < 8) {
        snprintf(captured[captured_count], sizeof(captured[0]), "%s", message);
        captured_levels[captured_count++] = level;
    }
}

/* The level of the captured line containing text, or -1. */
static int captured_level(const char *text)
{
    for (int i = 0; i < captured_count; i++)
        if (strstr(captured[i], text))
            return captured_levels[i];
    return -1;
}

static csgi_body *logging_call(void *state, csgi_environ *environ,
                               csgi_start_response *start_response)
{
    (void)state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    csgi_environ_log_at(environ, CSGI_LOG_WARNING, "app warning");
    csgi_environ_log_at(environ, CSGI_LOG_INFO, "app info");
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "logged", 6);
}

static const csgi_app_type logging_type = {"logging", logging_call, NULL};

/* One way to serve until a signal: SIGTERM stops it gracefully (logged at
   warning through the server's logger, with its grace), the previous
   handler comes back; an application's own lines keep their levels. */
START_TEST(run_until_signal)
{
    captured_count = 0;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &logging_type, NULL), 0);
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log = capture_log;
    options.grace_timeout_ms = 500;
    csgi_server *server = NULL;
    ck_assert_int_eq(csgi_server_new(&server, app, &options, NULL), 0);
    ck_assert_int_eq(csgi_server_listen(server, "127.0.0.1:0"), 0);
    ck_assert_int_eq(csgi_server_start(server), 0);
    signaller s;
    signaller_start(&s, csgi_server_port(server, 0));
    ck_assert_int_eq(csgi_server_run_until_signal(server), 0);
    signaller_stop(&s);
    csgi_server_free(server);
    ck_assert_ptr_nonnull(strstr(s.response, "HTTP/1.1 200"));
    ck_assert_int_eq(captured_level("app warning"), CSGI_LOG_WARNING);
    ck_assert_int_eq(captured_level("app info"), -1); /* below the threshold */
    ck_assert_int_eq(captured_level("stopping (grace 500 ms)"), CSGI_LOG_WARNING);
}
END_TEST

/* egg:csgi#http serves the same way, configured by its section. */
START_TEST(http_runner_until_signal)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("serve.ini", "[app:main]\n"
                                                    "use = egg:FakeApp#basic_app\n"
                                                    "\n"
                                                    "[server:main]\n"
                                                    "use = egg:csgi#http\n"
                                                    "grace_timeout = 1\n"
                                                    "threads = 2\n");
    const char *listen[] = {"127.0.0.1:0"};
    ck_assert_int_eq(csgi_loader_set_listen(loader, listen, 1), 0);
    csgi_load_error error;
    if (geteuid() == 0) {
        /* As root, without user: refused, unless allowed. */
        ck_assert_int_eq(csgi_loader_serve(loader, path, test_load(loader, path), &error),
                         CSGI_EACCESS);
        ck_assert_str_eq(error.text, "refusing to serve as root: set user (the user to serve "
                                     "as), or allow_root = true");
        ck_assert_int_eq(csgi_loader_set_server_option(loader, "allow_root", "true"), 0);
    }
    csgi_app *app = test_load(loader, path);
    signaller s;
    signaller_start(&s, 0);
    ck_assert_int_eq(csgi_loader_serve(loader, path, app, &error), 0);
    signaller_stop(&s);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(composite_builds_filters)
{
    const char *path = test_write_file("filtered.ini", "[composite:main]\n"
                                                       "use = egg:Test#filtered\n"
                                                       "app = basic\n"
                                                       "filter = caps\n"
                                                       "\n"
                                                       "[app:basic]\n"
                                                       "use = egg:FakeApp#basic_app\n"
                                                       "\n"
                                                       "[filter:caps]\n"
                                                       "use = egg:FakeApp#caps\n");
    csgi_loader *loader = new_loader();
    csgi_app *app = test_load(loader, path);
    expect(app, "/", NULL, "200 OK", "THIS IS BASIC APP");
    csgi_app_free(app);

    /* Outside a composite factory: refused, and next is released. */
    csgi_app *next = test_load(loader, path);
    csgi_app *out = (csgi_app *)&out;
    csgi_load_error error;
    memset(&error, 0, sizeof(error)); /* first error wins: start empty */
    ck_assert_int_eq(csgi_loader_get_filter(&out, loader, "caps", next, &error), CSGI_ESTATE);
    ck_assert_ptr_nonnull(strstr(error.text, "csgi_loader_get_filter"));
    ck_assert_ptr_null(out);
    csgi_loader_free(loader);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("loader");

    TCase *samples = tcase_create("samples");
    tcase_add_test(samples, basic_app_names);
    tcase_add_test(samples, basic_app_remote_addr);
    tcase_add_test(samples, test_func_call_references);
    tcase_add_test(samples, test_filter_sections);
    tcase_add_test(samples, test_filter_with_chain);
    tcase_add_test(samples, config_test1_test2_test3);
    tcase_add_test(samples, config_foreign_and_get);
    tcase_add_test(samples, config_caller_globals);
    tcase_add_test(samples, config_test_error);
    tcase_add_test(samples, executable_main);
    suite_add_tcase(suite, samples);

    TCase *builtins = tcase_create("builtins");
    tcase_add_test(builtins, urlmap_builtin);
    tcase_add_test(builtins, composite_builds_filters);
    tcase_add_test(builtins, cascade_builtin);
    suite_add_tcase(suite, builtins);

    TCase *rules = tcase_create("rules");
    tcase_add_test(rules, unknown_factory_names_place);
    tcase_add_test(rules, unknown_filter_in_pipeline);
    tcase_add_test(rules, lazy_building);
    tcase_add_test(rules, filter_with_composes);
    tcase_add_test(rules, factory_error_located);
    tcase_add_test(rules, typed_conf);
    tcase_add_test(rules, registration_rules);
    tcase_add_test(rules, error_format);
    tcase_add_test(rules, composite_cycles_and_nesting);
    tcase_add_test(rules, out_of_memory_every_allocation);
    tcase_add_test(rules, use_of_a_pipeline);
    tcase_add_test(rules, pipeline_names_before_factories);
    tcase_add_test(rules, server_section_checked);
    tcase_add_test(rules, serve_app_and_server_options);
    tcase_add_test(rules, describe_out_of_memory);
    tcase_add_test(rules, run_until_signal);
    tcase_add_test(rules, http_runner_until_signal);
    suite_add_tcase(suite, rules);

    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
