/**
 * @file csgi/client.h
 * @brief An asynchronous HTTP/1.1 client on a libevent loop, for
 *        middleware that calls other services (auth_token, proxy).
 *
 * A client is a connection pool bound to one event loop (the request's:
 * csgi_environ_event_base()). A request is made, given headers and a
 * body, and sent; its callbacks then run on that loop: the response head,
 * each body piece as it arrives, and the end, exactly once. Nothing
 * blocks: resolving names (evdns), connecting, the TLS handshake, writing
 * and reading all happen from the loop.
 *
 * Connections are kept alive per scheme, host and port and reused for the
 * next request to the same place; an idle one is closed after
 * idle_timeout_ms, or at once when its server closes it or sends anything.
 * A request sent on a kept connection that the server had closed meanwhile
 * (nothing of the response came) is sent again, once, on a new connection,
 * provided no byte of its body was sent.
 *
 * Responses are parsed as strictly as the server parses requests: a
 * malformed status line or header field, a bare LF, obs-fold, a
 * Content-Length that is not one number (copies must agree), both
 * Content-Length and Transfer-Encoding, a Transfer-Encoding other than
 * chunked, or bad chunked framing end the request with CSGI_EPARSE and
 * close the connection. Interim 1xx responses are skipped; HEAD requests
 * and 204 and 304 responses have no body; a response without framing runs
 * until the server closes the connection.
 *
 * The client is csgi's own, on bufferevents, not libevent's evhttp: the
 * evhttp client accepts bare LF line ends and conflicting Content-Length
 * fields (the ambiguities behind response smuggling) and gathers a whole
 * response before handing it over, where a proxy needs strict parsing and
 * a streamed body with flow control both ways.
 *
 * @code
 * static void done(csgi_client_request *request, int result, void *userdata) {...}
 * static const csgi_client_callbacks callbacks = {on_head, on_data, done, NULL};
 * csgi_client_request *request;
 * if (csgi_client_request_new(&request, client, "GET",
 *                             "http://127.0.0.1:5000/v3/auth/tokens") == 0 &&
 *     csgi_client_request_add_header(request, "X-Subject-Token", token) == 0)
 *     csgi_client_request_send(request, &callbacks, state);
 * @endcode
 *
 * Threads: a client and its requests belong to the thread running its
 * loop; use them from that thread only.
 */
#ifndef CSGI_CLIENT_H
#define CSGI_CLIENT_H

#include "common.h"
#include "app.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

/** A connection pool and the settings of its requests (opaque). */
typedef struct csgi_client csgi_client;

/** One request and its response (opaque). */
typedef struct csgi_client_request csgi_client_request;

/** Version of csgi_client_options; CSGI_CLIENT_OPTIONS_INIT sets it. */
#define CSGI_CLIENT_OPTIONS_VERSION 1

/** Client options. Start from CSGI_CLIENT_OPTIONS_INIT; 0 means the default. */
typedef struct csgi_client_options {
    unsigned version;            /**< CSGI_CLIENT_OPTIONS_VERSION */
    unsigned connect_timeout_ms; /**< resolving, connecting and the TLS handshake: 5000 */
    unsigned timeout_ms;         /**< waiting for the head, or between body pieces, either
                                      way (a paused response does not count): 30000 */
    unsigned idle_timeout_ms;    /**< an idle kept-alive connection is closed after: 30000 */
    unsigned max_idle_per_host;  /**< idle connections kept per scheme, host and port: 8 */
    size_t max_head;             /**< bytes of a response head, else CSGI_ETOOBIG: 64 KiB */
    const char *ca_file;         /**< https: the CAs (PEM) that verify servers (copied);
                                      NULL: the system's */
    int insecure;                /**< https: 1 skips verifying the server's certificate and
                                      name */
} csgi_client_options;

/** Initializer for csgi_client_options: every field its default. */
#define CSGI_CLIENT_OPTIONS_INIT                            \
    {                                                       \
        CSGI_CLIENT_OPTIONS_VERSION, 0, 0, 0, 0, 0, NULL, 0 \
    }

/**
 * Create a client on an event loop.
 *
 * @param out     where to store the client
 * @param base    the loop its requests run on (borrowed: it must outlive
 *                the client)
 * @param options copied (ca_file too); NULL = defaults
 * @return 0, CSGI_EINVAL (NULL out or base, an unknown options version,
 *         a ca_file OpenSSL cannot read: checked at the first https
 *         request, which then ends with CSGI_ECONNECT), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_client_new(csgi_client **out, struct event_base *base,
                                const csgi_client_options *options);

/**
 * Close every connection and free the client. Requests still running end
 * with CSGI_ECLOSED (their done callback runs) before it returns; requests
 * made but not sent must be cancelled first. Not from inside a callback
 * of one of its requests. Accepts NULL.
 */
CSGI_EXTERN void csgi_client_free(csgi_client *client);

/** What a response's head says (every pointer valid during the callback). */
typedef struct csgi_client_response {
    int status;                 /**< 100-599 (1xx interim responses are skipped, never given) */
    const char *reason;         /**< reason phrase, reason_len bytes, not NUL-terminated */
    size_t reason_len;          /**< bytes of reason */
    int version_minor;          /**< HTTP/1.x */
    const csgi_header *headers; /**< the header fields as sent, in order (values trimmed) */
    size_t header_count;        /**< number of headers */
    int64_t content_length;     /**< -1 when chunked or until close; 0 when there is no body */
} csgi_client_response;

/**
 * Look up a header of a response (case-insensitive): the first one of
 * that name.
 *
 * @param response the response (borrowed)
 * @param name     the field name, a C string
 * @param len      set to the value's length when found (may be NULL)
 * @return the value (not NUL-terminated, valid as the response is), or
 *         NULL when absent.
 */
CSGI_EXTERN const char *csgi_client_response_header(const csgi_client_response *response,
                                                    const char *name, size_t *len);

/** What a request does with its response. All run from the client's loop. */
typedef struct csgi_client_callbacks {
    /** The head arrived. Return 0 to go on, anything else cancels (done
        then gets that value). May be NULL. */
    int (*head)(csgi_client_request *request, const csgi_client_response *response, void *userdata);
    /** A piece of the body (borrowed for the call). Return 0 to go on,
        anything else cancels (done then gets that value). May be NULL. */
    int (*data)(csgi_client_request *request, const void *data, size_t len, void *userdata);
    /** Once, last: 0 when the whole response arrived, else CSGI_ECONNECT
        (name, connection or TLS handshake failed), CSGI_ETIMEDOUT,
        CSGI_EPARSE, CSGI_ETOOBIG, CSGI_ECLOSED (the server or
        csgi_client_free() closed the connection), CSGI_EIO, CSGI_ENOMEM,
        or the value head/data returned. The request is freed after it
        returns. Not called after csgi_client_request_cancel(). */
    void (*done)(csgi_client_request *request, int result, void *userdata);
    /** A streamed request body can take more: after
        csgi_client_request_write() returned 1, once its queue drained.
        May be NULL. */
    void (*writable)(csgi_client_request *request, void *userdata);
} csgi_client_callbacks;

/**
 * Make a request.
 *
 * Host, Content-Length, Transfer-Encoding and Connection are the
 * client's: it sends them itself.
 *
 * @param out    where to store the request (owned: send it, or cancel it)
 * @param client the client (borrowed)
 * @param method a token such as "GET" (copied)
 * @param url    http://host[:port]/path?query or https://... (copied); host
 *               a name, an IPv4 address or an IPv6 one in brackets
 * @return 0, CSGI_EINVAL (NULL argument, a method that is not a token, a
 *         malformed URL or a scheme other than http and https),
 *         CSGI_ESTATE (the client is being freed), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_client_request_new(csgi_client_request **out, csgi_client *client,
                                        const char *method, const char *url);

/**
 * Add a header field (before send).
 *
 * @param name  a token (copied)
 * @param value a field value: no CR, LF or other control byte but HTAB
 *              (copied)
 * @return 0, CSGI_EINVAL (malformed, or one of the client's own fields),
 *         CSGI_ESTATE (sent already), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_client_request_add_header(csgi_client_request *request, const char *name,
                                               const char *value);

/**
 * Give the whole body (before send), sent with its Content-Length.
 *
 * @param data len bytes (copied); NULL only with len 0
 * @return 0, CSGI_EINVAL, CSGI_ESTATE (sent already, or a body given
 *         already), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_client_request_set_body(csgi_client_request *request, const void *data,
                                             size_t len);

/**
 * Announce a body written piece by piece after send
 * (csgi_client_request_write(), then csgi_client_request_end()).
 *
 * @param length the body's length in bytes (sent as Content-Length), or
 *               -1 for a chunked body of unknown length
 * @return 0, CSGI_EINVAL (length below -1), CSGI_ESTATE (sent already, or
 *         a body given already).
 */
CSGI_EXTERN int csgi_client_request_set_body_stream(csgi_client_request *request, int64_t length);

/**
 * Queue a piece of a streamed body (after send; also before the
 * connection is up). A piece of length 0 does nothing.
 *
 * @param data len bytes (copied)
 * @return 0; 1 when the queue is over its high-water mark (64 KiB): wait
 *         for the writable callback before writing more; CSGI_ESTATE (not
 *         a streamed body, ended already), CSGI_ERANGE (more than the
 *         announced length), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_client_request_write(csgi_client_request *request, const void *data,
                                          size_t len);

/**
 * End a streamed body.
 *
 * @return 0, CSGI_ESTATE (not a streamed body, ended already),
 *         CSGI_ERANGE (fewer bytes than the announced length).
 */
CSGI_EXTERN int csgi_client_request_end(csgi_client_request *request);

/**
 * Stop reading the response body (flow control for a proxy whose own
 * client is slow): no data callback runs until
 * csgi_client_request_resume(); the server is left waiting, and the
 * timeout does not run meanwhile. Safe from inside the callbacks.
 */
CSGI_EXTERN void csgi_client_request_pause(csgi_client_request *request);

/** Go on reading the response body (see csgi_client_request_pause()).
    Safe from inside the callbacks; the next data callback comes from the
    loop. */
CSGI_EXTERN void csgi_client_request_resume(csgi_client_request *request);

/**
 * Start the request: callbacks then run from the loop, never from inside
 * this call.
 *
 * @param callbacks borrowed (usually static); done is required
 * @param userdata  passed to the callbacks
 * @return 0, or CSGI_EINVAL (no callbacks or no done), CSGI_ESTATE (sent
 *         already, the client is being freed): the request is still the
 *         caller's, to cancel.
 */
CSGI_EXTERN int csgi_client_request_send(csgi_client_request *request,
                                         const csgi_client_callbacks *callbacks, void *userdata);

/**
 * Stop a request and free it: no callback runs any more; its connection
 * is closed. Frees a request that was not sent too. Safe from inside any
 * of its callbacks (done excepted, where it does nothing: the request is
 * freed when done returns). Accepts NULL.
 */
CSGI_EXTERN void csgi_client_request_cancel(csgi_client_request *request);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_CLIENT_H */
