/*
 * libFuzzer target for the TLS record path: the engine with a TLS listener
 * (two certificates chosen by SNI, ALPN, optional client certificates,
 * session tickets) on 127.0.0.1, and the input sent by a client as its
 * side of the connection, then its write side shut. What parses the
 * client's bytes is OpenSSL's, but the engine's TLS read (handshake,
 * errors, plain HTTP answered 400, EOF), the SNI, ALPN and ticket
 * callbacks (a ticket's key name, IV and contents come from the input) and
 * the close all run on it.
 *
 * Invariant: the server closes every connection once the client has shut
 * its side (within the handshake deadline), and the engine keeps serving:
 * no connection is left open after a run. A violation aborts.
 *
 * The key pairs below are for this fuzzer only (self-signed, P-256).
 */
#include "fuzz_common.h"

#include "http/engine.h"
#include "http/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char cert_pem[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBozCCAUqgAwIBAgIUAOJJGH5xEFBHX1rzRkdrfTjrs0UwCgYIKoZIzj0EAwIw\n"
                               "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMzE3MzQ0N1oYDzIxMjYxMTA5\n"
                               "MTczNDQ3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
                               "PQMBBwNCAASwaRZ0Aml3n2ou7yElHwH1qUKG+ns9tNAkIpRY4HRtl2czPM+BKMND\n"
                               "0JZe/BAK0EfF50gsh5NVSHF77zH+EZ81o3gwdjAdBgNVHQ4EFgQUJLmF5TKJtogc\n"
                               "ND/eSwJPwf+CgM0wHwYDVR0jBBgwFoAUJLmF5TKJtogcND/eSwJPwf+CgM0wDwYD\n"
                               "VR0TAQH/BAUwAwEB/zAjBgNVHREEHDAagglsb2NhbGhvc3SCDSouZXhhbXBsZS5v\n"
                               "cmcwCgYIKoZIzj0EAwIDRwAwRAIgECzFuSg5u4CsfJ4GV9TyM+E8E8Zt7Tu+S9xC\n"
                               "mvBwno4CIDEOmKznbT7QyAv7oNx6gb0sVyj1vDPqX/F4ldcZjBZY\n"
                               "-----END CERTIFICATE-----\n";

static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJYkBrwICIug3sKbd\n"
                              "We6mp+YT96z4Y28/iTMomPaIdZyhRANCAASwaRZ0Aml3n2ou7yElHwH1qUKG+ns9\n"
                              "tNAkIpRY4HRtl2czPM+BKMND0JZe/BAK0EfF50gsh5NVSHF77zH+EZ81\n"
                              "-----END PRIVATE KEY-----\n";

static const char other_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmDCCAT6gAwIBAgIUZOmbKI8i0HgHfMu64QFI2yRWsuswCgYIKoZIzj0EAwIw\n"
    "FTETMBEGA1UEAwwKb3RoZXIudGVzdDAgFw0yNjEyMDMxNzM0NDdaGA8yMTI2MTEw\n"
    "OTE3MzQ0N1owFTETMBEGA1UEAwwKb3RoZXIudGVzdDBZMBMGByqGSM49AgEGCCqG\n"
    "SM49AwEHA0IABAoJKtoDeq/2+4LHn8UMAB7JysUMA5DVd2elWvL8UAnUQSLV0mnN\n"
    "SVKrgPvmynmOsGDmltEhd64Tg5OGH2V/AnajajBoMB0GA1UdDgQWBBRPHkipZ+Xl\n"
    "M6MQfZKuCjD/KEG/XzAfBgNVHSMEGDAWgBRPHkipZ+XlM6MQfZKuCjD/KEG/XzAP\n"
    "BgNVHRMBAf8EBTADAQH/MBUGA1UdEQQOMAyCCm90aGVyLnRlc3QwCgYIKoZIzj0E\n"
    "AwIDSAAwRQIgNi2z6U5GK7a2Joa8d91cSzhtC3m9DMZng3p0AD6KCckCIQC9yJ0n\n"
    "3jepmjnggcCzPEMsbkMpNY9RO8u30MJgOXt0KQ==\n"
    "-----END CERTIFICATE-----\n";

static const char other_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfcAdFni6hSI0SQBl\n"
    "PCDk6+szvDdvoA+SdXv3d651kdShRANCAAQKCSraA3qv9vuCx5/FDAAeycrFDAOQ\n"
    "1XdnpVry/FAJ1EEi1dJpzUlSq4D75sp5jrBg5pbRIXeuE4OThh9lfwJ2\n"
    "-----END PRIVATE KEY-----\n";

static csgi_http__engine *engine;
static csgi_http__tls *tls;
static int port;

static void quiet(int level, const char *message, void *userdata)
{
    (void)level;
    (void)message;
    (void)userdata;
}

static void on_request(csgi_http__request *req, void *userdata)
{
    (void)userdata;
    csgi_http__response_start(req, 200, NULL, NULL, 0, 2);
    csgi_http__response_write(req, "ok", 2);
    csgi_http__response_finish(req);
}

static void *serve(void *arg)
{
    (void)arg;
    csgi_http__engine_run(engine);
    return NULL;
}

/* Write text to dir/name; its path in out. */
static void write_file(const char *dir, const char *name, const char *text, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
    FILE *f = fopen(out, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void start(void)
{
    char dir[] = "/tmp/csgi-fuzz-tls-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    static char paths[4][64];
    write_file(dir, "cert.pem", cert_pem, paths[0], sizeof(paths[0]));
    write_file(dir, "key.pem", key_pem, paths[1], sizeof(paths[1]));
    write_file(dir, "other.pem", other_cert_pem, paths[2], sizeof(paths[2]));
    write_file(dir, "other.key", other_key_pem, paths[3], sizeof(paths[3]));
    csgi_tls_certificate certificates[2] = {{paths[0], paths[1]}, {paths[2], paths[3]}};
    csgi_tls_options options;
    csgi_tls_options_init(&options);
    options.certificates = certificates;
    options.certificate_count = 2;
    options.ca_file = paths[0];
    options.verify_client = CSGI_TLS_VERIFY_OPTIONAL;
    options.handshake_timeout_ms = 1000;
    char why[256];
    CHECK(csgi_http__tls_new(&tls, &options, why, sizeof(why)) == 0);
    for (int i = 0; i < 4; i++)
        unlink(paths[i]); /* read already */
    rmdir(dir);

    csgi_http__options engine_options;
    csgi_http__options_init(&engine_options);
    engine_options.log = quiet;
    csgi_http__handler handler = {on_request, NULL};
    CHECK(csgi_http__engine_new(&engine, &engine_options, &handler, NULL) == 0);
    CHECK(csgi_http__engine_listen(engine, "127.0.0.1:0") == 0);
    CHECK(csgi_http__engine_listener_set_tls(engine, 0, tls) == 0);
    port = csgi_http__engine_listener_port(engine, 0);
    CHECK(csgi_http__engine_start(engine) == 0);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, serve, NULL) == 0);
    pthread_detach(thread);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!engine)
        start();
    if (size > 65536)
        return 0;
    /* The server closes first, so its side of each connection waits in
       TIME_WAIT: tens of thousands of runs a minute would use up one
       source address's ports. Each run takes the next of 64 516 loopback
       addresses (127.1.1.1 to 127.1.254.254), and the port is chosen at
       connect (IP_BIND_ADDRESS_NO_PORT), where the kernel can avoid a
       pair still in TIME_WAIT from the last round of addresses; bind()
       alone picked one blind, and a connect failed once in ~100,000 runs.
       A failing connect is the harness's, not the engine's: the next
       address is tried. */
    static unsigned runs;
    int fd = -1, err = 0;
    for (int attempt = 0; fd < 0 && attempt < 16; attempt++) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in addr;
        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        unsigned slot = runs++ % (254u * 254u);
        addr.sin_addr.s_addr = htonl(0x7f010000u | ((1 + slot / 254) << 8) | (1 + slot % 254));
        struct sockaddr_in to;
        memset(&to, 0, sizeof(to));
        to.sin_family = AF_INET;
        to.sin_port = htons((unsigned short)port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
            connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        fprintf(stderr, "fuzz_tls: run %u: no connection after 16 addresses: %s\n", runs,
                strerror(err));
    CHECK(fd >= 0);
    /* What the server answers may fill the socket while we send: read it
       away as we go. */
    size_t sent = 0;
    int closed = 0;
    long deadline = now_ms() + 5000;
    char buf[65536];
    while (!closed && now_ms() < deadline) {
        short events = POLLIN | (sent < size ? POLLOUT : 0);
        struct pollfd p = {fd, events, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (p.revents & POLLIN) {
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n <= 0)
                closed = 1;
        } else if (p.revents & (POLLERR | POLLHUP)) {
            closed = 1;
        }
        if (!closed && sent < size && (p.revents & POLLOUT)) {
            ssize_t n = send(fd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0)
                closed = 1;
            if (sent == size)
                shutdown(fd, SHUT_WR);
        }
        if (!closed && size == 0 && sent == 0) {
            shutdown(fd, SHUT_WR);
            sent = 1; /* nothing to send */
        }
    }
    close(fd);
    if (!closed) /* the server closes within the handshake deadline */
        fprintf(stderr, "fuzz_tls: run %u: not closed after %ld ms (%zu of %zu bytes sent)\n", runs,
                now_ms() - (deadline - 5000), sent, size);
    CHECK(closed);
    /* And forgot the connection. The bound is far above what it takes
       (a few ms): a loaded machine must not fail the run. */
    long since = now_ms(), until = since + 10000;
    while (csgi_http__engine_connection_count(engine) > 0 && now_ms() < until)
        usleep(1000);
    if (csgi_http__engine_connection_count(engine) > 0)
        fprintf(stderr, "fuzz_tls: run %u: %zu connection(s) still open %ld ms after the close\n",
                runs, (size_t)csgi_http__engine_connection_count(engine), now_ms() - since);
    CHECK(csgi_http__engine_connection_count(engine) == 0);
    return 0;
}
