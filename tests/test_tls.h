/*
 * Certificates for the TLS tests, made at test time with the openssl CLI in
 * a directory of their own under /tmp (nothing comes from outside the
 * test): a CA; "server" for localhost and 127.0.0.1; "other" for
 * other.test and *.other.test (SNI); "expired" (localhost, expired
 * yesterday); "client" (CN=client, O=csgi tests), a client certificate of
 * the CA; "rogue-client", one of another CA ("rogue-ca"). Each NAME has
 * NAME.pem and NAME.key.
 */
#ifndef CSGI_TESTS_TEST_TLS_H
#define CSGI_TESTS_TEST_TLS_H

#include <stddef.h>

/* The directory, made at the first call in this process (removed when
   the process that made it exits). Fails the test when openssl fails. */
const char *test_tls_dir(void);

/* The path of a file of it ("ca.pem", "server.key"): one of 8 static
   buffers, reused in turn. */
const char *test_tls_file(const char *name);

/* Run a shell command (printf-style, at most 1 KiB): its exit status (-1
   when it did not exit), its standard output in out (cap bytes, NUL-
   terminated). */
int test_shell(char *out, size_t cap, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when CSGI_TEST_TLS=1: the engine harness serves and connects over
   TLS, so a suite's cases run through the TLS transport too. */
int test_tls_mode(void);

#endif
