/**
 * @file csgi/testing.h
 * @brief The in-process test client: run a request through an application
 *        without a socket (WebOb's Request.blank and get_response).
 *
 * A test builds a request (method, URL, headers, body, environ overrides),
 * runs it through any csgi_app (a single application, middleware, an
 * INI-loaded pipeline) and looks at the response: status, headers, the
 * whole body and the lines written to csgi.errors.
 *
 * The request goes through the same code as one read from a socket: its
 * head is written out as HTTP/1.1 bytes and parsed by the server's parser
 * (a malformed request is an error, CSGI_EPARSE), the environ is built by
 * the server's environ code, and the application's answer is held to the
 * server's rules: a status or header start-response refuses, start-response
 * called twice without exc_info, a body before start-response, no body,
 * a Content-Length that differs from the bytes, a failing body. Such an
 * answer becomes "500 Internal Server Error" when nothing was sent yet, or a
 * response flagged as cut (csgi_test_response_cut()) after, with a line in
 * the log, as the server would log it.
 *
 * @code
 * csgi_test_response *response = NULL;
 * ck_assert_int_eq(csgi_test_get(&response, app, "/hello?name=World"), 0);
 * ck_assert_int_eq(csgi_test_response_code(response), 200);
 * ck_assert_str_eq(csgi_test_response_header(response, "content-type"), "text/html");
 * ck_assert_str_eq(csgi_test_response_body(response, NULL), "Hello World");
 * csgi_test_response_free(response);
 * @endcode
 *
 * An application that answers later (its body's next returns CSGI_EAGAIN,
 * then csgi_body_resume() from a timer) works too: the test client runs a
 * libevent loop of its own for the request (csgi_environ_event_base()
 * returns it) until the body completes or the timeout passes.
 *
 * The request body can arrive as the network brings it: late, in pieces,
 * after "100 Continue", or chunked (csgi_test_request_set_body_delivery(),
 * csgi_test_request_set_chunked()), so an application that does not wait
 * for its body with csgi_input_on_ready() is caught in its tests. A
 * session (csgi_test_session_new()) keeps cookies across requests, and a
 * request can follow redirects (csgi_test_request_set_follow_redirects()).
 *
 * Threads: a request, a response and a session belong to the thread using
 * them; run requests on as many threads as you like, each with its own
 * objects.
 */
#ifndef CSGI_TESTING_H
#define CSGI_TESTING_H

#include "app.h"
#include "common.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A request to run (opaque). */
typedef struct csgi_test_request csgi_test_request;

/** What an application answered (opaque). */
typedef struct csgi_test_response csgi_test_response;

/** How long a run waits for a body that answered CSGI_EAGAIN, by default (milliseconds). */
#define CSGI_TEST_TIMEOUT_DEFAULT 5000

/** The most body bytes a response keeps; a longer body fails the run with CSGI_ETOOBIG. */
#define CSGI_TEST_BODY_MAX (64u * 1024u * 1024u)

/**
 * Create a request.
 *
 * url is either a full URL, "http://host[:port]/path?query" or "https://...":
 * the scheme becomes csgi.url_scheme and the authority the Host header
 * (hence SERVER_NAME and SERVER_PORT, the port defaulting to the scheme's);
 * or a request target as sent on the wire ("/path?query", "*"), with the
 * Host header "localhost:80" and the scheme "http". The path and query are
 * sent as given: percent-encode them as a client would.
 *
 * The client address (REMOTE_ADDR, REMOTE_PORT) is 127.0.0.1 port 0 unless
 * csgi_test_request_set_remote() changes it.
 *
 * @param out    where to store the request
 * @param method the method, a token such as "GET" (copied)
 * @param url    the URL or target (copied)
 * @return 0; CSGI_EINVAL (NULL, a method that is not a token, a URL with
 *         another scheme or an empty host), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_test_request_new(csgi_test_request **out, const char *method, const char *url);

/** Free a request. Accepts NULL. */
CSGI_EXTERN void csgi_test_request_free(csgi_test_request *request);

/**
 * Add a header field, in order after the ones added before. A "Host" field
 * replaces the one the URL gave. Repeat a name to send it several times.
 * Content-Length and Transfer-Encoding are sent as given, so a test can
 * make the request malformed on purpose (the run then fails with
 * CSGI_EPARSE).
 *
 * @param name  a token (copied)
 * @param value a field value without CR, LF, NUL or other control bytes (copied)
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_test_request_add_header(csgi_test_request *request, const char *name,
                                             const char *value);

/**
 * Set the request body (csgi.input reads it) and its Content-Length. A
 * second call replaces the first.
 *
 * The client sends Content-Length with it, unless the body goes chunked
 * (csgi_test_request_set_chunked()) or the test added its own
 * Transfer-Encoding field: then the bytes go out as given, framing and
 * all, and the server's chunked decoder reads them, so a test can break
 * the framing on purpose (refused with CSGI_EPARSE when the bytes came with
 * the head; a read error and the server's answer when they came late).
 *
 * @param data len bytes (copied); may be NULL when len is 0
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_test_request_set_body(csgi_test_request *request, const void *data,
                                           size_t len);

/** When the request body reaches the server (csgi_test_request_set_body_delivery()). */
typedef enum csgi_test_delivery {
    /** All of it with the head, readable before the application is called (the default). */
    CSGI_TEST_DELIVERY_AT_ONCE = 0,
    /** None of it when the application is called; then a piece per turn of the loop. */
    CSGI_TEST_DELIVERY_LATE = 1
} csgi_test_delivery;

/**
 * Choose when the body arrives, to test an application the way the
 * network treats it: a real server calls the application once the head is
 * there, and the body follows in pieces.
 *
 * With CSGI_TEST_DELIVERY_LATE nothing of the body is readable when the
 * application is first called: csgi.input answers CSGI_EAGAIN. The run's
 * libevent loop (csgi_environ_event_base()) then delivers one piece of
 * piece_size bytes per turn (0: the whole body in one piece); each
 * arrival wakes a reader that waited with csgi_input_on_ready(), exactly
 * as the engine does, and a read before the next piece answers
 * CSGI_EAGAIN again. An application that answers without reading the
 * body is not kept waiting for it. A chunked body (see
 * csgi_test_request_set_chunked()) arrives a chunk per turn, then the
 * last-chunk in a turn of its own; a body whose framing the test wrote
 * itself arrives in pieces of piece_size bytes of that framing.
 *
 * "Expect: 100-continue" (csgi_test_request_add_header()) makes the client
 * wait for the server's go-ahead, as curl does: nothing of the body is
 * sent until the application first reads csgi.input, which is when the
 * server sends "100 Continue" (csgi_test_response_continued()). That read
 * answers CSGI_EAGAIN; the body follows from the next turn of the loop, at
 * once or in pieces as chosen here. An application that answers without
 * reading never gets the body.
 *
 * @param request    the request
 * @param delivery   CSGI_TEST_DELIVERY_AT_ONCE or CSGI_TEST_DELIVERY_LATE
 * @param piece_size the bytes of a piece (and of a chunk when the body
 *                   goes chunked, also when it goes at once); 0 for all
 * @return 0, or CSGI_EINVAL (NULL request, unknown delivery).
 */
CSGI_EXTERN int csgi_test_request_set_body_delivery(csgi_test_request *request,
                                                    csgi_test_delivery delivery, size_t piece_size);

/**
 * Send the body with "Transfer-Encoding: chunked" instead of
 * Content-Length, as a client streaming an upload does: the client frames
 * it into chunks of the piece size (csgi_test_request_set_body_delivery();
 * one chunk when it is 0) ending with the last-chunk, and the server's own
 * chunked decoder decodes them. As on the server, CONTENT_LENGTH is then
 * absent from the environ and csgi.input reads to the end of the chunks.
 * The framing is always well formed; to break it on purpose, add the
 * Transfer-Encoding field yourself and write the framing with
 * csgi_test_request_set_body().
 *
 * @param request the request (NULL does nothing)
 * @param chunked 1 to send the body chunked (an empty body is the
 *                last-chunk alone), 0 for Content-Length (the default)
 */
CSGI_EXTERN void csgi_test_request_set_chunked(csgi_test_request *request, int chunked);

/**
 * Set an environ key to a string once the server's keys are built, before
 * the application runs (e.g. "SCRIPT_NAME", "csgi.url_scheme" or a key of
 * your own). Overrides apply in the order given.
 *
 * @param key   a non-empty key (copied)
 * @param value its value (copied)
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_test_request_set_environ(csgi_test_request *request, const char *key,
                                              const char *value);

/**
 * Set the client address.
 *
 * @param address a numeric IPv4 or IPv6 address, e.g. "192.0.2.7" or "::1"
 * @param port    the client port, 0 to 65535
 * @return 0, or CSGI_EINVAL (not a numeric address, or port out of range).
 */
CSGI_EXTERN int csgi_test_request_set_remote(csgi_test_request *request, const char *address,
                                             unsigned port);

/**
 * What a request that came over TLS shows its application: the server's
 * SSL_* environ keys (docs/environ.md). Every field may be NULL.
 */
typedef struct csgi_test_tls {
    const char *protocol;      /**< SSL_PROTOCOL; NULL = "TLSv1.3" */
    const char *cipher;        /**< SSL_CIPHER; NULL = "TLS_AES_256_GCM_SHA384" */
    const char *server_name;   /**< SSL_TLS_SNI; NULL = not set */
    const char *client_s_dn;   /**< SSL_CLIENT_S_DN (RFC 2253); NULL = no client certificate */
    const char *client_i_dn;   /**< SSL_CLIENT_I_DN */
    const char *client_cert;   /**< SSL_CLIENT_CERT (PEM) */
    const char *client_verify; /**< SSL_CLIENT_VERIFY; NULL = "SUCCESS" with a client
                                    certificate, "NONE" without */
} csgi_test_tls;

/**
 * Say that the request came over TLS: its environ has csgi.url_scheme
 * "https", HTTPS "on" and the SSL_* keys the server sets, from tls.
 *
 * @param tls what the connection proves (copied); NULL = TLS without a
 *            client certificate
 * @return 0, CSGI_EINVAL (NULL request), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_test_request_set_tls(csgi_test_request *request, const csgi_test_tls *tls);

/**
 * Set how long a run waits, in all, for a body that answered CSGI_EAGAIN
 * (default CSGI_TEST_TIMEOUT_DEFAULT).
 *
 * @param milliseconds the time limit; 0 restores the default
 */
CSGI_EXTERN void csgi_test_request_set_timeout(csgi_test_request *request, unsigned milliseconds);

/**
 * Follow redirects, as a browser does, up to max of them (0, the default:
 * the redirect is the response).
 *
 * A 301, 302, 303, 307 or 308 response with a Location is followed: the
 * Location is resolved against the request's URL (its scheme and Host; a
 * relative reference as RFC 3986 5.2 says, dot segments removed, the
 * fragment dropped, a space percent-encoded) and requested in turn,
 * through the same application. 303 makes the next request a GET
 * without a body (HEAD stays HEAD), and so do 301 and 302 for a POST;
 * 307 and 308 keep the method and the body. A request that loses its
 * body loses its Content-Type and other Content-* fields, its own
 * Transfer-Encoding and Expect; Authorization is dropped when the scheme
 * or host changes; the other header fields, the environ overrides, the
 * client address, the timeout and the body's delivery go on. A Location
 * of another scheme (mailto:, ftp:), or one whose request the server
 * would refuse, is not followed: the redirect is the response.
 *
 * The final response tells how it was reached: csgi_test_response_url()
 * and csgi_test_response_redirects(). Run through a session
 * (csgi_test_session_run()), the cookies set along the way are kept and
 * sent on.
 *
 * @param request the request (NULL does nothing)
 * @param max     the most redirects to follow; one more fails the run
 *                with CSGI_EREDIRECTS
 */
CSGI_EXTERN void csgi_test_request_set_follow_redirects(csgi_test_request *request, unsigned max);

/**
 * Run the request through an application and collect its response. The
 * request can be run again (through the same or another application).
 *
 * The body is drained and closed exactly once before this returns, and the
 * request's memory (the environ, its arena) is released: an application's
 * deferred callbacks have run. A response to HEAD, 204 or 304 has no body,
 * as the server sends none.
 *
 * @param out     where to store the response (owned by the caller:
 *                csgi_test_response_free()); NULL on error
 * @param request the request (borrowed)
 * @param app     the application (borrowed: the caller keeps its reference)
 * @return 0 with a response, also when the application misbehaved (then a
 *         500 or a cut response, and a log line); CSGI_EINVAL (NULL
 *         argument), CSGI_EPARSE (the request is malformed: the server
 *         would refuse it before any application runs), CSGI_ETIMEDOUT (the
 *         body did not complete in time), CSGI_ETOOBIG (a body over
 *         CSGI_TEST_BODY_MAX), CSGI_EREDIRECTS (more redirects than
 *         csgi_test_request_set_follow_redirects() allows), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_test_request_run(csgi_test_response **out, csgi_test_request *request,
                                      csgi_app *app);

/**
 * GET url through app in one call: csgi_test_request_new(),
 * csgi_test_request_run() and csgi_test_request_free().
 *
 * @param out where to store the response (owned by the caller:
 *            csgi_test_response_free()); NULL on error
 * @param app the application (borrowed)
 * @param url the URL or target, as for csgi_test_request_new() (copied)
 * @return as csgi_test_request_new() and csgi_test_request_run().
 */
CSGI_EXTERN int csgi_test_get(csgi_test_response **out, csgi_app *app, const char *url);

/* ---- The response ---------------------------------------------------------- */

/** The status line without the version, e.g. "200 OK" (borrowed from the response). */
CSGI_EXTERN const char *csgi_test_response_status(const csgi_test_response *response);

/** The status code, e.g. 200. */
CSGI_EXTERN int csgi_test_response_code(const csgi_test_response *response);

/**
 * The first value of a header field.
 *
 * The fields are the application's, in its order, plus Content-Length
 * where the server sends one (the application's, or the length of a body
 * of bytes or a file). Fields the server adds on the wire (Date, Server,
 * Connection, Transfer-Encoding) are not shown.
 *
 * @param name the field name, compared case-insensitively
 * @return the value (borrowed from the response), or NULL when absent.
 */
CSGI_EXTERN const char *csgi_test_response_header(const csgi_test_response *response,
                                                  const char *name);

/**
 * The n-th value (from 0) of a header field that may be repeated
 * (Set-Cookie).
 *
 * @return the value (borrowed), or NULL when the field has n values or fewer.
 */
CSGI_EXTERN const char *csgi_test_response_header_value(const csgi_test_response *response,
                                                        const char *name, size_t n);

/** The number of header fields. */
CSGI_EXTERN size_t csgi_test_response_header_count(const csgi_test_response *response);

/**
 * The header field at index (from 0), for iterating over all of them.
 *
 * @param name  where to store its name as the application wrote it
 *              (borrowed); may be NULL
 * @param value where to store its value (borrowed); may be NULL
 * @return 1, or 0 when index is out of range.
 */
CSGI_EXTERN int csgi_test_response_header_at(const csgi_test_response *response, size_t index,
                                             const char **name, const char **value);

/**
 * The whole body, NUL-terminated (it may contain NUL bytes too).
 *
 * @param len where to store its length; may be NULL
 * @return the body (borrowed from the response), "" when empty.
 */
CSGI_EXTERN const char *csgi_test_response_body(const csgi_test_response *response, size_t *len);

/**
 * 1 when the response was cut: the application misbehaved (or its body
 * failed, or was shorter than its Content-Length) after the head was on its
 * way, where the server would close the connection. The status, headers
 * and body are what was sent until then. 0 otherwise.
 */
CSGI_EXTERN int csgi_test_response_cut(const csgi_test_response *response);

/** The number of lines logged during the run (csgi.errors and the server's own). */
CSGI_EXTERN size_t csgi_test_response_log_count(const csgi_test_response *response);

/**
 * A logged line: csgi_environ_log() lines as the server formats them
 * ("GET /path (client 127.0.0.1): text"), and the server's refusals of an
 * application's answer ("name: GET /path: start-response refused: ...").
 *
 * @return the line (borrowed), or NULL when index is out of range.
 */
CSGI_EXTERN const char *csgi_test_response_log_at(const csgi_test_response *response, size_t index);

/**
 * 1 when a logged line contains text, else 0: the usual assertion on logs.
 */
CSGI_EXTERN int csgi_test_response_log_contains(const csgi_test_response *response,
                                                const char *text);

/**
 * 1 when the server sent "100 Continue": the request carried "Expect:
 * 100-continue" and a body, and the application read csgi.input before
 * its response started. 0 otherwise, in particular when the application
 * answered (a 413, a 401) without reading the body, which the client then
 * never sent.
 */
CSGI_EXTERN int csgi_test_response_continued(const csgi_test_response *response);

/**
 * The URL the response answers: "scheme://host[:port]/target" as the
 * request sent it (its Host, the scheme's default port left out), e.g.
 * "http://localhost/hello" for csgi_test_get(&response, app, "/hello").
 *
 * @return the URL (borrowed from the response).
 */
CSGI_EXTERN const char *csgi_test_response_url(const csgi_test_response *response);

/**
 * The number of redirects followed to reach this response (see
 * csgi_test_request_set_follow_redirects()); 0 when it answers the request
 * as given.
 */
CSGI_EXTERN size_t csgi_test_response_redirects(const csgi_test_response *response);

/** Free a response. Accepts NULL. */
CSGI_EXTERN void csgi_test_response_free(csgi_test_response *response);

/* ---- Sessions: cookies across requests ----------------------------------------- */

/**
 * A session (opaque): an application and a cookie jar that requests share,
 * like WebTest's TestApp. A request run through the session carries the
 * jar's cookies for its URL, and the Set-Cookie fields of every response
 * go into the jar, by the rules of RFC 6265 a browser follows:
 *
 * - Storing (section 5.3): name=value; Domain, else a host-only cookie for
 *   the request's host (a Domain the host is not in, or under, is
 *   ignored, and so is the whole cookie); Path, else the directory of the
 *   request's path; Max-Age (which wins) or Expires, else a cookie for the
 *   session; Secure. A Max-Age of 0 or less, or an Expires in the past,
 *   deletes the cookie of that name, domain and path; a new one replaces
 *   it, keeping its place. HttpOnly is kept but changes nothing: the test
 *   client is an HTTP client. Expires is read by csgi_date_parse(); a date
 *   it cannot read is ignored, as RFC 6265 says. There is no public
 *   suffix list.
 * - Sending (section 5.4): the cookies whose domain and path match the
 *   request's host and path, Secure ones only to https URLs, in one
 *   Cookie field, longest paths first, then oldest first. A Cookie field
 *   the request has of its own is sent as well (the environ joins the two
 *   with "; ").
 *
 * @code
 * csgi_test_session *session = NULL;
 * csgi_test_response *response = NULL;
 * csgi_test_session_new(&session, app);
 * csgi_test_session_get(&response, session, "/login?user=ann"); // Set-Cookie: sid=...
 * csgi_test_response_free(response);
 * csgi_test_session_get(&response, session, "/account");        // Cookie: sid=...
 * csgi_test_session_cookie(session, "sid");
 * csgi_test_response_free(response);
 * csgi_test_session_free(session);
 * @endcode
 */
typedef struct csgi_test_session csgi_test_session;

/**
 * Create a session with an empty cookie jar.
 *
 * @param out where to store the session (owned by the caller:
 *            csgi_test_session_free())
 * @param app the application every request of the session runs through
 *            (borrowed: the session takes a reference of its own with
 *            csgi_app_ref(), so the caller may free its own)
 * @return 0, CSGI_EINVAL (NULL argument), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_test_session_new(csgi_test_session **out, csgi_app *app);

/** Free a session, its cookies and its reference to the application. Accepts NULL. */
CSGI_EXTERN void csgi_test_session_free(csgi_test_session *session);

/**
 * Run a request through the session's application with the jar's
 * cookies, and keep the cookies its response sets (also along the
 * redirects it follows, csgi_test_request_set_follow_redirects()). The
 * request is not changed: the Cookie field is added on the wire only.
 *
 * @param out     where to store the response (owned by the caller:
 *                csgi_test_response_free()); NULL on error
 * @param session the session
 * @param request the request (borrowed)
 * @return as csgi_test_request_run(); also CSGI_ETOOBIG when the jar is
 *         full (3000 cookies).
 */
CSGI_EXTERN int csgi_test_session_run(csgi_test_response **out, csgi_test_session *session,
                                      csgi_test_request *request);

/**
 * GET url through the session in one call (see csgi_test_get()).
 *
 * @param out where to store the response (owned by the caller:
 *            csgi_test_response_free()); NULL on error
 * @param url the URL or target, as for csgi_test_request_new() (copied)
 * @return as csgi_test_request_new() and csgi_test_session_run().
 */
CSGI_EXTERN int csgi_test_session_get(csgi_test_response **out, csgi_test_session *session,
                                      const char *url);

/**
 * The value of a cookie in the jar, whatever its domain and path; of
 * several with that name, the one a Cookie field would list first
 * (longest path, then oldest). Expired cookies are not seen.
 *
 * @param name the cookie's name (case-sensitive)
 * @return the value (borrowed: valid until the jar changes), or NULL when
 *         the jar has no such cookie (or session or name is NULL).
 */
CSGI_EXTERN const char *csgi_test_session_cookie(const csgi_test_session *session,
                                                 const char *name);

/** The number of cookies in the jar (expired ones not counted). */
CSGI_EXTERN size_t csgi_test_session_cookie_count(const csgi_test_session *session);

/**
 * Store a cookie as if the response to a request for url had carried
 * "Set-Cookie: set_cookie", by the same rules (so "sid=x; Max-Age=0"
 * deletes one).
 *
 * @param url        the URL whose response sets it (copied), as for
 *                   csgi_test_request_new(); NULL for "/" on localhost
 * @param set_cookie the Set-Cookie field value, e.g. "sid=abc; Path=/"
 *                   (copied)
 * @return 0 (also when the cookie was deleted); CSGI_EINVAL (NULL
 *         session or set_cookie, a URL csgi_test_request_new() refuses, a
 *         cookie RFC 6265 ignores: no '=', an empty name, a Domain url's
 *         host is not in, control bytes); CSGI_ETOOBIG (a full jar);
 *         CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_test_session_set_cookie(csgi_test_session *session, const char *url,
                                             const char *set_cookie);

/** Delete every cookie of the jar. Accepts NULL. */
CSGI_EXTERN void csgi_test_session_clear_cookies(csgi_test_session *session);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_TESTING_H */
