/* greet.c: a greeting, an authentication filter and a composite, as
   factories for deploy files. */
#include "greet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hello {
    char *greeting; /* a copy: the conf is gone once the factory returns */
    size_t greeting_len;
    int html;
    char cache_control[32]; /* "max-age=N", or "" */
} hello;

static csgi_body *hello_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    hello *h = state;
    const char *type = h->html ? "text/html" : "text/plain";
    /* CSGI_HEADER takes string literals only: other values need their length. */
    csgi_header headers[2] = {
        {"Content-Type", 12, type, strlen(type)},
        {"Cache-Control", 13, h->cache_control, strlen(h->cache_control)},
    };
    size_t count = h->cache_control[0] ? 2 : 1;
    if (csgi_start_response_call(start_response, "200 OK", headers, count, NULL) != 0)
        return NULL;
    /* The greeting lives as long as the application: the body need not copy it. */
    return csgi_body_static(environ, h->greeting, h->greeting_len);
}

static void hello_destroy(void *state)
{
    hello *h = state;
    free(h->greeting);
    free(h);
}

static const csgi_app_type hello_type = {"greet.hello", hello_call, hello_destroy};

int hello_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                  const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    const char *greeting = csgi_conf_get(local_conf, "greeting");
    if (!greeting)
        greeting = "Hello World";
    int html = 0;
    long long max_age = -1;
    /* A bad value fills *error with the file, line, section and key. */
    if (csgi_conf_asbool(local_conf, "html", 0, &html, error) != 0 ||
        csgi_conf_asint(local_conf, "max_age", -1, &max_age, error) != 0)
        return CSGI_EINVAL;
    if (max_age > 31536000) {
        snprintf(error->key, sizeof(error->key), "max_age");
        snprintf(error->text, sizeof(error->text), "%lld is more than a year", max_age);
        return CSGI_EINVAL;
    }
    size_t len = strlen(greeting);
    hello *h = calloc(1, sizeof(*h));
    char *copy = malloc(len + 1);
    if (!h || !copy) {
        free(h);
        free(copy);
        return CSGI_ENOMEM;
    }
    memcpy(copy, greeting, len + 1);
    h->greeting = copy;
    h->greeting_len = len;
    h->html = html;
    if (max_age >= 0)
        snprintf(h->cache_control, sizeof(h->cache_control), "max-age=%lld", max_age);
    /* On failure csgi_app_new runs hello_destroy(h). */
    return csgi_app_new(out, &hello_type, h);
}

typedef struct auth {
    csgi_app *next; /* owned */
    char *token;    /* owned copy */
    size_t token_len;
} auth;

/* Equal in a time that depends on the length of expected only. */
static int tokens_equal(const char *given, size_t given_len, const char *expected,
                        size_t expected_len)
{
    volatile unsigned char diff = (unsigned char)(given_len != expected_len);
    for (size_t i = 0; i < expected_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

static csgi_body *auth_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    auth *a = state;
    size_t len = 0;
    const char *given = csgi_environ_get_n(environ, "HTTP_X_AUTH_TOKEN", &len);
    if (given && tokens_equal(given, len, a->token, a->token_len))
        return csgi_app_call(a->next, environ, start_response);
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    if (csgi_start_response_call(start_response, "403 Forbidden", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "Forbidden\n", 10);
}

static void auth_destroy(void *state)
{
    auth *a = state;
    csgi_app_free(a->next);
    free(a->token);
    free(a);
}

static const csgi_app_type auth_type = {"greet.auth", auth_call, auth_destroy};

int auth_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    const char *token = csgi_conf_get(local_conf, "token");
    if (!token)
        token = "open-sesame";
    if (!token[0]) {
        csgi_app_free(next); /* taken, also on failure */
        snprintf(error->key, sizeof(error->key), "token");
        snprintf(error->text, sizeof(error->text), "empty token: every request would pass");
        return CSGI_EINVAL;
    }
    size_t len = strlen(token);
    auth *a = calloc(1, sizeof(*a));
    char *copy = malloc(len + 1);
    if (!a || !copy) {
        free(a);
        free(copy);
        csgi_app_free(next); /* taken, also on failure */
        return CSGI_ENOMEM;
    }
    memcpy(copy, token, len + 1);
    a->next = next;
    a->token = copy;
    a->token_len = len;
    /* On failure csgi_app_new runs auth_destroy(a), which frees next. */
    return csgi_app_new(out, &auth_type, a);
}

int strategy_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                     const csgi_conf *local_conf, csgi_load_error *error)
{
    const char *strategy = csgi_conf_get(global_conf, "auth_strategy");
    if (!strategy)
        strategy = "keystone";
    const char *name = csgi_conf_get(local_conf, strategy);
    if (!name) {
        snprintf(error->text, sizeof(error->text),
                 "auth_strategy '%s' names no key of this section", strategy);
        return CSGI_EINVAL;
    }
    /* Builds the section called name; on failure *error names that section. */
    return csgi_loader_get_app(out, loader, name, error);
}

const csgi_entry_point csgi_plugin_entry_points[] = {
    {"hello", CSGI_FACTORY_APP, hello_factory, NULL, NULL},
    {"auth", CSGI_FACTORY_FILTER, NULL, auth_factory, NULL},
    {"strategy", CSGI_FACTORY_COMPOSITE, strategy_factory, NULL, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
