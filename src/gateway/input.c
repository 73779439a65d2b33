/*
 * csgi.input: the request body as a non-blocking stream (PEP 3333's
 * wsgi.input), and the streams middleware puts in its place
 * (csgi_input_new). The server's stream reads the environ source's
 * provider; bytes that readline and read_all must keep between calls wait
 * in a buffer in the request's arena. The end and errors stick.
 */
#include "gateway/input.h"

#include "common/arena.h"
#include "common/vec.h"
#include "http/parser.h"

#include <csgi/environ.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Body bytes asked of the provider at once when nothing says how many. */
#define READ_CHUNK 4096
#define READ_GUESS 512

void csgi_input__init(csgi_input *input, csgi_environ *environ, const csgi_environ__source *source)
{
    memset(input, 0, sizeof(*input));
    input->environ = environ;
    input->source = source;
    input->length = -1;
    input->limit = -1;
}

/* Bytes the server's stream can read now without waiting. */
static size_t server_buffered(const csgi_input *input)
{
    const csgi_input__provider *provider = input->source->input;
    return provider && provider->buffered ? provider->buffered(input->source->input_context) : 0;
}

static void input_close(void *data)
{
    csgi_input *input = data;
    if (input->type->close)
        input->type->close(input->state);
}

csgi_input *csgi_input_new(csgi_environ *environ, const csgi_input_type *type, void *state,
                           int64_t length)
{
    csgi_input *input = environ && type && type->read && length >= -1
                            ? csgi_arena__alloc(csgi_environ__arena(environ), sizeof(*input))
                            : NULL;
    if (input) {
        memset(input, 0, sizeof(*input));
        input->environ = environ;
        input->type = type;
        input->state = state;
        input->length = length;
        input->limit = -1;
        if (csgi_arena__defer(csgi_environ__arena(environ), input_close, input) != 0)
            input = NULL;
    }
    if (!input && type && type->close)
        type->close(state);
    return input;
}

int csgi_input_set_limit(csgi_input *input, uint64_t max)
{
    if (!input || !input->type || max > INT64_MAX)
        return CSGI_EINVAL;
    input->limit = (int64_t)max;
    return 0;
}

int64_t csgi_input_limit(csgi_input *input)
{
    return input ? input->limit : -1;
}

int csgi_input__refused(csgi_input *input)
{
    return input && input->status == CSGI_ETOOBIG;
}

/* Record what the provider answered: the end and errors stick. */
static long input_note(csgi_input *input, long n)
{
    if (n > 0)
        input->pulled += (uint64_t)n;
    else if (n == 0)
        input->status = CSGI_INPUT__ENDED;
    else if (n != CSGI_EAGAIN)
        input->status = (int)n;
    return n;
}

static long input_pull(csgi_input *input, void *buf, size_t len)
{
    if (input->type)
        return input_note(input, input->type->read(input->state, buf, len));
    const csgi_environ__source *source = input->source;
    if (!source->input || !source->input->read)
        return input_note(input, 0);
    if (len > LONG_MAX)
        len = LONG_MAX;
    return input_note(input, source->input->read(source->input_context, buf, len));
}

/* Make room for more bytes after the kept ones: move them to the front, or
   into a larger block (csgi_vec__grow's rule). */
static int input_reserve(csgi_input *input, size_t more)
{
    size_t held = input->end - input->start;
    if (input->capacity - input->end >= more)
        return 0;
    if (input->capacity - held >= more) {
        memmove(input->buffer, input->buffer + input->start, held);
        input->start = 0;
        input->end = held;
        return 0;
    }
    /* No cap here: whoever reads holds the body to its own maximum. */
    size_t capacity;
    int rc = more > SIZE_MAX - held
                 ? CSGI_ENOMEM
                 : csgi_vec__grow(input->capacity, held + more, 1, SIZE_MAX, &capacity);
    if (rc != 0)
        return rc;
    char *buffer = csgi_arena__alloc(csgi_environ__arena(input->environ), capacity);
    if (!buffer)
        return CSGI_ENOMEM;
    if (held)
        memcpy(buffer, input->buffer + input->start, held);
    input->buffer = buffer;
    input->start = 0;
    input->end = held;
    input->capacity = capacity;
    return 0;
}

long csgi_input_read(csgi_input *input, void *buf, size_t len)
{
    if (!input || !buf || !len)
        return CSGI_EINVAL;
    size_t held = input->end - input->start;
    if (held) {
        size_t n = held < len ? held : len;
        if (n > LONG_MAX)
            n = LONG_MAX;
        memcpy(buf, input->buffer + input->start, n);
        input->start += n;
        return (long)n;
    }
    if (input->status != CSGI_INPUT__READING)
        return input->status == CSGI_INPUT__ENDED ? 0 : input->status;
    return input_pull(input, buf, len);
}

long csgi_input_readline(csgi_input *input, char *buf, size_t len)
{
    if (!input || !buf || len < 2)
        return CSGI_EINVAL;
    size_t limit = len - 1 > LONG_MAX ? LONG_MAX : len - 1;

    for (;;) {
        size_t held = input->end - input->start;
        size_t take = 0;
        const char *lf =
            held ? memchr(input->buffer + input->start, '\n', held < limit ? held : limit) : NULL;
        if (lf)
            take = (size_t)(lf - (input->buffer + input->start)) + 1;
        else if (held >= limit)
            take = limit;
        else if (input->status == CSGI_INPUT__ENDED)
            take = held; /* the last line has no LF; 0 at the end */
        else if (input->status != CSGI_INPUT__READING)
            return input->status;

        if (take || input->status == CSGI_INPUT__ENDED) {
            if (take)
                memcpy(buf, input->buffer + input->start, take);
            buf[take] = '\0';
            input->start += take;
            return (long)take;
        }

        /* Partial bytes stay in the buffer until the line is complete. */
        size_t want = limit - held < READ_CHUNK ? limit - held : READ_CHUNK;
        if (input_reserve(input, want) != 0)
            return CSGI_ENOMEM;
        long n = input_pull(input, input->buffer + input->end, want);
        if (n == CSGI_EAGAIN)
            return n;
        if (n > 0)
            input->end += (size_t)n;
    }
}

int csgi_input_read_all(csgi_input *input, size_t max, const char **out, size_t *len)
{
    if (!input || !out)
        return CSGI_EINVAL;
    /* The byte count when known: CONTENT_LENGTH for the server's stream,
       what a middleware declared for its own. */
    int64_t total = csgi_input__length(input);
    int known = total >= 0;

    /* A body announced too long is refused before a byte is read (and
       before a "100 Continue" invites the client to send it). What counts
       is what is left: bytes already read and delivered are not returned. */
    if (known) {
        uint64_t left = input->pulled < (uint64_t)total ? (uint64_t)total - input->pulled : 0;
        if (left > max || input->end - input->start > max - left)
            return CSGI_ETOOBIG;
    }

    for (;;) {
        size_t held = input->end - input->start;
        if (held > max)
            return CSGI_ETOOBIG;
        if (input->status < 0)
            return input->status;
        if (input->status == CSGI_INPUT__ENDED) {
            if (input_reserve(input, 1) != 0)
                return CSGI_ENOMEM;
            input->buffer[input->end] = '\0';
            *out = input->buffer + input->start;
            if (len)
                *len = held;
            /* The body is handed out: later reads must not write over it. */
            input->buffer = NULL;
            input->start = input->end = input->capacity = 0;
            return 0;
        }

        /* Ask for the rest of a known body at once, else for what the
           provider has buffered, with room for the final NUL: one
           allocation when the length is known. Never more than max + 1
           bytes, which is enough to tell the body is too long. When
           nothing is announced, probe with the room there is (at least
           the NUL's byte), which tells the end or EAGAIN without growing
           the buffer. */
        size_t want;
        if (known) {
            uint64_t left = input->pulled < (uint64_t)total ? (uint64_t)total - input->pulled : 0;
            want = (size_t)left;
        } else {
            want = input->type ? 0 : server_buffered(input);
        }
        if (want) {
            if (want - 1 > max - held)
                want = max - held + 1;
            if (want > SIZE_MAX - 1 || input_reserve(input, want + 1) != 0)
                return CSGI_ENOMEM;
        } else {
            if (input->capacity == input->end && input_reserve(input, known ? 1 : READ_GUESS) != 0)
                return CSGI_ENOMEM;
            want = input->capacity - input->end;
            if (want - 1 > max - held)
                want = max - held + 1;
        }
        long n = input_pull(input, input->buffer + input->end, want);
        if (n == CSGI_EAGAIN)
            return CSGI_EAGAIN;
        if (n > 0)
            input->end += (size_t)n;
    }
}

void csgi_input_on_ready(csgi_input *input, csgi_input_ready_fn ready, void *userdata)
{
    if (!input)
        return;
    input->ready = ready;
    input->ready_userdata = ready ? userdata : NULL;
    /* A middleware's stream waits on what it reads from. */
    if (input->type && input->type->wait)
        input->type->wait(input->state, input, ready != NULL);
}

int csgi_input__pending(csgi_input *input)
{
    if (!input || input->status != CSGI_INPUT__READING)
        return 0;
    if (input->type)
        return 1;
    const csgi_http__head *head = input->source->head;
    if (head->body == CSGI_HTTP__BODY_NONE)
        return 0;
    if (head->body == CSGI_HTTP__BODY_LENGTH && input->pulled >= head->content_length)
        return 0;
    /* Bytes the server holds and nobody pulled bring no news later: the
       reader should read them. (Bytes read_all keeps are not that: they
       wait for the rest.) */
    return server_buffered(input) == 0;
}

int64_t csgi_input__length(const csgi_input *input)
{
    if (input->type)
        return input->length;
    const csgi_http__head *head = input->source->head;
    return head->body == CSGI_HTTP__BODY_LENGTH ? (int64_t)head->content_length : -1;
}

int csgi_input__has_body(csgi_input *input)
{
    if (input->type)
        return input->length != 0;
    const csgi_http__head *head = input->source->head;
    return head->body != CSGI_HTTP__BODY_NONE &&
           !(head->body == CSGI_HTTP__BODY_LENGTH && head->content_length == 0);
}

const csgi_input_type *csgi_input__type(const csgi_input *input)
{
    return input->type;
}

void csgi_input_notify(csgi_input *input)
{
    if (!input)
        return;
    csgi_input_ready_fn ready = input->ready;
    void *userdata = input->ready_userdata;

    /* Cleared first: the callback may ask again. */
    input->ready = NULL;
    input->ready_userdata = NULL;
    if (ready)
        ready(input, userdata);
}
