/* In-process application driver for the loader suites (see app_driver.h). */
#include "app_driver.h"

#include "common/arena.h"
#include "gateway/environ_private.h"
#include "gateway/gateway.h"
#include "http/parser.h"

#include <check.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_FIELDS 32

csgi_app *app_driver_load(csgi_loader *loader, const char *uri)
{
    csgi_app *app = NULL;
    csgi_load_error error;
    int rc = csgi_loader_load_app(loader, uri, &app, &error);
    char message[2048];
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_msg(rc == 0, "loading %s: %s (%s)", uri, message, csgi_err_name(rc));
    ck_assert_ptr_nonnull(app);
    return app;
}

int app_driver_load_fails(csgi_loader *loader, const char *uri, char *message, size_t size)
{
    csgi_app *app = (csgi_app *)&app; /* must be reset */
    csgi_load_error error;
    int rc = csgi_loader_load_app(loader, uri, &app, &error);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_null(app);
    csgi_load_error_format(&error, message, size);
    return rc;
}

static long no_body_read(void *context, void *buf, size_t len)
{
    (void)context;
    (void)buf;
    (void)len;
    return 0;
}

static size_t no_body_buffered(void *context)
{
    (void)context;
    return 0;
}

static void ignore_log(void *context, const char *line)
{
    (void)context;
    (void)line;
}

static int capture_start(void *userdata, const char *status, const csgi_header *headers,
                         size_t count, const char *exc_info)
{
    (void)exc_info;
    app_driver_response *r = userdata;
    snprintf(r->status, sizeof(r->status), "%s", status);
    for (size_t i = 0; i < count; i++)
        if (headers[i].name_len == 12 && strncasecmp(headers[i].name, "Content-Type", 12) == 0)
            snprintf(r->content_type, sizeof(r->content_type), "%.*s", (int)headers[i].value_len,
                     headers[i].value);
    return 0;
}

static void set_inet(struct sockaddr_storage *storage, const char *address, unsigned port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)storage;
    memset(storage, 0, sizeof(*storage));
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    ck_assert_int_eq(inet_pton(AF_INET, address, &in->sin_addr), 1);
}

void app_driver_run(csgi_app *app, const char *path, const char *remote, const char *header,
                    app_driver_response *out)
{
    static const csgi_http__limits limits = CSGI_HTTP__LIMITS_DEFAULT;
    char request[512];
    int len = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: example.com\r\n%s%s\r\n",
                       path, header ? header : "", header ? "\r\n" : "");
    csgi_http__error herror = {0, NULL};
    csgi_http__scanner scanner;
    csgi_http__header headers[MAX_FIELDS];
    csgi_http__head head;
    csgi_http__scanner_init(&scanner);
    ck_assert_int_eq(csgi_http__scan(&scanner, request, (size_t)len, &limits, &herror),
                     CSGI_HTTP__SCAN_DONE);
    ck_assert_int_eq(csgi_http__parse_head(request + scanner.skipped,
                                           scanner.head_length - scanner.skipped, headers,
                                           MAX_FIELDS, &head, &herror),
                     0);
    struct sockaddr_storage peer, local;
    set_inet(&peer, remote ? remote : "192.0.2.7", 40000);
    set_inet(&local, "10.0.0.1", 8080);
    csgi_input__provider provider = {no_body_read, no_body_buffered};
    csgi_environ__source source;
    memset(&source, 0, sizeof(source));
    source.head = &head;
    source.peer = (const struct sockaddr *)&peer;
    source.local = (const struct sockaddr *)&local;
    source.url_scheme = "http";
    source.multiprocess = 1;
    source.input = &provider;
    source.log = ignore_log;
    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    csgi_environ *environ = csgi_environ__new(&arena, &source);
    ck_assert_ptr_nonnull(environ);

    memset(out, 0, sizeof(*out));
    csgi_start_response root = {environ, NULL, capture_start, out, NULL};
    csgi_body *body = csgi_app_call(app, environ, &root);
    ck_assert_ptr_nonnull(body);
    csgi_chunk chunk;
    size_t used = 0;
    int rc;
    while ((rc = csgi_body_next(body, &chunk)) == 1) {
        ck_assert_uint_lt(used + chunk.len, sizeof(out->body));
        memcpy(out->body + used, chunk.data, chunk.len);
        used += chunk.len;
    }
    ck_assert_int_eq(rc, 0);
    csgi_body_close(body);
    csgi_arena__clear(&arena);
}
