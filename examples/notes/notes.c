/*
 * A small JSON service, written the way a csgi user writes one: a "notes"
 * store behind a router, with a request-id filter and a body-size filter
 * in front, wired by notes.ini and served by csgi-serve:
 *
 *   csgi-serve --module-path build/examples/notes examples/notes/notes.ini
 *
 *   GET    /notes        {"notes": [{"id": 1, "text": "..."}, ...]}
 *   POST   /notes        {"text": "..."} -> 201 {"note": {...}}, Location
 *   GET    /notes/{id}   {"note": {...}}, or 404
 *   DELETE /notes/{id}   204, or 404
 *
 * Every factory is a handler (csgi/handler.h), so each runs exactly once per
 * request: the request-id filter makes one id and logs one line however the
 * body arrives, and the create handler reads a body that is all there.
 * Errors are JSON ({"code": 404, "title": "Not Found", "message": "..."}).
 *
 * The module exports its factories through csgi_plugin_entry_points, so
 * the deploy file names them as notes:list_factory and so on.
 */
#include <csgi.h>
#include <csgi/loader.h>

#include <jansson.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The store: one per process, shared by the handlers ---------------------------- */

typedef struct note {
    long long id;
    char *text;
} note;

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static note *store;
static size_t store_count, store_capacity;
static long long store_next_id = 1;

static json_t *note_json(const note *n)
{
    return json_pack("{sIss}", "id", (json_int_t)n->id, "text", n->text);
}

/* The note with id, as JSON (new reference), or NULL. */
static json_t *store_get(long long id)
{
    json_t *value = NULL;
    pthread_mutex_lock(&store_lock);
    for (size_t i = 0; i < store_count && !value; i++)
        if (store[i].id == id)
            value = note_json(&store[i]);
    pthread_mutex_unlock(&store_lock);
    return value;
}

/* Add a note; its JSON (new reference), or NULL when memory ran out. */
static json_t *store_add(const char *text)
{
    json_t *value = NULL;
    pthread_mutex_lock(&store_lock);
    if (store_count == store_capacity) {
        size_t capacity = store_capacity ? store_capacity * 2 : 16;
        note *grown = realloc(store, capacity * sizeof(*grown));
        if (grown) {
            store = grown;
            store_capacity = capacity;
        }
    }
    char *copy = store_count < store_capacity ? malloc(strlen(text) + 1) : NULL;
    if (copy) {
        memcpy(copy, text, strlen(text) + 1);
        note *n = &store[store_count++];
        *n = (note){store_next_id++, copy};
        value = note_json(n);
    }
    pthread_mutex_unlock(&store_lock);
    return value;
}

static int store_remove(long long id)
{
    int found = 0;
    pthread_mutex_lock(&store_lock);
    for (size_t i = 0; i < store_count && !found; i++) {
        if (store[i].id == id) {
            free(store[i].text);
            store[i] = store[--store_count];
            found = 1;
        }
    }
    pthread_mutex_unlock(&store_lock);
    return found;
}

static json_t *store_list(void)
{
    json_t *notes = json_array();
    pthread_mutex_lock(&store_lock);
    for (size_t i = 0; notes && i < store_count; i++)
        json_array_append_new(notes, note_json(&store[i]));
    pthread_mutex_unlock(&store_lock);
    return notes;
}

/* ---- The handlers --------------------------------------------------------------- */

/* A JSON response: status and value (taken). */
static csgi_response *json_response(csgi_request *request, int status, json_t *value)
{
    csgi_response *response = value ? csgi_handler_response(request) : NULL;
    if (!response || csgi_response_set_status(response, status) != 0 ||
        csgi_response_set_json(response, value) != 0) {
        json_decref(value);
        return NULL;
    }
    return response;
}

/* The {id} the router matched, or -1. */
static long long note_id(csgi_request *request)
{
    const char *id = csgi_router_arg(csgi_request_environ(request), "id");
    return id ? strtoll(id, NULL, 10) : -1;
}

static csgi_response *list_notes(csgi_request *request, void *userdata)
{
    (void)userdata;
    json_t *notes = store_list();
    return json_response(request, 200, notes ? json_pack("{so}", "notes", notes) : NULL);
}

static csgi_response *create_note(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *type = csgi_request_content_type(request);
    if (!type || strcmp(type, "application/json") != 0)
        return csgi_handler_error(request, 415, "send the note as application/json");
    json_t *body;
    csgi_response *error;
    if (csgi_handler_json(request, 64 * 1024, &body, &error) != 0)
        return error; /* 400 (with where the JSON broke) or 413 */
    const char *text = json_string_value(json_object_get(body, "text"));
    if (!json_is_object(body) || !text)
        return csgi_handler_error(request, 422, "a note is an object with a \"text\" string");

    json_t *created = store_add(text);
    if (!created)
        return NULL;
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(created, "id")));
    const char *args[] = {"id", id, NULL};
    const char *location;
    csgi_response *response = json_response(request, 201, json_pack("{so}", "note", created));
    if (!response || csgi_router_url(csgi_request_environ(request), "show", args, &location) != 0 ||
        csgi_response_set_location(response, location) != 0)
        return NULL;
    return response;
}

static csgi_response *show_note(csgi_request *request, void *userdata)
{
    (void)userdata;
    json_t *found = store_get(note_id(request));
    if (!found)
        return csgi_handler_error(request, 404, "no such note");
    return json_response(request, 200, json_pack("{so}", "note", found));
}

static csgi_response *delete_note(csgi_request *request, void *userdata)
{
    (void)userdata;
    if (!store_remove(note_id(request)))
        return csgi_handler_error(request, 404, "no such note");
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_status(response, 204) != 0)
        return NULL;
    return response;
}

/* ---- The request-id filter -------------------------------------------------------- */

/* Each request gets an id ("req-" and a number unique in the process) in
   the environ key notes.request_id and the X-Request-Id response header,
   and one log line. */
static atomic_ullong request_ids;

static csgi_response *add_request_id(csgi_request *request, csgi_response *response, void *id)
{
    (void)request;
    return csgi_response_set_header(response, "X-Request-Id", id) == 0 ? response : NULL;
}

static csgi_response *request_id(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    char *id = csgi_environ_alloc(environ, 32);
    if (!id)
        return NULL;
    snprintf(id, 32, "req-%llu", (unsigned long long)atomic_fetch_add(&request_ids, 1) + 1);
    if (csgi_environ_set(environ, "notes.request_id", id) != 0)
        return NULL;
    csgi_environ_log_at(environ, CSGI_LOG_INFO, "request %s", id);
    return csgi_handler_forward_then(request, next, add_request_id, id);
}

/* ---- The body-size filter ------------------------------------------------------------ */

/* Refuses bodies longer than max_body bytes: at once when Content-Length
   says so, else (chunked) by a csgi.input that fails past the limit, which
   the handler behind reports as 413 naming the limit. The body is not
   read here: it still streams to whatever is behind. */
typedef struct size_limit {
    long long max;
} size_limit;

typedef struct limited_input {
    csgi_input *inner;
    csgi_input *outer;
    unsigned long long max, seen;
} limited_input;

static long limited_read(void *state, void *buf, size_t len)
{
    limited_input *l = state;
    if (len > l->max - l->seen + 1) /* one byte more tells the body is too long */
        len = (size_t)(l->max - l->seen + 1);
    long n = csgi_input_read(l->inner, buf, len);
    if (n > 0 && (l->seen += (unsigned long long)n) > l->max)
        return CSGI_ETOOBIG;
    return n;
}

static void limited_inner_ready(csgi_input *inner, void *state)
{
    (void)inner;
    limited_input *l = state;
    csgi_input_notify(l->outer);
}

static void limited_wait(void *state, csgi_input *input, int waiting)
{
    limited_input *l = state;
    l->outer = input;
    csgi_input_on_ready(l->inner, waiting ? limited_inner_ready : NULL, l);
}

static const csgi_input_type limited_type = {"sizelimit", limited_read, limited_wait, NULL};

static csgi_response *sizelimit(csgi_request *request, csgi_app *next, void *userdata)
{
    const size_limit *limit = userdata;
    csgi_environ *environ = csgi_request_environ(request);
    const char *length = csgi_environ_get(environ, "CONTENT_LENGTH");
    if (length && strtoll(length, NULL, 10) > limit->max) {
        char detail[64];
        snprintf(detail, sizeof(detail), "the body is longer than %lld bytes", limit->max);
        return csgi_handler_error(request, 413, detail);
    }
    limited_input *l = csgi_environ_alloc(environ, sizeof(*l));
    if (!l)
        return NULL;
    *l = (limited_input){csgi_environ_input(environ), NULL, (unsigned long long)limit->max, 0};
    csgi_input *input =
        csgi_input_new(environ, &limited_type, l, length ? strtoll(length, NULL, 10) : -1);
    if (!input || csgi_input_set_limit(input, (uint64_t)limit->max) != 0 ||
        csgi_environ_set_input(environ, input) != 0)
        return NULL;
    return csgi_handler_forward(request, next);
}

static int sizelimit_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                           const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    long long max;
    int rc = csgi_conf_asint(local_conf, "max_body", 114688, &max, error);
    if (rc != 0)
        return rc;
    if (max < 0) {
        csgi_conf_error(local_conf, "max_body", error, "must not be negative");
        return CSGI_EINVAL;
    }
    size_limit *limit = malloc(sizeof(*limit));
    if (!limit)
        return CSGI_ENOMEM;
    limit->max = max;
    *userdata = limit;
    *destroy = free;
    return 0;
}

/* ---- Factories ------------------------------------------------------------------------ */

CSGI_HANDLER_APP_FACTORY(list_factory, list_notes, NULL)
CSGI_HANDLER_APP_FACTORY(create_factory, create_note, NULL)
CSGI_HANDLER_APP_FACTORY(show_factory, show_note, NULL)
CSGI_HANDLER_APP_FACTORY(delete_factory, delete_note, NULL)
CSGI_HANDLER_FILTER_FACTORY(request_id_factory, request_id, NULL)
CSGI_HANDLER_FILTER_FACTORY(sizelimit_factory, sizelimit, sizelimit_setup)

extern const csgi_entry_point csgi_plugin_entry_points[];

const csgi_entry_point csgi_plugin_entry_points[] = {
    {"list_factory", CSGI_FACTORY_APP, list_factory, NULL, NULL},
    {"create_factory", CSGI_FACTORY_APP, create_factory, NULL, NULL},
    {"show_factory", CSGI_FACTORY_APP, show_factory, NULL, NULL},
    {"delete_factory", CSGI_FACTORY_APP, delete_factory, NULL, NULL},
    {"request_id_factory", CSGI_FACTORY_FILTER, NULL, request_id_factory, NULL},
    {"sizelimit_factory", CSGI_FACTORY_FILTER, NULL, sizelimit_factory, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
