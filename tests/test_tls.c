/*
 * Test certificates: see test_tls.h.
 */
#include "test_tls.h"

#include <check.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static pid_t maker;

static void remove_dir(void)
{
    if (dir[0] && getpid() == maker) {
        char command[128];
        snprintf(command, sizeof(command), "rm -rf '%s'", dir);
        if (system(command) != 0) {
            /* a leftover directory under /tmp: harmless */
        }
    }
}

/* The script: EC P-256 keys are quick to make. */
static const char script[] =
    "set -e\n"
    "cd \"$1\"\n"
    "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1.key\"; }\n"
    "ca() { key \"$1\"; openssl req -x509 -new -key \"$1.key\" -out \"$1.pem\" -days 30 "
    "-subj \"/CN=$2\" -addext basicConstraints=critical,CA:TRUE "
    "-addext keyUsage=critical,keyCertSign,cRLSign; }\n"
    /* name, CA, days, subject, extensions */
    "cert() { key \"$1\"; openssl req -new -key \"$1.key\" -out \"$1.csr\" -subj \"$4\"; "
    "printf '%s\\n' \"$5\" > \"$1.ext\"; "
    "openssl x509 -req -in \"$1.csr\" -CA \"$2.pem\" -CAkey \"$2.key\" -CAcreateserial "
    "-out \"$1.pem\" -days \"$3\" -extfile \"$1.ext\"; }\n"
    "ca ca 'csgi test CA'\n"
    "ca rogue-ca 'rogue CA'\n"
    "cert server ca 30 /CN=localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1'\n"
    "cert other ca 30 /CN=other.test 'subjectAltName=DNS:other.test,DNS:*.other.test'\n"
    "cert expired ca -1 /CN=localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1'\n"
    "cert client ca 30 '/O=csgi tests/CN=client' 'extendedKeyUsage=clientAuth'\n"
    "cert rogue-client rogue-ca 30 /CN=rogue 'extendedKeyUsage=clientAuth'\n";

const char *test_tls_dir(void)
{
    if (dir[0])
        return dir;
    char made[] = "/tmp/csgi-tls-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(made));
    snprintf(dir, sizeof(dir), "%s", made);
    maker = getpid();
    atexit(remove_dir);
    char path[96];
    snprintf(path, sizeof(path), "%s/make.sh", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(script, f);
    fclose(f);
    char command[256];
    snprintf(command, sizeof(command), "sh '%s' '%s' >'%s/make.log' 2>&1", path, dir, dir);
    ck_assert_msg(system(command) == 0, "openssl failed making the test certificates (%s/make.log)",
                  dir);
    return dir;
}

const char *test_tls_file(const char *name)
{
    static char paths[8][128];
    static unsigned next;
    char *path = paths[next++ % 8];
    snprintf(path, sizeof(paths[0]), "%s/%s", test_tls_dir(), name);
    return path;
}

int test_tls_mode(void)
{
    const char *mode = getenv("CSGI_TEST_TLS");
    return mode && strcmp(mode, "1") == 0;
}

int test_shell(char *out, size_t cap, const char *format, ...)
{
    char command[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(command, sizeof(command), format, args);
    va_end(args);
    FILE *p = popen(command, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
