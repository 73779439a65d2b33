/*
 * The response driver (driver.h): the rules of the application protocol,
 * applied to one request whatever the sink.
 *
 * The application is called once (csgi_driver__run). A bytes or file body
 * after start-response goes out whole: its length is known. An iterator
 * body is "pumped": pieces are pulled and written while the sink holds
 * less than its watermark; the pump runs again when the sink drained
 * (csgi_driver__writable) and when a body that answered CSGI_EAGAIN is
 * resumed. Whatever happens (the body ends, the client leaves, the
 * application misbehaves), the body is closed exactly once.
 */
#include "gateway/driver.h"

#include "gateway/app_private.h"

#include <csgi/app.h>

#include <stdio.h>
#include <string.h>

/* ---- Logging ---------------------------------------------------------------------- */

void csgi_driver__log(const csgi_driver *driver, int level, const char *what)
{
    const csgi_environ__source *source = driver->source;
    if (!source->log)
        return;
    const csgi_http__head *head = source->head;
    char line[1400];
    snprintf(line, sizeof(line), "%s: %.*s %.*s: %s", csgi_app_name(driver->app),
             (int)head->method_len, head->method,
             (int)(head->target_len > 200 ? 200 : head->target_len), head->target, what);
    source->log(source->log_context, level, line);
}

/* ---- start-response ------------------------------------------------------------- */

/* start-response was given something the server will not send. */
static int refuse(csgi_driver *driver, const char *problem)
{
    char text[160];
    snprintf(text, sizeof(text), "start-response refused: %s", problem);
    csgi_driver__log(driver, CSGI_LOG__ERROR, text);
    driver->failed = 1;
    return CSGI_EINVAL;
}

/* The root of the start-response chain (userdata: the driver). */
static int start_response(const char *status, const csgi_header *headers, size_t count,
                          const char *exc_info, void *userdata)
{
    csgi_driver *driver = userdata;
    if (driver->done)
        return CSGI_ESTATE;
    if (driver->started && !exc_info) {
        csgi_driver__log(driver, CSGI_LOG__ERROR, "start-response called twice without exc_info");
        driver->failed = 1;
        return CSGI_ESTATE;
    }
    if (driver->started && driver->head_sent) {
        /* Too late to change the answer: only cutting tells the client. */
        csgi_driver__log(driver, CSGI_LOG__ERROR, exc_info);
        if (!driver->finished) {
            driver->finished = 1;
            driver->sink.type->cut(&driver->sink);
        }
        return CSGI_ESTATE;
    }
    const char *problem = NULL;
    int r =
        csgi_gateway__head_build(driver->arena, status, headers, count, &driver->head, &problem);
    if (r == CSGI_EINVAL)
        return refuse(driver, problem);
    if (r != 0)
        return r;
    driver->started = 1;
    driver->failed = 0;
    return 0;
}

/* ---- Sending ---------------------------------------------------------------------- */

/* What the head will announce. length: the body's length when known;
   becomes the Content-Length to announce (-1 for none). Notes whether the
   response has a body. CSGI_EINVAL when the application's Content-Length
   disagrees with the body. */
static inline int announce(csgi_driver *driver, int64_t *length)
{
    const csgi_gateway__head *head = &driver->head;
    if (head->content_length >= 0) {
        if (*length >= 0 && *length != head->content_length) {
            csgi_driver__log(driver, CSGI_LOG__ERROR,
                             "Content-Length differs from the body's length");
            return CSGI_EINVAL;
        }
        *length = head->content_length;
    }
    /* HEAD, 204 and 304 have no body (RFC 9110 9.3.2, 15.3.5, 15.4.5); a
       HEAD response announces the length a GET would have had. The method
       is compared only when its length is HEAD's: GET costs one compare. */
    const csgi_http__head *request = driver->source->head;
    int empty_status = head->status == 204 || head->status == 304;
    driver->no_body = (unsigned char)(empty_status || (request->method_len == 4 &&
                                                       memcmp(request->method, "HEAD", 4) == 0));
    if (empty_status)
        *length = -1;
    return 0;
}

/* Hand the head to the sink. length: the body's length when known. */
static int send_head(csgi_driver *driver, int64_t length)
{
    int r = announce(driver, &length);
    if (r == 0)
        r = driver->sink.type->send_head(&driver->sink, &driver->head, length);
    if (r != 0)
        return r;
    driver->head_sent = 1;
    driver->left = driver->no_body ? -1 : length;
    return 0;
}

/* Body bytes after the head: held to the announced length, dropped when
   the response has no body. */
static int write_body(csgi_driver *driver, const void *data, size_t len)
{
    if (driver->left >= 0) {
        if ((uint64_t)len > (uint64_t)driver->left)
            return CSGI_ERANGE;
        driver->left -= (int64_t)len;
    }
    if (len == 0 || driver->no_body)
        return 0;
    return driver->sink.type->write(&driver->sink, data, len);
}

/* A piece of an iterator body: lent to the sink when it is long (no
   copy: the sink sends the application's own bytes, and the driver pulls
   nothing more and leaves the body open until it has them back), else
   written as bytes borrowed for the call. */
static int write_piece(csgi_driver *driver, const void *data, size_t len)
{
    if (len < CSGI_SINK__LEND_FROM)
        return write_body(driver, data, len);
    if (driver->left >= 0) {
        if ((uint64_t)len > (uint64_t)driver->left)
            return CSGI_ERANGE;
        driver->left -= (int64_t)len;
    }
    if (driver->no_body)
        return 0;
    /* Set first: the sink may give the piece back from inside the call. */
    driver->lent = 1;
    int r = driver->sink.type->write_lent(&driver->sink, data, len);
    if (r <= 0)
        driver->lent = 0;
    return r < 0 ? r : 0;
}

/* The application broke the protocol or failed: a 500 when nothing was
   sent, else a cut. The body is closed, unless the sink still holds a
   piece of it: then when the request ends (csgi_driver__end), after the
   sink gave it back. */
static void fail(csgi_driver *driver, const char *why)
{
    csgi_driver__log(driver, CSGI_LOG__ERROR, why);
    driver->finished = 1;
    if (!driver->lent)
        csgi_body_close(driver->body);
    driver->sink.type->cut(&driver->sink);
}

static void finish(csgi_driver *driver)
{
    driver->finished = 1;
    csgi_body_close(driver->body);
    if (driver->left > 0) {
        /* The client was promised more bytes: only cutting tells it. */
        csgi_driver__log(driver, CSGI_LOG__ERROR, "response shorter than its Content-Length");
        driver->sink.type->cut(&driver->sink);
        return;
    }
    if (driver->sink.type->finish(&driver->sink) != 0)
        csgi_driver__log(driver, CSGI_LOG__ERROR, "could not finish the response");
}

/* A bytes body after start-response: its length is known, so the whole
   response goes to the sink in one call. */
static void send_bytes(csgi_driver *driver, csgi_body *body)
{
    int64_t length = (int64_t)body->len;
    int r = announce(driver, &length);
    if (r == 0) {
        size_t len = driver->no_body ? 0 : body->len;
        r = driver->sink.type->respond(&driver->sink, &driver->head, length, body->data, len);
        driver->head_sent = 1;
    }
    body->delivered = 1;
    driver->finished = 1;
    csgi_body_close(body);
    if (r != 0) {
        csgi_driver__log(driver, CSGI_LOG__ERROR, "could not send the response");
        driver->sink.type->cut(&driver->sink);
    }
}

/* A file body after start-response: the sink sends the range itself. */
static void send_file(csgi_driver *driver, csgi_body *body)
{
    int64_t offset = 0, length = body->length;
    int fd = -1;
    if (send_head(driver, length) != 0) {
        fail(driver, "could not start the response");
        return;
    }
    if (!driver->no_body && length) {
        csgi_body_take_file(body, &fd, &offset, NULL);
        if (driver->sink.type->sendfile(&driver->sink, fd, offset, length) != 0) {
            fail(driver, "could not send the file");
            return;
        }
    }
    driver->left = -1;
    finish(driver);
}

static void pump(csgi_driver *driver)
{
    if (driver->pumping) {
        driver->again = 1;
        return;
    }
    driver->pumping = 1;
    csgi_body *body = driver->body;
    while (!driver->finished && !driver->done) {
        driver->again = 0;
        if (driver->failed) {
            fail(driver, "the application's response was refused");
            break;
        }
        if (driver->started && !driver->head_sent) {
            /* Bytes and files need no pulling: their length is known. */
            if (body->kind == CSGI_BODY_BYTES) {
                send_bytes(driver, body);
                break;
            }
            if (body->kind == CSGI_BODY_FILE) {
                send_file(driver, body);
                break;
            }
            /* An iterator's head waits for its first piece: if the body
               fails before that, the client still gets a clean 500. */
        }
        if (driver->lent)
            break; /* the sink gives the piece back, then signals writable */
        if (driver->head_sent && driver->sink.type->buffered(&driver->sink) >= CSGI_SINK__WATERMARK)
            break; /* csgi_driver__writable pumps again */
        csgi_chunk chunk = {NULL, 0};
        int r = csgi_body_next(body, &chunk);
        if (driver->finished || driver->done)
            break; /* ended from inside next() (exc_info after the head) */
        if (r == CSGI_EAGAIN) {
            if (driver->again)
                continue;
            break; /* csgi_body_resume pumps again */
        }
        if (r < 0) {
            fail(driver, "the response body failed");
            break;
        }
        if (!driver->started) {
            fail(driver, r == 0 ? "the application returned without calling start-response"
                                : "body produced before start-response");
            break;
        }
        if (driver->failed)
            continue;
        if (r == 0) {
            if (!driver->head_sent && csgi_body_length(body) > 0) {
                fail(driver, "the body is shorter than its declared length");
                break;
            }
            if (!driver->head_sent && send_head(driver, 0) != 0) {
                fail(driver, "could not start the response");
                break;
            }
            finish(driver);
            break;
        }
        /* start-response may have been called from inside next(). The
           length is the iterator's declared one, or unknown. */
        if (!driver->head_sent && send_head(driver, csgi_body_length(body)) != 0) {
            fail(driver, "could not start the response");
            break;
        }
        int w = write_piece(driver, chunk.data, chunk.len);
        if (w != 0) {
            fail(driver, w == CSGI_ERANGE ? "the body is longer than its Content-Length"
                                          : "could not send the body");
            break;
        }
    }
    driver->pumping = 0;
}

/* ---- The request ------------------------------------------------------------------ */

void csgi_driver__run(csgi_driver *driver, csgi_environ *environ)
{
    driver->environ = environ;
    driver->start_response.environ = environ;
    driver->start_response.parent = NULL;
    driver->start_response.fn = start_response;
    driver->start_response.userdata = driver;

    csgi_body *body = csgi_app_call(driver->app, environ, &driver->start_response);
    driver->body = body;
    if (!body) {
        csgi_driver__log(driver, CSGI_LOG__ERROR, "the application failed (returned no body)");
        driver->finished = 1;
        driver->sink.type->cut(&driver->sink);
        return;
    }
    /* The common answer, bytes after start-response, needs no pumping. */
    if (body->kind == CSGI_BODY_BYTES && driver->started && !driver->failed && !driver->head_sent) {
        send_bytes(driver, body);
        return;
    }
    pump(driver);
}

void csgi_driver__writable(csgi_driver *driver)
{
    if (!driver->finished)
        pump(driver);
}

void csgi_driver__resume(csgi_driver *driver)
{
    if (!driver->done && !driver->finished && driver->body)
        pump(driver);
}

void csgi_driver__end(csgi_driver *driver)
{
    driver->done = 1;
    /* Closed exactly once: here if the response did not run its course
       (the client left, a timeout), also when a piece was lent: the
       sink's request is over, so it gave the piece back already. */
    if (driver->body && !driver->body->closed)
        csgi_body_close(driver->body);
}

int csgi_driver__write(csgi_driver *driver, const void *data, size_t len)
{
    if (driver->done || !driver->started || driver->finished)
        return CSGI_ESTATE;
    if (!driver->head_sent && send_head(driver, -1) != 0)
        return CSGI_ESTATE;
    return write_body(driver, data, len);
}

/* "env", not "environ": glibc declares a global of that name. */
struct event_base *csgi_environ_event_base(csgi_environ *env)
{
    csgi_driver *driver = env ? csgi_environ__owner(env) : NULL;
    if (!driver || driver->done)
        return NULL;
    return driver->sink.type->event_base(&driver->sink);
}
