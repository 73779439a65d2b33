/*
 * The request body as a client sends it, and the server's side of it
 * (include/csgi/testing.h, csgi_test_request_set_body_delivery()).
 *
 * The client writes the body after the head: as given under its
 * Content-Length, framed into chunks when it is sent chunked, or as given
 * when the test wrote its own Transfer-Encoding field. Those bytes reach
 * the server with the head, or later, one piece per turn of the run's
 * loop; a client that sent "Expect: 100-continue" sends nothing until the
 * server asks for the body. The server's side mirrors the engine's
 * (src/http/request_body.c, connection.c): arrived bytes are decoded at
 * once (the chunked framing by the engine's own decoder) into a buffer
 * that csgi.input reads, a read that finds nothing answers CSGI_EAGAIN and
 * makes the next arrival wake the reader (the engine's on_body), the
 * first read sends "100 Continue" when the response has not started, and
 * a body that breaks ends the request with the engine's answer.
 */
#include "testing/testing_private.h"

#include "common/arena.h"
#include "common/token.h"

#include <event2/event.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Where the body is: the engine's enum csgi_http__body_state. */
enum upload_state { UPLOAD_READING, UPLOAD_COMPLETE, UPLOAD_FAILED };

/* Expect: 100-continue: the engine's enum csgi_http__continue_state. */
enum continue_state { CONTINUE_NONE, CONTINUE_EXPECTED, CONTINUE_SENT };

/* 1 when the test wrote its own Transfer-Encoding field: the body then
   goes out as given, framing and all. */
static int own_transfer_encoding(const csgi_test_request *request)
{
    for (const csgi_test__pair *h = request->headers; h; h = h->next)
        if (csgi_token__lookup(h->name, strlen(h->name)) == CSGI_TOKEN__TRANSFER_ENCODING)
            return 1;
    return 0;
}

size_t csgi_test__upload_field(const csgi_test_request *request, char *out)
{
    if (request->chunked)
        return (size_t)sprintf(out, "Transfer-Encoding: chunked\r\n");
    if (request->has_body && !own_transfer_encoding(request))
        return (size_t)sprintf(out, "Content-Length: %zu\r\n", request->body_len);
    return 0;
}

/* The bytes of one chunk of len bytes on the wire: size line, data, CRLF. */
static size_t chunk_wire_len(size_t len)
{
    size_t digits = 1;
    for (size_t rest = len >> 4; rest; rest >>= 4)
        digits++;
    return digits + 2 + len + 2;
}

/* The body framed into chunks of chunk_size bytes (0: one chunk), then
   the last-chunk and the empty trailer, in arena. */
static int frame_chunks(csgi_arena *arena, const char *body, size_t len, size_t chunk_size,
                        const char **out, size_t *out_len)
{
    if (!chunk_size || chunk_size > len)
        chunk_size = len ? len : 1;
    size_t chunks = len / chunk_size + (len % chunk_size != 0);
    /* Each chunk adds at most 16 hex digits and two CRLFs. */
    if (chunks > (SIZE_MAX - len - 8) / 20)
        return CSGI_ENOMEM;
    char *wire = csgi_arena__alloc(arena, len + chunks * 20 + 8);
    if (!wire)
        return CSGI_ENOMEM;
    char *p = wire;
    for (size_t done = 0; done < len; done += chunk_size) {
        size_t n = len - done < chunk_size ? len - done : chunk_size;
        p += sprintf(p, "%zx\r\n", n);
        memcpy(p, body + done, n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    memcpy(p, "0\r\n\r\n", 5);
    *out = wire;
    *out_len = (size_t)(p + 5 - wire);
    return 0;
}

/* The body cannot be read on: record why, as the engine's body_fail. */
static void upload_fail(csgi_test__upload *upload, int error, int status, const char *why)
{
    upload->state = UPLOAD_FAILED;
    upload->error = error;
    upload->status = status;
    upload->why = why;
}

/* Decode what arrived and was not taken yet into the reader's buffer: the
   engine's csgi_http__body_pump, with the server's own chunked decoder. A
   trailer section is checked by the decoder and dropped: nothing in the
   environ shows it. */
static void upload_pump(csgi_test__upload *upload)
{
    while (upload->state == UPLOAD_READING && upload->consumed < upload->sent) {
        const char *bytes = upload->wire + upload->consumed;
        size_t available = upload->sent - upload->consumed;
        if (upload->framing == CSGI_HTTP__BODY_LENGTH) {
            size_t n = available < upload->left ? available : (size_t)upload->left;
            memcpy(upload->data + upload->end, bytes, n);
            upload->end += n;
            upload->consumed += n;
            upload->left -= n;
            if (upload->left == 0)
                upload->state = UPLOAD_COMPLETE;
            continue;
        }
        size_t consumed = 0;
        csgi_http__error error = {0, NULL};
        switch (csgi_http__chunked_decode(&upload->decoder, bytes, available, &consumed, &error)) {
        case CSGI_HTTP__CHUNK_DATA:
            memcpy(upload->data + upload->end, bytes, consumed);
            upload->end += consumed;
            break;
        case CSGI_HTTP__CHUNK_TRAILER:
        case CSGI_HTTP__CHUNK_FRAMING: break;
        case CSGI_HTTP__CHUNK_DONE: upload->state = UPLOAD_COMPLETE; break;
        default:
            upload_fail(upload, error.status == 400 ? CSGI_EPARSE : CSGI_ETOOBIG, error.status,
                        error.reason);
            return;
        }
        upload->consumed += consumed;
    }
}

/* The wire bytes of the next piece: the rest when the body goes at once,
   else one chunk of the client's (the last-chunk alone at the end), whose
   body bytes go to *data, or piece_size bytes. */
static size_t next_piece(const csgi_test__run *run, size_t *data)
{
    const csgi_test__upload *upload = &run->upload;
    const csgi_test_request *request = run->request;
    size_t rest = upload->wire_len - upload->sent;
    size_t piece = request->piece_size;
    *data = 0;
    if (request->delivery != CSGI_TEST_DELIVERY_LATE)
        return rest;
    if (upload->client_chunks) {
        size_t data_left = request->body_len - upload->chunk_data;
        if (data_left == 0)
            return rest; /* the last-chunk and the empty trailer */
        *data = piece && piece < data_left ? piece : data_left;
        return chunk_wire_len(*data);
    }
    return piece && piece < rest ? piece : rest;
}

static void on_arrival(evutil_socket_t fd, short what, void *userdata);

/* The next piece arrives on the loop's next turn. */
static void upload_schedule(csgi_test__run *run)
{
    csgi_test__upload *upload = &run->upload;
    static const struct timeval now = {0, 0};
    if (upload->sent >= upload->wire_len)
        return;
    struct event_base *base = csgi_test__run_base(run);
    if (base && !upload->arrival)
        upload->arrival = evtimer_new(base, on_arrival, run);
    if (!upload->arrival || evtimer_add(upload->arrival, &now) != 0)
        csgi_test__run_failed(run, CSGI_ENOMEM);
}

/* A piece reached the server: the engine's connection reads it, decodes
   it, then answers a broken body or wakes a reader that waits. */
static void on_arrival(evutil_socket_t fd, short what, void *userdata)
{
    csgi_test__run *run = userdata;
    csgi_test__upload *upload = &run->upload;
    (void)fd;
    (void)what;
    if (run->ended || csgi_driver__finished(&run->driver))
        return; /* the response is complete: the rest is drained unseen */
    size_t data = 0;
    upload->sent += next_piece(run, &data);
    upload->chunk_data += data;
    upload_pump(upload);
    if (upload->state == UPLOAD_FAILED) {
        csgi_test__run_abort(run, upload->status, upload->why);
        return;
    }
    upload_schedule(run);
    if (upload->waiting && (upload->end > upload->start || upload->state != UPLOAD_READING)) {
        upload->waiting = 0;
        csgi_environ__input_ready(run->environ);
    }
}

int csgi_test__upload_start(csgi_test__run *run, const csgi_http__head *head, csgi_arena *arena)
{
    csgi_test__upload *upload = &run->upload;
    const csgi_test_request *request = run->request;
    memset(upload, 0, sizeof(*upload));
    upload->framing = (unsigned char)head->body;
    upload->state = UPLOAD_COMPLETE;
    if (head->body == CSGI_HTTP__BODY_LENGTH && head->content_length > 0) {
        upload->left = head->content_length;
        upload->state = UPLOAD_READING;
    } else if (head->body == CSGI_HTTP__BODY_CHUNKED) {
        csgi_http__chunked_init(&upload->decoder);
        upload->state = UPLOAD_READING;
    }
    if (upload->state != UPLOAD_READING)
        return 0;
    upload->has_body = 1;

    upload->wire = request->body;
    upload->wire_len = request->body_len;
    if (request->chunked) {
        int rc = frame_chunks(arena, request->body, request->body_len, request->piece_size,
                              &upload->wire, &upload->wire_len);
        if (rc != 0)
            return rc;
        upload->client_chunks = 1;
    }
    /* Decoded bytes are never more than the wire's. */
    upload->data = csgi_arena__alloc(arena, upload->wire_len ? upload->wire_len : 1);
    if (!upload->data)
        return CSGI_ENOMEM;

    /* A client that expects 100-continue waits for the server to ask. */
    if (head->expect_continue) {
        upload->continue_state = CONTINUE_EXPECTED;
        return 0;
    }
    if (request->delivery == CSGI_TEST_DELIVERY_LATE) {
        upload_schedule(run);
        return run->error;
    }
    /* Bytes that came with the head are checked before the application
       is called, as the engine does: a broken body is refused. */
    upload->sent = upload->wire_len;
    upload_pump(upload);
    return upload->state == UPLOAD_FAILED ? CSGI_EPARSE : 0;
}

/* The engine's read_prepare and body_read. */
static long upload_read(void *context, void *buf, size_t len)
{
    csgi_test__run *run = context;
    csgi_test__upload *upload = &run->upload;
    if (run->ended || !upload->has_body)
        return upload->state == UPLOAD_FAILED ? upload->error : 0;
    if (upload->continue_state == CONTINUE_EXPECTED) {
        /* The first read is the server's "go ahead": "100 Continue" goes
           out unless the response has started, and the client sends the
           body (a client that got no 100 sends it once its wait is over). */
        upload->continue_state = CONTINUE_SENT;
        run->response->continued = !run->head_sent;
        upload_schedule(run);
        if (run->error)
            return run->error;
    }
    size_t held = upload->end - upload->start;
    if (held == 0) {
        if (upload->state == UPLOAD_READING) {
            upload->waiting = 1;
            return CSGI_EAGAIN;
        }
        return upload->state == UPLOAD_FAILED ? upload->error : 0;
    }
    size_t n = held < len ? held : len;
    if (n > LONG_MAX)
        n = LONG_MAX;
    memcpy(buf, upload->data + upload->start, n);
    upload->start += n;
    return (long)n;
}

static size_t upload_buffered(void *context)
{
    const csgi_test__run *run = context;
    return run->upload.end - run->upload.start;
}

/* The request's TLS (csgi_test_request_set_tls), as the engine's
   connection would give it. */
static const csgi_tls__info *upload_tls(void *context)
{
    const csgi_test__run *run = context;
    return run->request->has_tls ? &run->request->tls : NULL;
}

const csgi_input__provider csgi_test__upload_input = {upload_read, upload_buffered, upload_tls};
