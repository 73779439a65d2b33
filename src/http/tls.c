/*
 * TLS for the engine: a listener's OpenSSL contexts (certificates chosen by
 * SNI, client certificates, ALPN, session tickets whose keys rotate) and
 * OpenSSL on a connection's own socket, mapped onto the connection's read
 * and flush (docs/architecture.md, "TLS").
 *
 * Reading. A connection reads at most one TLS record per event: SSL_read
 * gets 16 KiB of contiguous room, the largest record's plaintext, and
 * OpenSSL (read_ahead off) takes from the socket only the bytes of the
 * record it decrypts. So nothing decrypted waits inside OpenSSL where
 * epoll cannot see it, and the socket's readiness keeps meaning what it
 * means for a plain connection: the state machine stays as it is.
 *
 * Writing. The queued output goes through SSL_write in pieces of at most a
 * record, pulled up from the output buffer (a head and a small body become
 * one record and one write(2)); SSL_MODE_ENABLE_PARTIAL_WRITE returns each
 * record as it is written and ACCEPT_MOVING_WRITE_BUFFER lets a retry after
 * WANT_WRITE come from the buffer wherever pullup put it. A file body is
 * not sent with sendfile(2): csgi_http__response_sendfile clears the output
 * buffer's EVBUFFER_FLAG_DRAINS_TO_FD (plain TCP's sendfile sets it), so
 * libevent maps the file range when it is added, and it is encrypted from
 * the mapping a record at a time, never copied whole.
 */
#include "http/tls.h"

#include "common/alloc.h"
#include "common/options.h"
#include "http/private.h"

#include <event2/buffer.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The largest record's plaintext. */
#define RECORD 16384

#define DEFAULT_HANDSHAKE_MS 10000u
#define DEFAULT_ROTATION_S   3600u

/* Records a flush writes before the loop turns (a plain flush makes at
   most 4 writev calls). */
#define FLUSH_RECORDS 16

/* One generation of a listener's contexts: what csgi_http__tls_new or a
   reload built. It belongs to its default context (ex_data, freed with
   it), which every connection accepted with it holds: a connection keeps
   its generation, whatever reloads happen. */
typedef struct generation {
    SSL_CTX **contexts; /* [0] the default; the others by SNI */
    size_t count;
    unsigned char secret[32]; /* the listener's ticket secret */
    unsigned rotation_s;      /* 0: no tickets */
} generation;

struct csgi_http__tls {
    pthread_mutex_t lock; /* current: taken at accept, swapped by reload */
    SSL_CTX *current;     /* the current generation's default context */
    /* The options, copied, to build again on reload. */
    csgi_tls_options options;
    csgi_tls_certificate *certificates;
    char **strings; /* every string copied, for freeing */
    size_t string_count;
    unsigned char secret[32]; /* kept across reloads: tickets outlive them */
};

struct csgi_http__tls_conn {
    SSL *ssl;
    /* What OpenSSL waits for besides the state machine's events (a read
       that must write first, or the reverse): one-shot, on the same
       socket, so the plain state machine never has to know. */
    struct event want;
    unsigned char want_armed;
    unsigned char ready;     /* handshake done */
    unsigned char truncated; /* the response was cut: no close_notify */
    unsigned char info_made;
    csgi_tls__info info;
    char *strings; /* info's strings, one block */
};

/* ---- OpenSSL's indices ------------------------------------------------------ */

static int generation_owner = -1; /* on the default context: frees the generation */
static int generation_index = -1; /* on every context of it: finds it */
static pthread_once_t indices_once = PTHREAD_ONCE_INIT;

static void generation_free(generation *g)
{
    if (!g)
        return;
    /* [0] is being freed (this runs from its free): the others only. */
    for (size_t i = 1; i < g->count; i++)
        SSL_CTX_free(g->contexts[i]);
    OPENSSL_cleanse(g->secret, sizeof(g->secret));
    csgi__free(g->contexts);
    csgi__free(g);
}

static void owner_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    generation_free(ptr);
}

static void make_indices(void)
{
    generation_owner = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, owner_free);
    generation_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---- Errors ------------------------------------------------------------------ */

/* OpenSSL's reason for the last error (and the queue emptied). */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return reason ? reason : "unknown error";
}

/* ---- Callbacks ------------------------------------------------------------- */

/* ALPN: http/1.1 when the client offers it. A client offering only what
   csgi does not speak (h2 alone) gets a fatal alert, as nginx does; one
   that offers nothing gets no ALPN answer. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                       const unsigned char *in, unsigned in_len, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    (void)ssl;
    (void)arg;
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, out_len, ours, sizeof(ours) - 1, in, in_len) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

/* SNI: the first certificate that holds the name the client asked for
   (subjectAltName DNS names, wildcards, else the common name); the
   default when none does. */
static int servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const generation *g = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || g->count < 2)
        return SSL_TLSEXT_ERR_OK;
    size_t len = strlen(name);
    for (size_t i = 0; i < g->count; i++) {
        X509 *cert = SSL_CTX_get0_certificate(g->contexts[i]);
        if (cert && X509_check_host(cert, name, len, 0, NULL) == 1) {
            if (i)
                SSL_set_SSL_CTX(ssl, g->contexts[i]);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* The ticket keys of a period: HMAC-SHA256 of the listener's secret over a
   label and the period's number. Every worker and loop of a listener
   derives the same keys, without talking to each other. */
static void ticket_keys(const generation *g, uint64_t period, unsigned char name[16],
                        unsigned char aes[32], unsigned char mac[32])
{
    unsigned char input[9];
    unsigned char out[32];
    unsigned len = 0;
    for (int i = 0; i < 8; i++)
        input[1 + i] = (unsigned char)(period >> (56 - 8 * i));
    input[0] = 'n';
    HMAC(EVP_sha256(), g->secret, sizeof(g->secret), input, sizeof(input), out, &len);
    memcpy(name, out, 16);
    input[0] = 'a';
    HMAC(EVP_sha256(), g->secret, sizeof(g->secret), input, sizeof(input), aes, &len);
    input[0] = 'm';
    HMAC(EVP_sha256(), g->secret, sizeof(g->secret), input, sizeof(input), mac, &len);
    OPENSSL_cleanse(out, sizeof(out));
}

/* Session tickets: sealed with this period's keys; a ticket of the
   previous period still opens (and is replaced: 2). */
static int ticket_key(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *hmac, int enc)
{
    const generation *g = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), generation_index);
    if (!g || !g->rotation_s)
        return 0;
    uint64_t period = (uint64_t)time(NULL) / g->rotation_s;
    unsigned char name[16], aes[32], mac[32];
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    int result = 0;
    if (enc) {
        ticket_keys(g, period, name, aes, mac);
        if (RAND_bytes(iv, 16) == 1 &&
            EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, aes, iv) == 1 &&
            EVP_MAC_init(hmac, mac, sizeof(mac), params) == 1) {
            memcpy(key_name, name, 16);
            result = 1;
        } else {
            result = -1;
        }
    } else {
        for (uint64_t back = 0; back < 2 && result == 0 && period >= back; back++) {
            ticket_keys(g, period - back, name, aes, mac);
            if (memcmp(name, key_name, 16) != 0)
                continue;
            if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, aes, iv) != 1 ||
                EVP_MAC_init(hmac, mac, sizeof(mac), params) != 1)
                result = -1;
            else
                result = back ? 2 : 1;
        }
    }
    OPENSSL_cleanse(aes, sizeof(aes));
    OPENSSL_cleanse(mac, sizeof(mac));
    return result;
}

/* ---- Contexts ---------------------------------------------------------------- */

static int protocol_version(const char *name)
{
    if (!name || strcmp(name, "TLSv1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(name, "TLSv1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

/* Why a key did not load: not the certificate's key, or no key at all. */
static void key_error(char *why, size_t why_size, const char *key_file, const char *cert_file)
{
    const char *reason = ssl_reason();
    if (strcmp(reason, "key values mismatch") == 0)
        snprintf(why, why_size, "key_file %s: not the key of %s", key_file, cert_file);
    else
        snprintf(why, why_size, "key_file %s: no PEM private key for %s (%s)", key_file, cert_file,
                 reason);
}

/* One context for one certificate, or NULL (why says what was wrong). */
static SSL_CTX *context_new(const csgi_tls_options *o, const csgi_tls_certificate *cert, char *why,
                            size_t why_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(why, why_size, "OpenSSL: %s", ssl_reason());
        return NULL;
    }
    const char *key_file = cert->key_file ? cert->key_file : cert->cert_file;
    SSL_CTX_set_min_proto_version(ctx, protocol_version(o->min_protocol));
    /* A client that closes without close_notify has closed: its requests
       carry their own length, so no truncation can pass for a request. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1)
        snprintf(why, why_size, "ciphers '%s': %s", o->ciphers, ssl_reason());
    else if (o->ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1)
        snprintf(why, why_size, "ciphersuites '%s': %s", o->ciphersuites, ssl_reason());
    else if (access(cert->cert_file, R_OK) != 0)
        snprintf(why, why_size, "cert_file %s: %s", cert->cert_file, strerror(errno));
    else if (SSL_CTX_use_certificate_chain_file(ctx, cert->cert_file) != 1)
        snprintf(why, why_size, "cert_file %s: not a PEM certificate (%s)", cert->cert_file,
                 ssl_reason());
    else if (access(key_file, R_OK) != 0)
        snprintf(why, why_size, "key_file %s: %s", key_file, strerror(errno));
    else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
        key_error(why, why_size, key_file, cert->cert_file);
    else if (SSL_CTX_check_private_key(ctx) != 1)
        snprintf(why, why_size, "key_file %s: not the key of %s (%s)", key_file, cert->cert_file,
                 ssl_reason());
    else if (o->ca_file && access(o->ca_file, R_OK) != 0)
        snprintf(why, why_size, "ca_file %s: %s", o->ca_file, strerror(errno));
    else if (o->ca_file && SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
        snprintf(why, why_size, "ca_file %s: no PEM certificate (%s)", o->ca_file, ssl_reason());
    else
        why[0] = '\0';
    if (why[0]) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->ca_file) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        ERR_clear_error();
    }
    int mode = SSL_VERIFY_NONE;
    if (o->verify_client == CSGI_TLS_VERIFY_OPTIONAL)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    else if (o->verify_client == CSGI_TLS_VERIFY_REQUIRED)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE;
    SSL_CTX_set_verify(ctx, mode, NULL);
    /* Resumed sessions must know they were made here (and, with client
       certificates, OpenSSL refuses to resume without it). */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"csgi", 4);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (o->ticket_rotation_s == CSGI_TLS_NO_TICKETS) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    } else {
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key);
        /* Tickets carry the sessions: no cache of them in the server's
           memory (one per process, which a client's next connection may
           not even reach). */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    return ctx;
}

/* A generation from the options: its default context, which owns it. */
static SSL_CTX *generation_new(const csgi_tls_options *o, const unsigned char secret[32], char *why,
                               size_t why_size)
{
    pthread_once(&indices_once, make_indices);
    if (generation_owner < 0 || generation_index < 0) {
        snprintf(why, why_size, "OpenSSL: no ex_data index");
        return NULL;
    }
    generation *g = csgi__calloc(1, sizeof(*g));
    SSL_CTX **contexts = csgi__calloc(o->certificate_count, sizeof(*contexts));
    if (!g || !contexts) {
        csgi__free(g);
        csgi__free(contexts);
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    g->contexts = contexts;
    memcpy(g->secret, secret, sizeof(g->secret));
    g->rotation_s = o->ticket_rotation_s == CSGI_TLS_NO_TICKETS ? 0
                    : o->ticket_rotation_s                      ? o->ticket_rotation_s
                                                                : DEFAULT_ROTATION_S;
    for (; g->count < o->certificate_count; g->count++) {
        SSL_CTX *ctx = context_new(o, &o->certificates[g->count], why, why_size);
        if (!ctx)
            break;
        g->contexts[g->count] = ctx;
        SSL_CTX_set_ex_data(ctx, generation_index, g);
        SSL_CTX_set_tlsext_servername_callback(ctx, servername);
        SSL_CTX_set_tlsext_servername_arg(ctx, g);
    }
    if (g->count < o->certificate_count) {
        for (size_t i = 0; i < g->count; i++)
            SSL_CTX_free(g->contexts[i]);
        g->count = 0;
        generation_free(g);
        return NULL;
    }
    SSL_CTX_set_ex_data(g->contexts[0], generation_owner, g);
    return g->contexts[0];
}

/* Check the options; why says what is wrong. */
static int options_check(const csgi_tls_options *o, char *why, size_t why_size)
{
    if (!o || !csgi_options__version_ok(o->version, CSGI_TLS_OPTIONS_VERSION)) {
        snprintf(why, why_size, "TLS options: unknown version");
        return CSGI_EINVAL;
    }
    if (!o->certificates || !o->certificate_count) {
        snprintf(why, why_size, "cert_file: a TLS listener needs a certificate");
        return CSGI_EINVAL;
    }
    for (size_t i = 0; i < o->certificate_count; i++) {
        if (!o->certificates[i].cert_file || !o->certificates[i].cert_file[0]) {
            snprintf(why, why_size, "cert_file: certificate %zu has no file", i + 1);
            return CSGI_EINVAL;
        }
    }
    if (!protocol_version(o->min_protocol)) {
        snprintf(why, why_size, "min_protocol '%s': not TLSv1.2 or TLSv1.3", o->min_protocol);
        return CSGI_EINVAL;
    }
    if (o->verify_client != CSGI_TLS_VERIFY_NONE && o->verify_client != CSGI_TLS_VERIFY_OPTIONAL &&
        o->verify_client != CSGI_TLS_VERIFY_REQUIRED) {
        snprintf(why, why_size, "verify_client: not none, optional or required");
        return CSGI_EINVAL;
    }
    if (o->verify_client != CSGI_TLS_VERIFY_NONE && !o->ca_file) {
        snprintf(why, why_size,
                 "verify_client: needs ca_file (the CAs client certificates "
                 "chain to)");
        return CSGI_EINVAL;
    }
    return 0;
}

/* A copy of text kept in tls->strings (NULL stays NULL). */
static const char *keep(csgi_http__tls *tls, const char *text, int *failed)
{
    if (!text)
        return NULL;
    char *copy = csgi__strndup(text, strlen(text));
    if (!copy) {
        *failed = 1;
        return NULL;
    }
    tls->strings[tls->string_count++] = copy;
    return copy;
}

int csgi_http__tls_new(csgi_http__tls **out, const csgi_tls_options *options, char *why,
                       size_t why_size)
{
    *out = NULL;
    int err = options_check(options, why, why_size);
    if (err)
        return err;
    csgi_http__tls *tls = csgi__calloc(1, sizeof(*tls));
    size_t strings = 4 + 2 * options->certificate_count;
    if (tls) {
        tls->certificates = csgi__calloc(options->certificate_count, sizeof(*tls->certificates));
        tls->strings = csgi__calloc(strings, sizeof(*tls->strings));
    }
    if (!tls || !tls->certificates || !tls->strings) {
        if (tls) {
            csgi__free(tls->certificates);
            csgi__free(tls->strings);
        }
        csgi__free(tls);
        snprintf(why, why_size, "out of memory");
        return CSGI_ENOMEM;
    }
    pthread_mutex_init(&tls->lock, NULL);
    int failed = 0;
    tls->options = *options;
    tls->options.version = CSGI_TLS_OPTIONS_VERSION;
    tls->options.ca_file = keep(tls, options->ca_file, &failed);
    tls->options.min_protocol = keep(tls, options->min_protocol, &failed);
    tls->options.ciphers = keep(tls, options->ciphers, &failed);
    tls->options.ciphersuites = keep(tls, options->ciphersuites, &failed);
    for (size_t i = 0; i < options->certificate_count; i++) {
        tls->certificates[i].cert_file = keep(tls, options->certificates[i].cert_file, &failed);
        tls->certificates[i].key_file = keep(tls, options->certificates[i].key_file, &failed);
    }
    tls->options.certificates = tls->certificates;
    if (failed) {
        snprintf(why, why_size, "out of memory");
        csgi_http__tls_free(tls);
        return CSGI_ENOMEM;
    }
    if (RAND_bytes(tls->secret, sizeof(tls->secret)) != 1) {
        snprintf(why, why_size, "OpenSSL: no random bytes for the ticket keys");
        csgi_http__tls_free(tls);
        return CSGI_ESYSTEM;
    }
    tls->current = generation_new(&tls->options, tls->secret, why, why_size);
    if (!tls->current) {
        csgi_http__tls_free(tls);
        return CSGI_EINVAL;
    }
    *out = tls;
    return 0;
}

int csgi_http__tls_reload(csgi_http__tls *tls, char *why, size_t why_size)
{
    SSL_CTX *fresh = generation_new(&tls->options, tls->secret, why, why_size);
    if (!fresh)
        return CSGI_EINVAL;
    pthread_mutex_lock(&tls->lock);
    SSL_CTX *old = tls->current;
    tls->current = fresh;
    pthread_mutex_unlock(&tls->lock);
    SSL_CTX_free(old); /* the connections made with it hold it */
    return 0;
}

void csgi_http__tls_free(csgi_http__tls *tls)
{
    if (!tls)
        return;
    SSL_CTX_free(tls->current);
    for (size_t i = 0; i < tls->string_count; i++)
        csgi__free(tls->strings[i]);
    csgi__free(tls->strings);
    csgi__free(tls->certificates);
    OPENSSL_cleanse(tls->secret, sizeof(tls->secret));
    pthread_mutex_destroy(&tls->lock);
    csgi__free(tls);
}

unsigned csgi_http__tls_handshake_ms(const csgi_http__tls *tls)
{
    return tls->options.handshake_timeout_ms ? tls->options.handshake_timeout_ms
                                             : DEFAULT_HANDSHAKE_MS;
}

/* ---- A connection ------------------------------------------------------------ */

int csgi_http__tls_conn_new(csgi_http__conn *conn, csgi_http__tls *tls, int fd)
{
    conn->tls = NULL;
    csgi_http__tls_conn *t = csgi__calloc(1, sizeof(*t));
    if (!t)
        return CSGI_ENOMEM;
    pthread_mutex_lock(&tls->lock);
    t->ssl = SSL_new(tls->current);
    pthread_mutex_unlock(&tls->lock);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        ERR_clear_error();
        SSL_free(t->ssl);
        csgi__free(t);
        return CSGI_ENOMEM;
    }
    SSL_set_accept_state(t->ssl);
    conn->tls = t;
    return 0;
}

/* The handshake is done: the first head's deadline counts from now. */
static void handshake_done(csgi_http__conn *conn)
{
    conn->tls->ready = 1;
    unsigned ms = csgi_http__conn_options(conn)->header_timeout_ms;
    struct timeval limit = {ms / 1000, (ms % 1000) * 1000};
    event_base_gettimeofday_cached(conn->loop->base, &conn->deadline);
    evutil_timeradd(&conn->deadline, &limit, &conn->deadline);
    if (csgi_http__conn_options(conn)->log_level >= CSGI_LOG__DEBUG) {
        const char *name = SSL_get_servername(conn->tls->ssl, TLSEXT_NAMETYPE_host_name);
        csgi_http__conn_log(conn, CSGI_LOG__DEBUG, "TLS: %s %s%s%s%s",
                            SSL_get_version(conn->tls->ssl), SSL_get_cipher_name(conn->tls->ssl),
                            name ? ", SNI " : "", name ? name : "",
                            SSL_session_reused(conn->tls->ssl) ? ", resumed" : "");
    }
}

/* A client that spoke plain HTTP to the TLS port gets a plain 400 saying
   so, as nginx answers, rather than a close it cannot explain. Best
   effort: one write, then the rest of its request is read away so that
   the close does not reset the answer. */
static void answer_plain_http(csgi_http__conn *conn)
{
    static const char answer[] = "HTTP/1.1 400 Bad Request\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Content-Length: 48\r\n"
                                 "Connection: close\r\n"
                                 "\r\n"
                                 "A plain HTTP request was sent to an HTTPS port.\n";
    int fd = event_get_fd(&conn->ev);
    if (send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        return;
    shutdown(fd, SHUT_WR);
    char scratch[4096];
    while (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0) {
    }
}

/* What OpenSSL waited for came: go on as the connection's own event
   would, a read that wanted to write reading again, and the reverse. */
static void want_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    csgi_http__conn *conn = arg;
    conn->tls->want_armed = 0;
    csgi_http__conn_resume(conn, (what & EV_WRITE) != 0); /* a read wanted to write */
}

/* Wait (once) for events on the socket, besides what the state machine
   armed. */
static void want(csgi_http__conn *conn, short events)
{
    csgi_http__tls_conn *t = conn->tls;
    if (t->want_armed)
        event_del(&t->want);
    event_assign(&t->want, conn->loop->base, event_get_fd(&conn->ev), events, want_ready, conn);
    t->want_armed = event_add(&t->want, NULL) == 0;
}

/* SSL_read or SSL_write failed with code: 0 to wait (for the other
   direction through want(), when OpenSSL needs it), else the connection
   ends (peer_eof or io_error set). */
static int failed(csgi_http__conn *conn, int ret, int code, int reading)
{
    csgi_http__tls_conn *t = conn->tls;
    switch (code) {
    case SSL_ERROR_WANT_READ:
        if (!reading)
            want(conn, EV_READ);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        if (reading)
            want(conn, EV_WRITE);
        return 0;
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or a close (IGNORE_UNEXPECTED_EOF) */
        if (!t->ready)
            csgi_http__conn_log(conn, CSGI_LOG__INFO, "closed during the TLS handshake");
        conn->peer_eof = 1;
        return -1;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (ret == 0 || errno == 0 || errno == ECONNRESET) {
            if (!t->ready)
                csgi_http__conn_log(conn, CSGI_LOG__INFO, "closed during the TLS handshake");
            if (reading && errno != ECONNRESET) {
                conn->peer_eof = 1;
            } else {
                conn->io_error = errno ? errno : EPIPE;
            }
            return -1;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        conn->io_error = errno;
        return -1;
    default: {
        unsigned long e = ERR_peek_error();
        int reason = ERR_GET_REASON(e);
        const char *text = e ? ERR_reason_error_string(e) : NULL;
        long verify = SSL_get_verify_result(t->ssl);
        if (!t->ready && reason == SSL_R_HTTP_REQUEST) {
            csgi_http__conn_log(conn, CSGI_LOG__INFO,
                                "TLS handshake failed: plain HTTP sent to the TLS port (answered "
                                "400)");
            answer_plain_http(conn);
        } else if (!t->ready && verify != X509_V_OK) {
            csgi_http__conn_log(conn, CSGI_LOG__INFO, "TLS handshake failed: %s (%s)",
                                text ? text : "error", X509_verify_cert_error_string(verify));
        } else {
            csgi_http__conn_log(conn, CSGI_LOG__INFO, "TLS %s failed: %s",
                                t->ready ? "connection" : "handshake", text ? text : "error");
        }
        ERR_clear_error();
        conn->io_error = EPROTO;
        return -1;
    }
    }
}

void csgi_http__tls_conn_read(csgi_http__conn *conn)
{
    csgi_http__tls_conn *t = conn->tls;
    /* One record; a second read only when OpenSSL still holds some of it
       (not expected with a record's room), since those bytes would wait
       for a socket event that never comes. */
    for (int pass = 0; pass < 2; pass++) {
        struct evbuffer_iovec vec;
        if (evbuffer_reserve_space(conn->in, RECORD, &vec, 1) < 1) {
            conn->io_error = ENOMEM;
            return;
        }
        ERR_clear_error();
        errno = 0;
        int len = vec.iov_len > RECORD ? RECORD : (int)vec.iov_len;
        int n = SSL_read(t->ssl, vec.iov_base, len);
        if (n > 0) {
            vec.iov_len = (size_t)n;
            evbuffer_commit_space(conn->in, &vec, 1);
        } else {
            evbuffer_commit_space(conn->in, &vec, 0);
            failed(conn, n, SSL_get_error(t->ssl, n), 1);
        }
        if (!t->ready && SSL_is_init_finished(t->ssl))
            handshake_done(conn);
        if (n <= 0 || SSL_pending(t->ssl) <= 0)
            return;
    }
}

int csgi_http__tls_conn_flush(csgi_http__conn *conn, size_t *pending, uint64_t *written)
{
    csgi_http__tls_conn *t = conn->tls;
    for (int i = 0; *pending > 0 && i < FLUSH_RECORDS; i++) {
        size_t len = *pending < RECORD ? *pending : RECORD;
        /* A head and a small body, or the pieces of a chunked body, become
           one record; a large piece is taken where it is. */
        unsigned char *data = evbuffer_pullup(conn->out, (ssize_t)len);
        if (!data) {
            conn->io_error = ENOMEM;
            return -1;
        }
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(t->ssl, data, (int)len);
        if (n <= 0)
            return failed(conn, n, SSL_get_error(t->ssl, n), 0);
        evbuffer_drain(conn->out, (size_t)n);
        *pending -= (size_t)n;
        *written += (uint64_t)n;
    }
    return 0;
}

void csgi_http__tls_conn_truncated(csgi_http__conn *conn)
{
    conn->tls->truncated = 1;
}

void csgi_http__tls_conn_shutdown(csgi_http__conn *conn)
{
    csgi_http__tls_conn *t = conn->tls;
    if (!t->ready || t->truncated || conn->io_error ||
        (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* one try: a full socket loses it, as a close would */
    ERR_clear_error();
}

int csgi_http__tls_conn_ready(const csgi_http__conn *conn)
{
    return conn->tls->ready;
}

int csgi_http__tls_conn_pending(const csgi_http__conn *conn)
{
    return SSL_has_pending(conn->tls->ssl);
}

void csgi_http__tls_conn_free(csgi_http__conn *conn)
{
    csgi_http__tls_conn *t = conn->tls;
    if (t->want_armed)
        event_del(&t->want);
    csgi_http__tls_conn_shutdown(conn);
    SSL_free(t->ssl);
    csgi__free(t->strings);
    csgi__free(t);
    conn->tls = NULL;
}

/* ---- What the connection proves ------------------------------------------------- */

/* A name as mod_ssl shows it: RFC 2253, UTF-8 left as it is. */
static void print_name(BIO *bio, const X509_NAME *name)
{
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    BIO_write(bio, "", 1);
}

static void info_make(csgi_http__tls_conn *t)
{
    csgi_tls__info *info = &t->info;
    t->info_made = 1;
    info->protocol = SSL_get_version(t->ssl);
    info->cipher = SSL_get_cipher_name(t->ssl);
    info->session = SSL_session_reused(t->ssl) ? "Resumed" : "Initial";
    info->server_name = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    if (!peer) {
        info->client_verify = "NONE";
        return;
    }
    long verify = SSL_get_verify_result(t->ssl);
    const char *reason = verify == X509_V_OK ? NULL : X509_verify_cert_error_string(verify);
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) {
        info->client_verify = "FAILED:out of memory";
        return;
    }
    /* One block: subject, issuer, verify, PEM; each NUL-terminated. */
    print_name(bio, X509_get_subject_name(peer));
    size_t issuer_at = (size_t)BIO_pending(bio);
    print_name(bio, X509_get_issuer_name(peer));
    size_t verify_at = (size_t)BIO_pending(bio);
    if (reason)
        BIO_printf(bio, "FAILED:%s", reason);
    else
        BIO_puts(bio, "SUCCESS");
    BIO_write(bio, "", 1);
    size_t cert_at = (size_t)BIO_pending(bio);
    PEM_write_bio_X509(bio, peer);
    size_t cert_len = (size_t)BIO_pending(bio) - cert_at;
    BIO_write(bio, "", 1);
    char *data = NULL;
    long total = BIO_get_mem_data(bio, &data);
    char *block = total > 0 ? csgi__malloc((size_t)total) : NULL;
    if (!block) {
        BIO_free(bio);
        ERR_clear_error();
        info->client_verify = "FAILED:out of memory";
        return;
    }
    memcpy(block, data, (size_t)total);
    BIO_free(bio);
    t->strings = block;
    info->client_s_dn = block;
    info->client_i_dn = block + issuer_at;
    info->client_verify = block + verify_at;
    info->client_cert = block + cert_at;
    info->client_cert_len = cert_len;
}

const csgi_tls__info *csgi_http__request_tls(csgi_http__request *req)
{
    csgi_http__tls_conn *t = req->conn->tls;
    if (!t)
        return NULL;
    if (!t->info_made)
        info_make(t);
    return &t->info;
}
