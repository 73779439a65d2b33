/* A body that arrives in pieces (test_trickle.h). */
#include "test_trickle.h"

#include <event2/event.h>

#include <stdint.h>
#include <stdlib.h>

static size_t delivered;
static int waits;

size_t test_trickle_delivered(void)
{
    return delivered;
}

int test_trickle_waits(void)
{
    return waits;
}

void test_trickle_reset(void)
{
    delivered = 0;
    waits = 0;
}

typedef struct trickle_filter {
    csgi_app *next;
    size_t piece;
    int unsized; /* hide the length */
} trickle_filter;

/* One request's stream. */
typedef struct trickle {
    csgi_input *inner; /* the stream replaced */
    csgi_input *outer; /* ours */
    size_t piece;
    int ready;           /* the next read gives bytes (else CSGI_EAGAIN first) */
    struct event *timer; /* wakes a waiting reader */
} trickle;

static long trickle_read(void *state, void *buf, size_t len)
{
    trickle *t = state;
    if (!t->ready) {
        waits++;
        t->ready = 1; /* the timer, once a reader waits, says so */
        return CSGI_EAGAIN;
    }
    if (len > t->piece)
        len = t->piece;
    long n = csgi_input_read(t->inner, buf, len);
    if (n > 0) {
        delivered += (size_t)n;
        t->ready = 0;
    }
    return n;
}

static void trickle_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    trickle *t = arg;
    csgi_input_notify(t->outer);
}

static void trickle_wait(void *state, csgi_input *input, int waiting)
{
    trickle *t = state;
    t->outer = input;
    if (!waiting) {
        evtimer_del(t->timer);
        return;
    }
    struct timeval soon = {0, 0}; /* the loop's next turn */
    evtimer_add(t->timer, &soon);
}

static void trickle_close(void *state)
{
    trickle *t = state;
    if (t->timer)
        event_free(t->timer);
    t->timer = NULL;
}

static const csgi_input_type trickle_type = {"trickle", trickle_read, trickle_wait, trickle_close};

static csgi_body *trickle_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    trickle_filter *filter = state;
    struct event_base *base = csgi_environ_event_base(environ);
    trickle *t = csgi_environ_alloc_zeroed(environ, sizeof(*t));
    if (!base || !t)
        return NULL;
    t->inner = csgi_environ_input(environ);
    t->piece = filter->piece;
    t->timer = evtimer_new(base, trickle_fire, t);
    if (!t->timer)
        return NULL;
    const char *length = csgi_environ_get(environ, "CONTENT_LENGTH");
    int64_t declared = length && !filter->unsized ? strtoll(length, NULL, 10) : -1;
    if (filter->unsized && length && csgi_environ_remove(environ, "CONTENT_LENGTH") != 0)
        return NULL;
    csgi_input *outer = csgi_input_new(environ, &trickle_type, t, declared);
    t->outer = outer;
    if (!outer || csgi_environ_set_input(environ, outer) != 0)
        return NULL;
    return csgi_app_call(filter->next, environ, sr);
}

static void trickle_destroy(void *state)
{
    trickle_filter *filter = state;
    csgi_app_free(filter->next);
    free(filter);
}

static const csgi_app_type trickle_app_type = {"trickle", trickle_call, trickle_destroy};

static int make(csgi_app **out, csgi_app *next, size_t piece, int unsized)
{
    trickle_filter *filter = malloc(sizeof(*filter));
    if (!filter) {
        csgi_app_free(next);
        return CSGI_ENOMEM;
    }
    filter->next = next;
    filter->piece = piece ? piece : 1;
    filter->unsized = unsized;
    return csgi_app_new(out, &trickle_app_type, filter);
}

int test_trickle_new(csgi_app **out, csgi_app *next, size_t piece)
{
    return make(out, next, piece, 0);
}

int test_trickle_unsized_new(csgi_app **out, csgi_app *next, size_t piece)
{
    return make(out, next, piece, 1);
}
