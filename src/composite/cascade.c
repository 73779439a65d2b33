/*
 * cascade: try applications in turn while they answer a status in a catch
 * list (404 by default), as Paste's paste.cascade does
 * (include/csgi/composite.h).
 *
 * Written over the public protocol only (csgi.h), plus the library's
 * allocator for the cascade's own table.
 *
 * Each application but the last gets a start-response of the cascade's own.
 * A caught status is recorded and not passed on; any other is passed on at
 * once, and from then on the cascade steps aside: the application's body is
 * returned as it is. An application may also start its response after it
 * returned (answering later); then the cascade cannot know yet whether to
 * step aside, so it returns a body of its own that pulls the application's
 * body until the status shows up, and moves on to the next application from
 * there when the status is caught.
 */
#include "common/alloc.h"

#include <csgi.h>
#include <csgi/composite.h>
#include "composite/composite_private.h"

#include <stdlib.h>

#include <string.h>

typedef struct cascade {
    csgi_app **apps; /* one reference each */
    size_t count;
    int *catch_statuses;
    size_t catch_count;
} cascade;

/* One request going through the cascade, in the request's arena. */
typedef struct attempt {
    const cascade *cascade;
    csgi_environ *environ;
    csgi_start_response *parent; /* the start-response the cascade was given */
    csgi_start_response *mine;   /* the one the applications but the last get */
    /* SCRIPT_NAME and PATH_INFO as the cascade found them (NULL: not set),
       restored before each further application. */
    const char *script_name;
    size_t script_name_len;
    const char *path_info;
    size_t path_info_len;
    size_t index;     /* the application being tried */
    int started;      /* it called start-response */
    int caught;       /* ... with a caught status, not passed on */
    int decided;      /* its answer is the response: pass its body through */
    csgi_body *inner; /* its body */
} attempt;

static void destroy_cascade(void *state)
{
    cascade *c = state;
    if (!c)
        return;
    for (size_t i = 0; i < c->count; i++)
        csgi_app_free(c->apps[i]);
    csgi__free(c->apps);
    csgi__free(c->catch_statuses);
    csgi__free(c);
}

static int is_caught(const cascade *c, const char *status)
{
    if (!status || status[0] < '0' || status[0] > '9' || status[1] < '0' || status[1] > '9' ||
        status[2] < '0' || status[2] > '9')
        return 0; /* malformed: passed on, and the server refuses it */
    int code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    for (size_t i = 0; i < c->catch_count; i++)
        if (c->catch_statuses[i] == code)
            return 1;
    return 0;
}

static int on_start_response(const char *status, const csgi_header *headers, size_t count,
                             const char *exc_info, void *userdata)
{
    attempt *a = userdata;
    if (a->started && !exc_info)
        return CSGI_ESTATE; /* as start-response itself: once, or again with exc_info */
    int passed_on = a->started && !a->caught;
    a->started = 1;
    /* Once a status went to the client's start-response, later ones (with
       exc_info) go there too: only it can tell whether replacing is still
       possible. */
    if (!passed_on && is_caught(a->cascade, status)) {
        a->caught = 1;
        return 0;
    }
    a->caught = 0;
    return csgi_start_response_call(a->parent, status, headers, count, exc_info);
}

/* Copy a key's string value into the request's arena (it would change when
   an application sets the key). */
static int save(csgi_environ *environ, const char *key, const char **value, size_t *len)
{
    const char *current = csgi_environ_get_n(environ, key, len);
    *value = NULL;
    if (!current)
        return 0;
    char *copy = csgi_environ_alloc(environ, *len + 1);
    if (!copy)
        return CSGI_ENOMEM;
    memcpy(copy, current, *len + 1);
    *value = copy;
    return 0;
}

static int restore(csgi_environ *environ, const char *key, const char *value, size_t len)
{
    if (value)
        return csgi_environ_set_n(environ, key, value, len);
    csgi_environ_remove(environ, key); /* CSGI_ENOTFOUND is fine */
    return 0;
}

/*
 * Call the applications from a->index on until one's answer is known or
 * pending. Returns 1 when a->inner is the response's body (a status was
 * passed on, or the last application answered), 0 when a->inner belongs to
 * an application that has not started its response yet, or -1 when an
 * application failed (a->inner NULL).
 */
static int advance(attempt *a)
{
    const cascade *c = a->cascade;
    for (;;) {
        int last = a->index + 1 == c->count;
        if (a->index > 0 &&
            (restore(a->environ, "SCRIPT_NAME", a->script_name, a->script_name_len) != 0 ||
             restore(a->environ, "PATH_INFO", a->path_info, a->path_info_len) != 0))
            return -1;
        a->started = a->caught = 0;
        a->inner = csgi_app_call(c->apps[a->index], a->environ, last ? a->parent : a->mine);
        if (!a->inner)
            return -1;
        if (last || (a->started && !a->caught)) {
            a->decided = 1;
            return 1;
        }
        if (!a->started)
            return 0;
        /* Caught: this answer is dropped, unread (Paste reads it to the end
           first; a body's close is enough to release it here). */
        csgi_body_close(a->inner);
        a->inner = NULL;
        a->index++;
    }
}

/* The body returned while an application's status is still unknown. */
static int cascade_next(void *state, csgi_chunk *chunk)
{
    attempt *a = state;
    for (;;) {
        if (!a->inner)
            return CSGI_ESTATE; /* an application failed: the server answers 500 */
        int r = csgi_body_next(a->inner, chunk);
        if (a->decided)
            return r;
        if (!a->started)
            return r; /* CSGI_EAGAIN, or a protocol error the server reports */
        if (!a->caught) {
            a->decided = 1;
            return r;
        }
        csgi_body_close(a->inner);
        a->inner = NULL;
        a->index++;
        if (advance(a) < 0)
            return CSGI_ESTATE;
    }
}

static void cascade_close(void *state)
{
    attempt *a = state;
    csgi_body_close(a->inner);
    a->inner = NULL;
}

static const csgi_body_type cascade_body = {"cascade", cascade_next, cascade_close};

static csgi_body *cascade_call(void *state, csgi_environ *environ,
                               csgi_start_response *start_response)
{
    const cascade *c = state;
    if (c->count == 1)
        return csgi_app_call(c->apps[0], environ, start_response);
    attempt *a = csgi_environ_alloc(environ, sizeof(*a));
    if (!a)
        return NULL;
    *a = (attempt){.cascade = c, .environ = environ, .parent = start_response};
    if (save(environ, "SCRIPT_NAME", &a->script_name, &a->script_name_len) != 0 ||
        save(environ, "PATH_INFO", &a->path_info, &a->path_info_len) != 0)
        return NULL;
    a->mine = csgi_start_response_new(environ, start_response, on_start_response, a);
    if (!a->mine)
        return NULL;
    int r = advance(a);
    if (r < 0)
        return NULL;
    if (r == 1)
        return a->inner;                             /* streams through untouched */
    return csgi_body_new(environ, &cascade_body, a); /* closes a->inner when it fails */
}

static void cascade_destroy(void *state)
{
    destroy_cascade(state);
}

static const csgi_app_type cascade_type = {"cascade", cascade_call, cascade_destroy};

int csgi_cascade_new(csgi_app **out, csgi_app **apps, size_t count, const int *catch_statuses,
                     size_t catch_count)
{
    static const int default_catch[] = {404};
    cascade *c = NULL;
    int err = CSGI_EINVAL;
    if (out)
        *out = NULL;
    if (!out || !apps || count == 0 || (catch_count && !catch_statuses))
        goto fail;
    for (size_t i = 0; i < count; i++)
        if (!apps[i])
            goto fail;
    if (!catch_statuses) {
        catch_statuses = default_catch;
        catch_count = 1;
    }
    for (size_t i = 0; i < catch_count; i++)
        if (catch_statuses[i] < 100 || catch_statuses[i] > 999)
            goto fail;
    err = CSGI_ENOMEM;
    c = csgi__calloc(1, sizeof(*c));
    if (!c)
        goto fail;
    c->apps = csgi__calloc(count, sizeof(*c->apps));
    c->catch_statuses = csgi__calloc(catch_count ? catch_count : 1, sizeof(int));
    if (!c->apps || !c->catch_statuses)
        goto fail;
    memcpy(c->apps, apps, count * sizeof(*apps));
    c->count = count;
    if (catch_count)
        memcpy(c->catch_statuses, catch_statuses, catch_count * sizeof(int));
    c->catch_count = catch_count;
    return csgi_app_new(out, &cascade_type, c); /* destroys c when it fails */
fail:
    destroy_cascade(c); /* holds no application yet */
    if (apps)
        for (size_t i = 0; i < count; i++)
            csgi_app_free(apps[i]);
    return err;
}

/* ---- INI factory ------------------------------------------------------------- */

typedef struct numbered_app {
    long long number;
    csgi_app *app;
} numbered_app;

static int compare_numbered(const void *a, const void *b)
{
    const numbered_app *x = a, *y = b;
    return (x->number > y->number) - (x->number < y->number);
}

/* The catch list: status codes. *out owned (csgi__free). */
static int catch_statuses(const csgi_conf *conf, int **out, size_t *count, csgi_load_error *error)
{
    const char *const *items = NULL;
    int rc = csgi_conf_aslist(conf, "catch", &items, count, error);
    if (rc != 0 || *count == 0)
        return rc;
    *out = csgi__calloc(*count, sizeof(**out));
    if (!*out)
        return CSGI_ENOMEM;
    for (size_t i = 0; i < *count; i++) {
        char *end = NULL;
        long status = strtol(items[i], &end, 10);
        if (*end || status < 100 || status > 999) {
            csgi_conf_error(conf, "catch", error, "not a status code: '%s'", items[i]);
            return CSGI_EINVAL;
        }
        (*out)[i] = (int)status;
    }
    return 0;
}

int csgi_cascade__factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    size_t capacity = csgi_conf_count(local_conf);
    numbered_app *apps = csgi__calloc(capacity ? capacity : 1, sizeof(*apps));
    csgi_app **plain = csgi__calloc(capacity ? capacity : 1, sizeof(*plain));
    int *catches = NULL;
    size_t count = 0, catch_count = 0;
    int rc = apps && plain ? 0 : CSGI_ENOMEM;
    const char *name, *value;
    for (size_t i = 0; rc == 0 && csgi_conf_entry(local_conf, i, &name, &value); i++) {
        if (strcmp(name, "catch") == 0)
            continue;
        const char *digits = name + 3;
        char *end = NULL;
        long long number = strncmp(name, "app", 3) == 0 ? strtoll(digits, &end, 10) : 0;
        if (strncmp(name, "app", 3) != 0) {
            csgi_conf_error(local_conf, name, error,
                            "bad cascade key (=%s): all keys must start with 'app'", value);
            rc = CSGI_EINVAL;
        } else if (!*digits || *end) {
            csgi_conf_error(local_conf, name, error,
                            "bad name for an application key (number expected)");
            rc = CSGI_EINVAL;
        } else if ((rc = csgi_loader_get_app(&apps[count].app, loader, value, error)) == 0) {
            apps[count++].number = number;
        }
    }
    if (rc == 0 && count == 0) {
        csgi_conf_error(local_conf, NULL, error, "a cascade needs at least one app (app1 = ...)");
        rc = CSGI_EINVAL;
    }
    if (rc == 0)
        rc = catch_statuses(local_conf, &catches, &catch_count, error);
    if (rc == 0) {
        qsort(apps, count, sizeof(*apps), compare_numbered);
        for (size_t i = 0; i < count; i++)
            plain[i] = apps[i].app;
        rc = csgi_cascade_new(out, plain, count, catches, catch_count);
        count = 0; /* taken, also on failure */
    }
    for (size_t i = 0; i < count; i++)
        csgi_app_free(apps[i].app);
    csgi__free(apps);
    csgi__free(plain);
    csgi__free(catches);
    return rc;
}
