/*
 * libFuzzer target for the deploy-file loader (include/csgi/loader.h,
 * src/loader/loader.c and conf.c on top of the INI model).
 *
 * The input is a deploy file. It is written as main.ini into a private
 * temporary directory (made once, reused), because the loader reads files by
 * path and resolves `config:` references relative to the file. Inputs that
 * could reach outside that directory ("config:/", "..", or a "%(" after a
 * "config:", which could build either by interpolation) are skipped.
 *
 * A fresh loader with a few registered factories (an app answering "ok", a
 * filter and a filter-app returning next unchanged, a composite building its
 * local "app" with csgi_loader_get_app) then builds "main.ini#main" and
 * describes it with unknown factories stubbed. No sockets, no serving.
 *
 * Invariants: on failure the error has a text and no app is returned; on
 * success the app is non-NULL (and describe returns a text). A violation
 * aborts.
 */
#include "fuzz_common.h"

#include <csgi.h>
#include <csgi/loader.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static csgi_body *ok_call(void *state, csgi_environ *env, csgi_start_response *start_response)
{
    static const char body[] = "ok";
    (void)state;
    if (csgi_start_response_call(start_response, "200 OK", NULL, 0, NULL) != 0)
        return NULL;
    return csgi_body_static(env, body, sizeof(body) - 1);
}

static const csgi_app_type ok_type = {"fuzz.ok", ok_call, NULL};

static int ok_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                      const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &ok_type, NULL);
}

/* Filters take next and hand it back as the filtered application. */
static int pass_filter(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                       const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    CHECK(next);
    *out = next;
    return 0;
}

static int composite_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_load_error *error)
{
    const char *name = csgi_conf_get(local_conf, "app");
    if (!name)
        return ok_factory(out, loader, global_conf, local_conf, error);
    csgi_app *app = NULL;
    int rc = csgi_loader_get_app(&app, loader, name, error);
    if (rc != 0) {
        CHECK(app == NULL);
        return rc;
    }
    CHECK(app);
    *out = app;
    return 0;
}

static char dir[64];
static char main_path[128];
static char uri[160];

static void cleanup(void)
{
    unlink(main_path);
    rmdir(dir);
}

static void setup(void)
{
    if (dir[0])
        return;
    unsetenv("CSGI_MODULE_PATH");
    strcpy(dir, "/tmp/csgi-fuzz-loader.XXXXXX");
    CHECK(mkdtemp(dir));
    atexit(cleanup);
    snprintf(main_path, sizeof(main_path), "%s/main.ini", dir);
    snprintf(uri, sizeof(uri), "%s#main", main_path);
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd);
}

static const void *find(const uint8_t *data, size_t size, const char *needle)
{
    return memmem(data, size, needle, strlen(needle));
}

static csgi_loader *new_loader(void)
{
    csgi_loader *loader = NULL;
    CHECK(csgi_loader_new(&loader) == 0 && loader);
    CHECK(csgi_loader_register_app(loader, "egg:fuzz#app", CSGI_FACTORY_APP, ok_factory) == 0);
    CHECK(csgi_loader_register_app(loader, "fuzz.apps:make_app", CSGI_FACTORY_APP, ok_factory) ==
          0);
    /* "call:fuzz.apps:make_app" names the same object: already registered. */
    CHECK(csgi_loader_register_app(loader, "call:fuzz.apps:make_app", CSGI_FACTORY_APP,
                                   ok_factory) == CSGI_EINVAL);
    CHECK(csgi_loader_register_app(loader, "egg:fuzz#composite", CSGI_FACTORY_COMPOSITE,
                                   composite_factory) == 0);
    CHECK(csgi_loader_register_filter(loader, "egg:fuzz#filter", CSGI_FACTORY_FILTER,
                                      pass_filter) == 0);
    CHECK(csgi_loader_register_filter(loader, "egg:fuzz#filter_app", CSGI_FACTORY_FILTER_APP,
                                      pass_filter) == 0);
    return loader;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();

    /* Stay inside the private directory. */
    if (find(data, size, "..") || find(data, size, "config:/"))
        return 0;
    const uint8_t *config = find(data, size, "config:");
    if (config && find(config, size - (size_t)(config - data), "%("))
        return 0;
    CHECK(write_file(main_path, data, size) == 0);

    csgi_loader *loader = new_loader();

    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    csgi_app *app = NULL;
    int rc = csgi_loader_load_app(&app, loader, uri, &error);
    if (rc == 0) {
        CHECK(app);
    } else {
        CHECK(app == NULL);
        CHECK(error.text[0]);
        char message[1024];
        CHECK(csgi_load_error_format(&error, message, sizeof(message)) > 0);
    }
    csgi_app_free(app);

    memset(&error, 0, sizeof(error));
    const char *text = NULL;
    rc = csgi_loader_describe(&text, loader, uri, 1, &error);
    if (rc == 0)
        CHECK(text);
    else
        CHECK(error.text[0]);

    csgi_loader_free(loader);
    return 0;
}
