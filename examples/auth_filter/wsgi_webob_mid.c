/*
 * The talk's middleware example as a csgi module: wsgi_webob_mid.so.
 *
 *     @wsgify
 *     def application(request):
 *         return Response('Hello, Secret World of WebOb !')
 *
 *     @wsgify.middleware
 *     def auth_filter(request, app):
 *         if request.headers.get('X-Auth-Token') != 'open-sesame':
 *             return exc.HTTPForbidden()
 *         return app(request)
 *
 * The talk's wsgi_webob_mid.ini loads it unchanged:
 *
 *     [pipeline:main]
 *     pipeline = auth hello
 *
 *     [app:hello]
 *     paste.app_factory = wsgi_webob_mid:app_factory
 *
 *     [filter:auth]
 *     paste.filter_factory = wsgi_webob_mid:filter_factory
 *
 * "wsgi_webob_mid:app_factory" finds app_factory in the module's exported
 * csgi_plugin_entry_points table, which declares each factory's kind (the
 * loader checks it: naming filter_factory as an app factory is an error).
 *
 * The filter's token comes from its local conf (`token = ...`), default
 * "open-sesame", and is compared in constant time.
 */
#include <csgi.h>
#include <csgi/loader.h>

#include <stdlib.h>
#include <stdint.h>
#include <string.h>

/* ---- the application ---------------------------------------------------------------- */

static csgi_body *hello_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    static const char body[] = "Hello, Secret World of WebOb !";
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/html")};
    (void)state;
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, body, sizeof(body) - 1);
}

static const csgi_app_type hello_type = {"wsgi_webob_mid.application", hello_call, NULL};

static int app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                       const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &hello_type, NULL);
}

/* ---- the filter ------------------------------------------------------------------- */

typedef struct auth_filter {
    csgi_app *next; /* owned */
    char *token;    /* owned */
    size_t token_len;
} auth_filter;

/* Whether given equals expected, in a time that depends on the length of
   expected only: a client timing the answers learns nothing of the token.
   Eight bytes at a time, the last word overlapping the one before when the
   length is not a multiple of eight (a token of 8 to 16 bytes is two
   words, no loop); a given of another length is not read (expected is
   compared with itself, the same work), and the empty barriers keep the
   compiler from stopping early once a byte differs. */
static int tokens_equal(const char *given, size_t given_len, const char *expected,
                        size_t expected_len)
{
    const char *g = given_len == expected_len ? given : expected;
    uint64_t diff = given_len != expected_len;
    uint64_t a, b;
    if (expected_len < 8) {
        for (size_t i = 0; i < expected_len; i++) {
            diff |= (uint64_t)((unsigned char)g[i] ^ (unsigned char)expected[i]);
            __asm__("" : "+r"(diff));
        }
        return diff == 0;
    }
    for (size_t i = 0; i + 8 < expected_len; i += 8) {
        memcpy(&a, g + i, 8);
        memcpy(&b, expected + i, 8);
        diff |= a ^ b;
        __asm__("" : "+r"(diff));
    }
    memcpy(&a, g + expected_len - 8, 8);
    memcpy(&b, expected + expected_len - 8, 8);
    diff |= a ^ b;
    return diff == 0;
}

static csgi_body *auth_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    auth_filter *auth = state;
    size_t len = 0;
    const char *given = csgi_environ_get_n(environ, "HTTP_X_AUTH_TOKEN", &len);
    if (given && tokens_equal(given, len, auth->token, auth->token_len))
        return csgi_app_call(auth->next, environ, start_response);
    static const char body[] = "403 Forbidden\n\nAccess was denied to this resource.\n";
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    if (csgi_start_response_call(start_response, "403 Forbidden", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, body, sizeof(body) - 1);
}

static void auth_destroy(void *state)
{
    auth_filter *auth = state;
    csgi_app_free(auth->next);
    free(auth->token);
    free(auth);
}

static const csgi_app_type auth_type = {"wsgi_webob_mid.auth_filter", auth_call, auth_destroy};

static int filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)error;
    const char *token = csgi_conf_get(local_conf, "token");
    if (!token)
        token = "open-sesame";
    size_t len = strlen(token);
    auth_filter *auth = calloc(1, sizeof(*auth));
    char *copy = malloc(len + 1); /* the conf is only borrowed */
    if (!auth || !copy) {
        free(auth);
        free(copy);
        csgi_app_free(next); /* taken, also on failure */
        return CSGI_ENOMEM;
    }
    memcpy(copy, token, len + 1);
    auth->next = next;
    auth->token = copy;
    auth->token_len = len;
    /* On failure csgi_app_new destroys the state, which frees next. */
    return csgi_app_new(out, &auth_type, auth);
}

/* ---- what the module exports --------------------------------------------------------- */

extern const csgi_entry_point csgi_plugin_entry_points[];

const csgi_entry_point csgi_plugin_entry_points[] = {
    {"app_factory", CSGI_FACTORY_APP, app_factory, NULL, NULL},
    {"filter_factory", CSGI_FACTORY_FILTER, NULL, filter_factory, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
