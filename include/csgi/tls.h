/**
 * @file csgi/tls.h
 * @brief HTTPS listeners: certificates, client certificates, protocols.
 *
 * A server listens with TLS on an address given to csgi_server_listen_tls()
 * with these options (the `[server:]` keys cert_file, key_file, ca_file,
 * verify_client, ... of egg:csgi#http say the same; docs/tls.md). TLS is
 * OpenSSL's, run by the engine on the connection's own socket: requests
 * over it are the same requests, their environ has csgi.url_scheme
 * "https", HTTPS "on" and mod_ssl's SSL_* keys (docs/environ.md).
 */
#ifndef CSGI_TLS_H
#define CSGI_TLS_H

#include "common.h"
#include "errors.h"
#include "server.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What a listener asks of its clients' certificates. */
typedef enum csgi_tls_verify {
    CSGI_TLS_VERIFY_NONE = 0,     /**< asks for none (the default) */
    CSGI_TLS_VERIFY_OPTIONAL = 1, /**< asks; a client may send none, but one it sends
                                       must verify against ca_file (as mod_ssl's optional) */
    CSGI_TLS_VERIFY_REQUIRED = 2  /**< a client without a certificate that verifies
                                       against ca_file fails the handshake */
} csgi_tls_verify;

/** One certificate of a listener, with its private key. */
typedef struct csgi_tls_certificate {
    const char *cert_file; /**< PEM: the certificate, then its chain (borrowed) */
    const char *key_file;  /**< PEM private key (borrowed); NULL = in cert_file */
} csgi_tls_certificate;

/** Version of csgi_tls_options; CSGI_TLS_OPTIONS_INIT sets it. */
#define CSGI_TLS_OPTIONS_VERSION 1

/**
 * A TLS listener's options. Start from CSGI_TLS_OPTIONS_INIT (or
 * csgi_tls_options_init()). Every pointer is borrowed for the call that
 * takes the options; the files are read then, and again when the server
 * re-reads its certificates (csgi_server_reload_tls(), SIGHUP).
 */
typedef struct csgi_tls_options {
    unsigned version; /**< CSGI_TLS_OPTIONS_VERSION */
    /** The certificates (at least one). The first is the default; each
        other one is chosen for a client whose SNI name it holds (its
        subjectAltName DNS names, wildcards included, or its common name). */
    const csgi_tls_certificate *certificates;
    size_t certificate_count;
    const char *ca_file;           /**< PEM CAs client certificates must chain to; NULL =
                                        none (verify_client must then be NONE) */
    csgi_tls_verify verify_client; /**< CSGI_TLS_VERIFY_NONE */
    const char *min_protocol;      /**< "TLSv1.2" (NULL) or "TLSv1.3" */
    const char *ciphers;           /**< TLS 1.2 cipher list (OpenSSL's syntax); NULL = OpenSSL's */
    const char *ciphersuites;      /**< TLS 1.3 suites; NULL = OpenSSL's */
    unsigned handshake_timeout_ms; /**< a handshake not done by then is cut: 0 = 10 s */
    /** Session tickets: their keys change every ticket_rotation_s (0 = one
        hour); a ticket opens for two periods. CSGI_TLS_NO_TICKETS turns
        tickets off. */
    unsigned ticket_rotation_s;
} csgi_tls_options;

/** ticket_rotation_s: no session tickets. */
#define CSGI_TLS_NO_TICKETS 0xffffffffu

/** Default TLS options. */
#define CSGI_TLS_OPTIONS_INIT                                              \
    {                                                                      \
        CSGI_TLS_OPTIONS_VERSION, NULL, 0, NULL, 0, NULL, NULL, NULL, 0, 0 \
    }

/** Fill *options with the defaults (same as CSGI_TLS_OPTIONS_INIT). */
CSGI_EXTERN void csgi_tls_options_init(csgi_tls_options *options);

/**
 * Listen on an address with TLS, now: the certificates, keys and CAs are
 * read and checked before anything binds (a missing file, a key that does
 * not match its certificate: one error log line naming the file).
 *
 * With workers, every worker serves the listener with the same keys (and
 * the same session ticket keys, so a ticket works whichever worker gets
 * the next connection).
 *
 * @param server  the server
 * @param address as csgi_server_listen()
 * @param options borrowed for the call
 * @return 0, CSGI_EINVAL (bad options or files: logged), CSGI_ENOMEM, or
 *         what csgi_server_listen() returns.
 */
CSGI_EXTERN int csgi_server_listen_tls(csgi_server *server, const char *address,
                                       const csgi_tls_options *options);

/**
 * Read the certificates, keys and CAs of every TLS listener again (what
 * SIGHUP does): new connections use them; those open keep theirs. A
 * listener whose files fail keeps its old ones, and one error log line
 * says why.
 *
 * Safe from any thread while the server runs: the switch is locked.
 *
 * @return 0 when every listener took its new files, else CSGI_EINVAL
 *         (logged; the old ones serve).
 */
CSGI_EXTERN int csgi_server_reload_tls(csgi_server *server);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_TLS_H */
