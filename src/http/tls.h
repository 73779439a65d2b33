/*
 * TLS for the engine (internal): a listener's OpenSSL contexts, and
 * OpenSSL run on a connection's own socket (docs/architecture.md, "TLS").
 *
 * A csgi_http__tls is what a listener serves with: the contexts built from
 * csgi_tls_options (one per certificate, chosen by SNI), rebuilt from the
 * same files by csgi_http__tls_reload(). Connections take the current
 * contexts when they are accepted and keep them for their life, so a
 * reload never touches an open connection.
 *
 * The connection side (csgi_http__tls_conn_*) is called by connection.c
 * only where a plain connection does its socket I/O: reading, flushing,
 * shutting the write side, closing. A plain connection never reaches it.
 */
#ifndef CSGI_HTTP_TLS_H
#define CSGI_HTTP_TLS_H

#include "common/tls_info.h"

#include <csgi/tls.h>

#include <stddef.h>
#include <stdint.h>

typedef struct csgi_http__tls csgi_http__tls;
typedef struct csgi_http__tls_conn csgi_http__tls_conn;
struct csgi_http__conn;
struct csgi_http__request;

/* Build a listener's TLS from options (validated, files read now). why:
   what was wrong, naming the file ("cert_file /x.pem: no such file").
   0, CSGI_EINVAL or CSGI_ENOMEM. */
int csgi_http__tls_new(csgi_http__tls **out, const csgi_tls_options *options, char *why,
                       size_t why_size);

/* Read the files again; the new contexts serve the connections accepted
   from now on. When they fail, the old ones stay and why says why:
   CSGI_EINVAL. Thread-safe. */
int csgi_http__tls_reload(csgi_http__tls *tls, char *why, size_t why_size);

/* Accepts NULL. The connections still open keep what they use. */
void csgi_http__tls_free(csgi_http__tls *tls);

/* The handshake deadline in milliseconds. */
unsigned csgi_http__tls_handshake_ms(const csgi_http__tls *tls);

/* ---- a connection (connection.c) ---- */

/* Start the server side of a handshake on conn's socket fd: conn->tls.
   0, or CSGI_ENOMEM (conn->tls NULL). */
int csgi_http__tls_conn_new(struct csgi_http__conn *conn, csgi_http__tls *tls, int fd);

/* Read what the client sent into conn->in (which exists), driving the
   handshake first: as conn_read does, it sets conn->peer_eof or
   conn->io_error (a failed handshake logs one info line). When OpenSSL
   must write first (or, flushing, read first), it waits for that itself
   and goes on from there (csgi_http__conn_resume). */
void csgi_http__tls_conn_read(struct csgi_http__conn *conn);

/* conn_flush over TLS: encrypt and write what *pending says is queued in
   conn->out, in records of at most 16 KiB. */
int csgi_http__tls_conn_flush(struct csgi_http__conn *conn, size_t *pending, uint64_t *written);

/* The response was cut: the close must not look like a clean end
   (no close_notify). */
void csgi_http__tls_conn_truncated(struct csgi_http__conn *conn);

/* Before the write side is shut: send close_notify (once, best effort). */
void csgi_http__tls_conn_shutdown(struct csgi_http__conn *conn);

/* 1 when the handshake is done. */
int csgi_http__tls_conn_ready(const struct csgi_http__conn *conn);

/* 1 when OpenSSL holds decrypted bytes not read yet. */
int csgi_http__tls_conn_pending(const struct csgi_http__conn *conn);

/* Free the connection's TLS (close_notify first after a clean end). */
void csgi_http__tls_conn_free(struct csgi_http__conn *conn);

/* What the request's connection proves (made at the first call on the
   connection, kept until it closes), or NULL on a plain connection. */
const csgi_tls__info *csgi_http__request_tls(struct csgi_http__request *req);

#endif /* CSGI_HTTP_TLS_H */
