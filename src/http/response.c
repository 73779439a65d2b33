/*
 * The response: the head the engine writes for the consumer (status line,
 * Date, Server, the consumer's fields, the framing it chose and the
 * keep-alive decision), the body's framing (Content-Length or chunked),
 * finishing and aborting, and the engine's own error responses.
 *
 * Like every consumer call, these only fill the connection's output buffer
 * and then touch the connection: its state machine (connection.c) writes.
 */
#include "common/chartab.h"
#include "common/error_page.h"
#include "common/status.h"
#include "http/private.h"

#include <csgi/common.h>

#include <event2/buffer.h>

#include <stdint.h>
#include <string.h>
#include <unistd.h>

enum framing { FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE, FRAME_NONE };

/* ---- Error responses ---------------------------------------------------- */

/* The body and Content-Type of the engine's error page for status: the
   options' renderer's page, or the text page when there is none or it
   failed (logged: a broken renderer is the operator's to fix). On the
   stack: a flood of malformed requests allocates nothing here. */
static size_t error_page(csgi_http__conn *conn, int status, const char *reason,
                         char page[CSGI_ERROR_PAGE_MAX + 1], const char **content_type)
{
    const csgi_http__options *options = &conn->loop->engine->options;
    size_t len = 0;
    if (options->error_render) {
        int rc = csgi_error_page__render(page, CSGI_ERROR_PAGE_MAX + 1, &len, content_type, status,
                                         reason, NULL, options->error_render,
                                         options->error_render_userdata);
        if (rc == 0)
            return len;
        if (rc > 0)
            csgi_http__conn_log(conn, CSGI_LOG__WARN,
                                "error renderer: the %d page has %zu bytes (at most %d): "
                                "sent the text page",
                                status, len, CSGI_ERROR_PAGE_MAX);
        else
            csgi_http__conn_log(conn, CSGI_LOG__WARN,
                                "error renderer failed for %d (%s): sent the text page", status,
                                csgi_strerror(rc));
    }
    /* the same page as csgi_response_error()'s text/plain body */
    *content_type = CSGI_ERROR_PAGE__TEXT_TYPE;
    return csgi_status__error_text(page, CSGI_ERROR_PAGE_MAX, status, NULL);
}

/* Queue a complete error response that closes the connection: the
   engine's own answers, and an aborted response that had not started. */
size_t csgi_http__queue_error_response(csgi_http__conn *conn, int status)
{
    const char *reason = csgi_status__reason(status);
    csgi_http__loop *loop = conn->loop;
    csgi_http__engine *engine = loop->engine;
    char page[CSGI_ERROR_PAGE_MAX + 1];
    const char *content_type;
    size_t page_len = error_page(conn, status, reason, page, &content_type);
    csgi_http__date_refresh(loop);
    struct evbuffer *out = csgi_http__conn_out(conn);
    /* Never echo the client's version: we answer HTTP/1.1 (RFC 9110 6.2). */
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "%.*s%.*s"
                        "Content-Type: %s\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n\r\n",
                        status, reason, (int)loop->date_line_len, loop->date_line,
                        (int)engine->server_line_len,
                        engine->server_line ? engine->server_line : "", content_type, page_len);
    evbuffer_add(out, page, page_len);
    return page_len;
}

/* ---- The consumer's API: response ----------------------------------------- */

/* Write value in base 10 or 16 (lower case) at out; returns the digit
   count (at most 20). snprintf costs some 800 instructions for this. */
static size_t format_number(char *out, uint64_t value, unsigned base)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

/* Lengths first, so most names cost one compare. The byte comparison stays
   out of line: inlined into start_head it costs more in spilled registers
   than the call it saves on the rare name of the right length. */
static __attribute__((noinline)) int same_name(const char *name, const char *lower, size_t len)
{
    return csgi_char__equal_nocase(name, lower, len);
}

static int name_is(const csgi_http__header *h, const char *lower, size_t len)
{
    return h->name_len == len && same_name(h->name, lower, len);
}

static char *put(char *p, const void *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

/*
 * Write the response head into the output. The application's fields come
 * either as an array (headers/count) or already formatted as
 * "Name: value\r\n" lines (block/block_len, from the gateway, which
 * validated and formatted them while copying them once anyway).
 */
static int start_head(csgi_http__request *req, int status, const char *reason, size_t reason_len,
                      const csgi_http__header *headers, size_t count, const char *block,
                      size_t block_len, int has_date, int has_server, int64_t content_length)
{
    if (req->done || req->response_state != CSGI_HTTP__RESPONSE_NONE || req->cut)
        return CSGI_ESTATE;
    if (status < 200 || status > 599)
        return CSGI_EINVAL;
    csgi_http__conn *conn = req->conn;
    csgi_http__loop *loop = conn->loop;
    csgi_http__engine *engine = loop->engine;
    const csgi_http__options *options = &engine->options;

    int is_head = req->head.method_len == 4 && memcmp(req->head.method, "HEAD", 4) == 0;
    int no_body = status == 204 || status == 304;
    if (no_body)
        req->framing = FRAME_NONE;
    else if (content_length >= 0)
        req->framing = FRAME_LENGTH;
    else if (req->head.version_minor >= 1)
        req->framing = FRAME_CHUNKED;
    else
        req->framing = FRAME_CLOSE;

    /* Keep the connection only when the next request can be found: the
       body must be complete or small enough to drain, and a client waiting
       for 100 Continue has not sent its body at all (RFC 9110 10.1.1). */
    int keep_alive =
        req->head.keep_alive && req->framing != FRAME_CLOSE &&
        (!options->max_keepalive_requests || conn->requests < options->max_keepalive_requests) &&
        req->continue_state != CSGI_HTTP__CONTINUE_EXPECTED;
    /* A stopping loop answers what it received, then closes. */
    if (keep_alive && loop->stopping)
        keep_alive = csgi_http__conn_request_waiting(conn);
    if (keep_alive && req->body_state == CSGI_HTTP__BODY_READING) {
        if (req->head.body == CSGI_HTTP__BODY_LENGTH)
            keep_alive = req->body_left <= options->max_drain;
    }
    if (req->body_state == CSGI_HTTP__BODY_FAILED)
        keep_alive = 0;
    req->keep_alive = (unsigned char)keep_alive;

    size_t size = block_len;
    for (size_t i = 0; i < count; i++) {
        size += headers[i].name_len + headers[i].value_len + 4;
        if (name_is(&headers[i], "date", 4))
            has_date = 1;
        else if (name_is(&headers[i], "server", 6))
            has_server = 1;
    }
    if (!has_date)
        csgi_http__date_refresh(loop);
    char length_line[48];
    size_t length_line_len = 0;
    if (req->framing == FRAME_LENGTH ||
        (req->framing == FRAME_NONE && is_head && !no_body && content_length >= 0)) {
        memcpy(length_line, "Content-Length: ", 16);
        length_line_len = 16 + format_number(length_line + 16, (uint64_t)content_length, 10);
        memcpy(length_line + length_line_len, "\r\n", 2);
        length_line_len += 2;
    }
    size += 13 + reason_len + 2 + (has_date ? 0 : loop->date_line_len) +
            (has_server ? 0 : engine->server_line_len) + length_line_len + 28 + 26 + 2;

    /* An answer that starts an empty output is staged in the loop's write
       area (connection.c writes it from there); any other goes into the
       output buffer. */
    struct evbuffer_iovec vec;
    int stage = !loop->staged && !conn->tls && size <= sizeof(loop->write_area) &&
                evbuffer_get_length(conn->out) == 0;
    if (stage)
        vec.iov_base = loop->write_area;
    else if (evbuffer_reserve_space(csgi_http__conn_out(conn), (ssize_t)size, &vec, 1) != 1)
        return CSGI_ENOMEM;
    char *p = vec.iov_base;
    char status_digits[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                             (char)('0' + status % 10), ' '};
    p = put(p, "HTTP/1.1 ", 9);
    p = put(p, status_digits, 4);
    p = put(p, reason, reason_len);
    p = put(p, "\r\n", 2);
    if (!has_date)
        p = put(p, loop->date_line, loop->date_line_len);
    if (!has_server && engine->server_line)
        p = put(p, engine->server_line, engine->server_line_len);
    if (block_len)
        p = put(p, block, block_len);
    for (size_t i = 0; i < count; i++) {
        p = put(p, headers[i].name, headers[i].name_len);
        p = put(p, ": ", 2);
        p = put(p, headers[i].value, headers[i].value_len);
        p = put(p, "\r\n", 2);
    }
    if (length_line_len)
        p = put(p, length_line, length_line_len);
    else if (req->framing == FRAME_CHUNKED && !is_head)
        p = put(p, "Transfer-Encoding: chunked\r\n", 28);
    if (!keep_alive)
        p = put(p, "Connection: close\r\n", 19);
    else if (req->head.version_minor == 0)
        p = put(p, "Connection: keep-alive\r\n", 24);
    p = put(p, "\r\n", 2);
    vec.iov_len = (size_t)(p - (char *)vec.iov_base);
    if (stage) {
        loop->staged = conn;
        loop->staged_len = vec.iov_len;
    } else {
        evbuffer_commit_space(conn->out, &vec, 1);
    }
    /* For the access log: the body starts after what is queued now, which
       is the head, after a "100 Continue" that may not be out yet. */
    req->body_start = req->written + (req->continue_state == CSGI_HTTP__CONTINUE_SENT
                                          ? csgi_http__conn_out_length(conn)
                                          : vec.iov_len);

    if (is_head)
        req->framing = FRAME_NONE;
    req->status = status;
    req->response_left = req->framing == FRAME_LENGTH ? content_length : -1;
    req->response_state = CSGI_HTTP__RESPONSE_STARTED;
    csgi_http__conn_touch(conn);
    return 0;
}

int csgi_http__response_start(csgi_http__request *req, int status, const char *reason,
                              const csgi_http__header *headers, size_t count,
                              int64_t content_length)
{
    if (!reason)
        reason = csgi_status__reason(status);
    return start_head(req, status, reason, strlen(reason), headers, count, NULL, 0, 0, 0,
                      content_length);
}

int csgi_http__response_start_block(csgi_http__request *req, int status, const char *reason,
                                    size_t reason_len, const char *block, size_t block_len,
                                    unsigned flags, int64_t content_length)
{
    return start_head(req, status, reason, reason_len, NULL, 0, block, block_len,
                      (flags & CSGI_HTTP__HAS_DATE) != 0, (flags & CSGI_HTTP__HAS_SERVER) != 0,
                      content_length);
}

/* Append to the output: to the staged answer while it has room (the
   common small answer), else to the output buffer. */
static int out_add(csgi_http__conn *conn, const void *data, size_t len)
{
    csgi_http__loop *loop = conn->loop;
    if (loop->staged == conn) {
        if (len <= sizeof(loop->write_area) - loop->staged_len) {
            memcpy(loop->write_area + loop->staged_len, data, len);
            loop->staged_len += len;
            return 0;
        }
        csgi_http__conn_unstage(conn);
    }
    return evbuffer_add(conn->out, data, len);
}

/* Checks common to every write; returns 1 to write, 0 to discard, or an error. */
static int write_check(csgi_http__request *req, size_t len)
{
    if (req->done || req->response_state != CSGI_HTTP__RESPONSE_STARTED || req->cut)
        return CSGI_ESTATE;
    if (req->framing == FRAME_LENGTH) {
        if ((uint64_t)len > (uint64_t)req->response_left)
            return CSGI_ERANGE;
    }
    if (len == 0 || req->framing == FRAME_NONE) {
        req->response_sent += len;
        return 0;
    }
    return 1;
}

static int write_done(csgi_http__request *req, size_t len, int chunked)
{
    csgi_http__conn *conn = req->conn;
    if (chunked && out_add(conn, "\r\n", 2) != 0)
        return CSGI_ENOMEM;
    if (req->framing == FRAME_LENGTH)
        req->response_left -= (int64_t)len;
    req->response_sent += len;
    if (csgi_http__conn_out_length(conn) >= csgi_http__conn_options(conn)->output_buffer)
        req->want_writable = 1;
    csgi_http__conn_touch(conn);
    return 0;
}

static int chunk_prefix(csgi_http__request *req, size_t len)
{
    if (req->framing != FRAME_CHUNKED)
        return 0;
    char line[24];
    size_t n = format_number(line, len, 16);
    memcpy(line + n, "\r\n", 2);
    return out_add(req->conn, line, n + 2) != 0 ? CSGI_ENOMEM : 1;
}

int csgi_http__response_write(csgi_http__request *req, const void *data, size_t len)
{
    int r = write_check(req, len);
    if (r <= 0)
        return r;
    int chunked = chunk_prefix(req, len);
    if (chunked < 0 || out_add(req->conn, data, len) != 0)
        return CSGI_ENOMEM;
    return write_done(req, len, chunked);
}

int csgi_http__response_write_reference(csgi_http__request *req, const void *data, size_t len,
                                        void (*cleanup)(const void *data, size_t len, void *arg),
                                        void *arg)
{
    int r = write_check(req, len);
    if (r <= 0) {
        if (cleanup)
            cleanup(data, len, arg);
        return r;
    }
    int chunked = chunk_prefix(req, len);
    req->out_shared = 1;
    if (chunked < 0 ||
        evbuffer_add_reference(csgi_http__conn_out(req->conn), data, len, cleanup, arg) != 0) {
        if (cleanup)
            cleanup(data, len, arg);
        return CSGI_ENOMEM;
    }
    return write_done(req, len, chunked);
}

int csgi_http__response_write_buffer(csgi_http__request *req, struct evbuffer *buf)
{
    size_t len = evbuffer_get_length(buf);
    int r = write_check(req, len);
    if (r <= 0) {
        if (r == 0)
            evbuffer_drain(buf, len);
        return r;
    }
    int chunked = chunk_prefix(req, len);
    if (chunked < 0 || evbuffer_add_buffer(csgi_http__conn_out(req->conn), buf) != 0)
        return CSGI_ENOMEM;
    return write_done(req, len, chunked);
}

int csgi_http__response_sendfile(csgi_http__request *req, int fd, int64_t offset, int64_t length)
{
    if (offset < 0 || length < 0) {
        close(fd);
        return CSGI_EINVAL;
    }
    int r = write_check(req, (size_t)length);
    if (r <= 0) {
        close(fd);
        return r;
    }
    int chunked = chunk_prefix(req, (size_t)length);
    req->out_shared = 1;
    /* evbuffer_add_file owns fd from here, also when it fails. */
    if (chunked < 0) {
        close(fd);
        return CSGI_ENOMEM;
    }
    /* A plain socket gets the range with sendfile(2) (the buffer then keeps
       it unmapped); a TLS one encrypts what libevent maps (tls.c). The
       buffers go from connection to connection, so each file says which. */
    struct evbuffer *out = csgi_http__conn_out(req->conn);
    if (req->conn->tls)
        evbuffer_clear_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);
    else
        evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);
    if (evbuffer_add_file(out, fd, offset, length) != 0)
        return CSGI_ENOMEM;
    csgi_http__conn_cork(req->conn);
    return write_done(req, (size_t)length, chunked);
}

size_t csgi_http__response_buffered(const csgi_http__request *req)
{
    return csgi_http__conn_out_length(req->conn);
}

void csgi_http__response_want_writable(csgi_http__request *req)
{
    if (req->done || req->cut || req->response_state != CSGI_HTTP__RESPONSE_STARTED)
        return;
    req->want_writable = 1;
    csgi_http__conn_touch(req->conn);
}

int csgi_http__response_finish(csgi_http__request *req)
{
    if (req->done || req->response_state != CSGI_HTTP__RESPONSE_STARTED || req->cut)
        return CSGI_ESTATE;
    csgi_http__conn *conn = req->conn;
    if (req->framing == FRAME_LENGTH && req->response_left > 0) {
        /* The client was promised more bytes: only closing tells it. */
        csgi_http__conn_log(conn, CSGI_LOG__ERROR,
                            "response ended %lld bytes short of its Content-Length",
                            (long long)req->response_left);
        req->cut = 1;
        req->done_error = CSGI_ESTATE;
        csgi_http__conn_touch(conn);
        return CSGI_ESTATE;
    }
    if (req->framing == FRAME_CHUNKED && out_add(conn, "0\r\n\r\n", 5) != 0) {
        req->cut = 1;
        req->done_error = CSGI_ENOMEM;
        csgi_http__conn_touch(conn);
        return CSGI_ENOMEM;
    }
    if (req->framing == FRAME_CLOSE)
        req->keep_alive = 0;
    req->response_state = CSGI_HTTP__RESPONSE_FINISHED;
    csgi_http__conn_touch(conn);
    return 0;
}

void csgi_http__response_abort(csgi_http__request *req, int status, int err)
{
    if (req->done)
        return;
    csgi_http__conn *conn = req->conn;
    req->done_error = err ? err : CSGI_ESTATE;
    if (req->response_state == CSGI_HTTP__RESPONSE_NONE) {
        req->status = status ? status : 500;
        size_t page = csgi_http__queue_error_response(conn, req->status);
        req->body_start = req->written + csgi_http__conn_out_length(conn) - page;
        req->response_state = CSGI_HTTP__RESPONSE_FINISHED;
        req->keep_alive = 0;
        req->framing = FRAME_NONE;
    } else {
        req->cut = 1;
    }
    csgi_http__conn_touch(conn);
}
