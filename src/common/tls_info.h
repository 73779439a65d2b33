/*
 * What a TLS connection proves, as the environ shows it (mod_ssl's names,
 * docs/environ.md): made by the engine once per connection (src/http/tls.c)
 * or by the test client for a request it says came over TLS
 * (src/testing/client.c); read by the environ (src/gateway/environ.c).
 */
#ifndef CSGI_COMMON_TLS_INFO_H
#define CSGI_COMMON_TLS_INFO_H

#include <stddef.h>

typedef struct csgi_tls__info {
    const char *protocol;      /* SSL_PROTOCOL: "TLSv1.3" */
    const char *cipher;        /* SSL_CIPHER: OpenSSL's name, "TLS_AES_256_GCM_SHA384" */
    const char *session;       /* SSL_SESSION_RESUMED: "Initial" or "Resumed" */
    const char *server_name;   /* SSL_TLS_SNI: the name the client asked for, or NULL */
    const char *client_verify; /* SSL_CLIENT_VERIFY: "SUCCESS", "NONE", "FAILED:reason" */
    /* The client certificate's subject and issuer (RFC 2253, UTF-8 kept)
       and the certificate as PEM; NULL when the client sent none. */
    const char *client_s_dn;
    const char *client_i_dn;
    const char *client_cert;
    size_t client_cert_len;
} csgi_tls__info;

#endif /* CSGI_COMMON_TLS_INFO_H */
