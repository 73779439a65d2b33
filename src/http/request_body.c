/*
 * The request body: moving it from the socket into the request's body
 * buffer with its framing decoded (or discarding it, when the connection
 * drains a body nobody read), the trailer fields, 100 Continue, and the
 * consumer's API for reading it (csgi_http__request_read and friends).
 *
 * Like every consumer call, the reading functions do no socket I/O: they
 * take what connection.c read, and touch the connection so its state
 * machine reads more or answers a broken body.
 */
#include "common/arena.h"
#include "http/private.h"

#include <csgi/common.h>

#include <event2/buffer.h>

#include <stdint.h>

/* ---- Moving the body ----------------------------------------------------- */

/* The body cannot be read on: record why (the log line and the answer
   are for whoever ends the request). */
static void body_fail(csgi_http__request *req, int err, int status, const char *why)
{
    req->body_state = CSGI_HTTP__BODY_FAILED;
    req->body_error = err;
    req->body_status = status;
    req->body_why = why;
}

/* Errors are recorded with body_fail: whoever calls next sees them. */
void csgi_http__body_pump(csgi_http__conn *conn, csgi_http__request *req, int discard)
{
    const csgi_http__options *options = csgi_http__conn_options(conn);
    while (req->body_state == CSGI_HTTP__BODY_READING) {
        size_t available = evbuffer_get_length(conn->in);
        if (available == 0)
            break;
        size_t room = SIZE_MAX;
        if (!discard) {
            size_t buffered = evbuffer_get_length(req->body);
            if (buffered >= options->body_buffer)
                break;
            room = options->body_buffer - buffered;
        }

        if (req->head.body == CSGI_HTTP__BODY_LENGTH) {
            size_t n = available < room ? available : room;
            if (n > req->body_left)
                n = (size_t)req->body_left;
            if (discard)
                evbuffer_drain(conn->in, n);
            else
                evbuffer_remove_buffer(conn->in, req->body, n);
            req->body_left -= n;
            req->body_received += n;
            if (req->body_left == 0)
                req->body_state = CSGI_HTTP__BODY_COMPLETE;
            continue;
        }

        struct evbuffer_iovec extent;
        if (evbuffer_peek(conn->in, -1, NULL, &extent, 1) < 1)
            break;
        size_t len = extent.iov_len < room ? extent.iov_len : room;
        size_t consumed = 0;
        csgi_http__error error = {0, NULL};
        csgi_http__chunk_result r =
            csgi_http__chunked_decode(&req->chunked, extent.iov_base, len, &consumed, &error);
        switch (r) {
        case CSGI_HTTP__CHUNK_DATA: /* the decoder holds the sizes to max_body */
            if (discard)
                evbuffer_drain(conn->in, consumed);
            else
                evbuffer_remove_buffer(conn->in, req->body, consumed);
            req->body_received += consumed;
            break;
        case CSGI_HTTP__CHUNK_TRAILER:
            if (!req->trailer_bytes) {
                req->trailer_bytes = csgi_arena__alloc(&req->arena, req->chunked.max_trailer);
                if (!req->trailer_bytes) {
                    body_fail(req, CSGI_ENOMEM, 500, "out of memory for the trailer");
                    return;
                }
            }
            if (req->trailer_len + consumed > req->chunked.max_trailer) { /* the decoder's limit */
                body_fail(req, CSGI_ETOOBIG, 431, "trailer section too large");
                return;
            }
            evbuffer_remove(conn->in, req->trailer_bytes + req->trailer_len, consumed);
            req->trailer_len += consumed;
            break;
        case CSGI_HTTP__CHUNK_FRAMING: evbuffer_drain(conn->in, consumed); break;
        case CSGI_HTTP__CHUNK_DONE:
            evbuffer_drain(conn->in, consumed);
            req->body_state = CSGI_HTTP__BODY_COMPLETE;
            if (req->trailer_len) {
                size_t capacity = options->limits.max_headers;
                req->trailers = csgi_arena__alloc(&req->arena, capacity * sizeof(*req->trailers));
                if (!req->trailers) {
                    body_fail(req, CSGI_ENOMEM, 500, "out of memory for the trailer");
                    return;
                }
                if (csgi_http__parse_fields(req->trailer_bytes, req->trailer_len, req->trailers,
                                            capacity, &req->trailer_count, NULL, &error) != 0) {
                    body_fail(req, error.status == 400 ? CSGI_EPARSE : CSGI_ETOOBIG, error.status,
                              error.reason);
                    req->trailer_count = 0;
                    return;
                }
            }
            break;
        default:
            body_fail(req, error.status == 400 ? CSGI_EPARSE : CSGI_ETOOBIG, error.status,
                      error.reason);
            return;
        }
    }
    if (req->body_state == CSGI_HTTP__BODY_READING && (conn->peer_eof || conn->io_error) &&
        evbuffer_get_length(conn->in) == 0) {
        body_fail(req, conn->io_error ? CSGI_EIO : CSGI_ECLOSED, 0,
                  "client went away during the body");
    }
}

/* ---- The consumer's API: the body ------------------------------------------ */

const csgi_http__header *csgi_http__request_trailers(const csgi_http__request *req, size_t *count)
{
    *count = req->body_state == CSGI_HTTP__BODY_COMPLETE ? req->trailer_count : 0;
    return req->trailers;
}

static void send_continue(csgi_http__request *req)
{
    if (req->continue_state != CSGI_HTTP__CONTINUE_EXPECTED)
        return;
    req->continue_state = CSGI_HTTP__CONTINUE_SENT;
    if (req->response_state == CSGI_HTTP__RESPONSE_NONE) {
        evbuffer_add(csgi_http__conn_out(req->conn), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        csgi_http__conn_touch(req->conn);
    }
}

/* The start of body_read(): returns 1 when bytes can be read, else the
   value to return. */
static ssize_t read_prepare(csgi_http__request *req)
{
    if (req->done || !req->body)
        return req->body_state == CSGI_HTTP__BODY_FAILED ? req->body_error : 0;
    send_continue(req);
    if (evbuffer_get_length(req->body) == 0 && req->body_state == CSGI_HTTP__BODY_READING) {
        csgi_http__body_pump(req->conn, req, 0);
        if (req->body_state == CSGI_HTTP__BODY_FAILED)
            csgi_http__conn_touch(req->conn); /* the engine answers the error */
        if (evbuffer_get_length(req->body) == 0 && req->body_state == CSGI_HTTP__BODY_READING) {
            req->body_waiting = 1;
            csgi_http__conn_touch(req->conn); /* re-arm reading with the body timeout */
            return CSGI_EAGAIN;
        }
    }
    if (evbuffer_get_length(req->body) == 0)
        return req->body_state == CSGI_HTTP__BODY_FAILED ? req->body_error : 0;
    return 1;
}

/* Both read functions: move up to len body bytes into dst, or into buf
   when dst is NULL, then let more in if the read made room. */
static ssize_t body_read(csgi_http__request *req, void *buf, struct evbuffer *dst, size_t len)
{
    ssize_t ready = read_prepare(req);
    if (ready != 1)
        return ready;
    int n =
        dst ? evbuffer_remove_buffer(req->body, dst, len) : evbuffer_remove(req->body, buf, len);
    if (req->body_state == CSGI_HTTP__BODY_READING) {
        csgi_http__body_pump(req->conn, req, 0);
        csgi_http__conn_touch(req->conn);
    }
    return n;
}

ssize_t csgi_http__request_read(csgi_http__request *req, void *buf, size_t len)
{
    return body_read(req, buf, NULL, len);
}

ssize_t csgi_http__request_read_buffer(csgi_http__request *req, struct evbuffer *dst, size_t len)
{
    return body_read(req, NULL, dst, len);
}

size_t csgi_http__request_body_buffered(const csgi_http__request *req)
{
    return req->body ? evbuffer_get_length(req->body) : 0;
}

int csgi_http__request_body_complete(const csgi_http__request *req)
{
    return req->body_state == CSGI_HTTP__BODY_COMPLETE;
}
