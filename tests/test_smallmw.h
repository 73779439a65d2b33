/*
 * What the suites of the small bundled middleware (debug, translogger,
 * basic_auth, ratelimit) share: a deploy file's pipeline loaded with a
 * test application behind, one request through the test client, and the
 * server's log lines caught in memory for the tests over real sockets.
 */
#ifndef CSGI_TESTS_TEST_SMALLMW_H
#define CSGI_TESTS_TEST_SMALLMW_H

#include <csgi.h>

#include <pthread.h>
#include <stddef.h>

/* A loader knowing egg:Test#hello (answers "hello", or "hello USER" when
   REMOTE_USER is set) and egg:Test#stream (a body of three pieces, the
   second answered later from a timer) and egg:Test#fail (whose call
   fails). Fails the test on error. */
csgi_loader *smallmw_loader(void);

/* Load name from ini (written to a temporary file named file) with
   loader; the application (owned by the caller). */
csgi_app *smallmw_load(csgi_loader *loader, const char *file, const char *ini, const char *name);

/* Load name from ini, written to a new temporary file each call (the
   loader keeps what it read of a path): the load must fail with want in
   its message. */
void smallmw_load_fails(csgi_loader *loader, const char *ini, const char *name, const char *want);

/* Run method url through app with headers ("Name: value" lines joined by
   \n, or NULL) from remote (NULL: the client's default). */
csgi_test_response *smallmw_run(csgi_app *app, const char *method, const char *url,
                                const char *remote, const char *headers);

/* Log lines of a server running in another thread, kept in order. */
typedef struct captured_log {
    pthread_mutex_t lock;
    char text[65536];
    size_t len;
} captured_log;

void captured_log_init(captured_log *log);
/* A csgi_log_fn appending message and a newline to the captured_log userdata. */
void captured_log_fn(int level, const char *message, void *userdata);
/* 1 when text shows in the log within timeout_ms. */
int captured_log_wait(captured_log *log, const char *text, int timeout_ms);

#endif
