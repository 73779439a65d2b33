/*
 * Hello World behind the talk's auth filter, as csgi middleware: the
 * benchmark's measure of what one middleware layer costs (examples/hello
 * is the same application without the filter, bench/engine_hello the same
 * answer without the gateway).
 *
 *   auth_hello [--host ADDRESS] [--port N]
 *
 * The filter answers 403 Forbidden unless the request carries
 * "X-Auth-Token: open-sesame"; with it, the request goes on to hello, which
 * answers "Hello World" as text/html. Only the public API (<csgi.h>), served
 * by csgi_serve() on 127.0.0.1:8080 by default; --port 0 picks a free port
 * and the first line printed names the address bound. SIGINT and SIGTERM
 * stop it gracefully.
 */
#include <csgi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The application: examples/hello ------------------------------------ */

static csgi_body *hello_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/html")};
    (void)state;
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "Hello World", 11);
}

static const csgi_app_type hello_type = {"hello", hello_call, NULL};

/* ---- The middleware: the talk's auth filter --------------------------------- */

static const char expected_token[] = "open-sesame";

/* 1 when given[0..len) is the expected token. The time taken does not
   depend on where the bytes differ: a token of the wrong length is compared
   with the expected token itself (and fails on its length), so the loop
   always reads the same number of bytes. Eight bytes at a time: the compare is a filter's whole
   work, so it should not dominate. */
static int token_matches(const char *given, size_t len)
{
    const size_t n = sizeof(expected_token) - 1;
    const unsigned char *a = (const unsigned char *)(len == n ? given : expected_token);
    const unsigned char *b = (const unsigned char *)expected_token;
    uint64_t diff = len != n;
    /* Whole words; a last word overlapping the one before covers the rest
       (the expected token is at least eight bytes long). */
    _Static_assert(sizeof(expected_token) - 1 >= 8, "the token fills a word");
    for (size_t i = 0;; i += 8) {
        size_t at = i + 8 <= n ? i : n - 8;
        uint64_t x, y;
        memcpy(&x, a + at, 8);
        memcpy(&y, b + at, 8);
        diff |= x ^ y;
        if (at + 8 >= n)
            break;
    }
    return diff == 0;
}

/* state: the next application, which the filter owns. */
static csgi_body *auth_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    size_t len = 0;
    const char *token = csgi_environ_get_n(environ, "HTTP_X_AUTH_TOKEN", &len);
    if (!token || !token_matches(token, len)) {
        static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
        if (csgi_start_response_call(start_response, "403 Forbidden", headers, 1, NULL) != 0)
            return NULL;
        return csgi_body_static(environ, "Forbidden\n", 10);
    }
    return csgi_app_call(state, environ, start_response);
}

static void auth_destroy(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type auth_type = {"auth", auth_call, auth_destroy};

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8080;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            long value = strtol(argv[++i], &end, 10);
            if (*end || value < 0 || value > 65535) {
                fprintf(stderr, "auth_hello: bad port %s\n", argv[i]);
                return 2;
            }
            port = (int)value;
        } else {
            fprintf(stderr, "usage: auth_hello [--host ADDRESS] [--port N]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }

    csgi_app *hello, *auth;
    if (csgi_app_new(&hello, &hello_type, NULL) != 0)
        return 1;
    /* The filter takes hello: freeing it (csgi_serve() does) frees both. On
       failure csgi_app_new() has already run auth_destroy(hello). */
    if (csgi_app_new(&auth, &auth_type, hello) != 0)
        return 1;
    return csgi_serve(auth, host, port) == 0 ? 0 : 1;
}
