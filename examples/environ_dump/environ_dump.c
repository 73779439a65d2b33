/*
 * environ_dump: answers every request with its environ as a JSON object,
 * the C counterpart of wsgiref's demo_app and httpbin's /anything.
 *
 * Every string-valued key appears under its own name (the CGI keys, every
 * HTTP_ key, the gateway keys), integers as numbers. Each byte above 0x7F
 * is written as the code point of that byte (as Latin-1 would decode it),
 * so the raw bytes of PATH_INFO survive the trip through JSON. The request
 * body, read through csgi.input, is under "body".
 *
 *   environ_dump [--host ADDRESS] [--port N]
 */
#include <csgi.h>
#include <csgi/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bytes as a JSON string, byte n becoming code point n. */
static json_t *latin1_string(const char *s, size_t len)
{
    char stack[512];
    char *utf8 = len * 2 + 1 <= sizeof(stack) ? stack : malloc(len * 2 + 1);
    if (!utf8)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            utf8[n++] = (char)c;
        } else {
            utf8[n++] = (char)(0xC0 | (c >> 6));
            utf8[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    utf8[n] = '\0';
    json_t *string = json_stringn(utf8, n);
    if (utf8 != stack)
        free(utf8);
    return string;
}

typedef struct dump {
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_body *self;
    char *text;
    int sent;
} dump;

static void body_ready(csgi_input *input, void *userdata)
{
    dump *d = userdata;
    (void)input;
    csgi_body_resume(d->self);
}

/* Build the JSON once the whole request body is in. */
static int make_text(dump *d)
{
    const char *body;
    size_t body_len;
    int r = csgi_input_read_all(csgi_environ_input(d->environ), 1 << 20, &body, &body_len);
    if (r == CSGI_EAGAIN) {
        csgi_input_on_ready(csgi_environ_input(d->environ), body_ready, d);
        return CSGI_EAGAIN;
    }
    json_t *object = json_object();
    if (!object)
        return CSGI_ENOMEM;
    size_t cursor = 0;
    const char *key;
    csgi_value_kind kind;
    while (csgi_environ_next(d->environ, &cursor, &key, &kind)) {
        if (kind == CSGI_VALUE_STRING) {
            size_t len;
            const char *value = csgi_environ_get_n(d->environ, key, &len);
            json_object_set_new(object, key, latin1_string(value, len));
        } else if (kind == CSGI_VALUE_INT) {
            int64_t value = 0;
            csgi_environ_get_int(d->environ, key, &value);
            json_object_set_new(object, key, json_integer((json_int_t)value));
        }
    }
    if (r == 0)
        json_object_set_new(object, "body", latin1_string(body, body_len));
    else
        json_object_set_new(object, "body_error", json_string(csgi_strerror(r)));
    d->text = json_dumps(object, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(object);
    if (!d->text)
        return CSGI_ENOMEM;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "application/json")};
    return csgi_start_response_call(d->start_response, "200 OK", headers, 1, NULL);
}

static int dump_next(void *state, csgi_chunk *chunk)
{
    dump *d = state;
    if (!d->text) {
        int r = make_text(d);
        if (r != 0)
            return r;
    }
    if (d->sent)
        return 0;
    d->sent = 1;
    chunk->data = d->text;
    chunk->len = strlen(d->text);
    return 1;
}

static void dump_close(void *state)
{
    dump *d = state;
    free(d->text); /* json_dumps uses malloc */
}

static const csgi_body_type dump_body = {"environ_dump", dump_next, dump_close};

static csgi_body *application(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    (void)state;
    dump *d = csgi_environ_alloc_zeroed(environ, sizeof(*d));
    if (!d)
        return NULL;
    d->environ = environ;
    d->start_response = start_response;
    d->self = csgi_body_new(environ, &dump_body, d);
    return d->self;
}

static const csgi_app_type environ_dump = {"environ_dump", application, NULL};

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
                fprintf(stderr, "environ_dump: bad port %s\n", argv[i]);
                return 2;
            }
            port = (int)value;
        } else {
            fprintf(stderr, "usage: environ_dump [--host ADDRESS] [--port N]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    csgi_app *app;
    if (csgi_app_new(&app, &environ_dump, NULL) != 0)
        return 1;
    return csgi_serve(app, host, port) == 0 ? 0 : 1;
}
