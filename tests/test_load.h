/*
 * A load client for the tests of csgi-serve under load (check_load): up to
 * LOAD_MAX_CONNECTIONS keep-alive connections to 127.0.0.1, each sending a
 * GET, reading the whole answer (bench/client.h frames it) and sending the
 * next at once, all in one thread of their own with poll(2). It answers
 * workerapp's text ("message=mN pid=P ...", tests/modules/workerapp.c) and
 * counts:
 *
 *   - answers: a whole 200 answer. One with `Connection: close` is no
 *     error: the connection closes and a new one takes its place.
 *   - failures: a request outstanding (sent in whole or in part) when the
 *     connection is reset or closed, an answer that is not 200 or not
 *     workerapp's, no answer within LOAD_REQUEST_TIMEOUT_MS.
 *   - refused connects: a connect that is refused or fails.
 *   - idle closes: the server closed the connection after an answer
 *     without `Connection: close`, seen before the next request went out
 *     (no request was lost; a client less lucky would have sent one).
 *   - regressions: an answer whose message number is lower than the one of
 *     the answer before it on the same connection slot (a connection and
 *     those that replace it): the load went back to an older pipeline.
 *
 * With split_ms > 0 every request head is written in two pieces, split at
 * a place that moves on by one byte with each request, with split_ms
 * between them: the answers must not depend on packet boundaries.
 *
 * Calls from the test's thread take a lock the client holds while it
 * handles what poll(2) found, so what they see is consistent.
 */
#ifndef CSGI_TESTS_TEST_LOAD_H
#define CSGI_TESTS_TEST_LOAD_H

#include <stddef.h>

#define LOAD_MAX_CONNECTIONS 64
/* A request with no answer by then fails (and its connection closes). */
#define LOAD_REQUEST_TIMEOUT_MS 10000
/* The failures kept for load_failures(); more are only counted. */
#define LOAD_MAX_FAILURES 256

typedef struct load_client load_client;

/* One failed request. */
typedef struct load_failure {
    int slot;         /* which connection slot, 0 .. connections - 1 */
    long pid;         /* the worker that answered the connection last; 0: none yet */
    int status;       /* the answer's status for "status", else 0 */
    const char *what; /* "reset", "closed", "timeout", "status", "malformed", "send" */
    long long at_ms;  /* now_ms() when it was seen */
} load_failure;

typedef struct load_counts {
    long long requests;    /* requests whose first byte was sent */
    long long answers;     /* whole 200 answers */
    long long closes;      /* answers with Connection: close */
    long long failures;    /* failed requests */
    long long refused;     /* connects refused or failed */
    long long idle_closes; /* see above */
    long long regressions; /* see above */
    int lowest_message;    /* the lowest of the slots' last message numbers (0: a slot has none) */
} load_counts;

/* Start connections (1 .. LOAD_MAX_CONNECTIONS) to 127.0.0.1:port; fails
   the test when the thread cannot start. */
load_client *load_start(int port, int connections, int split_ms);

/* Stop the thread, close the connections (requests outstanding then are no
   failures), set *out (NULL allowed) to the final counts and free c. */
void load_stop(load_client *c, load_counts *out);

/* The counts so far. */
void load_get_counts(load_client *c, load_counts *out);

/* Up to max of the failures so far into out; returns how many. */
int load_failures(load_client *c, load_failure *out, int max);

/* How many slots the worker pid answered last. */
int load_slots_on(load_client *c, long pid);

/* The pid that answered the most slots last, that many in *slots. */
long load_busiest_pid(load_client *c, int *slots);

/* Wait (at most timeout_ms) until every slot's last answer carried message
   number message or a higher one: 1 when it happened. */
int load_wait_message(load_client *c, int message, long timeout_ms);

/* Wait (at most timeout_ms) until every slot had an answer after now_ms()
   reached since_ms: 1 when it happened. */
int load_wait_answered_since(load_client *c, long long since_ms, long timeout_ms);

/* A line of the counts for a failure message or the test's output. */
void load_describe(const load_counts *counts, char *buf, size_t size);

/* The failures (at most a few dozen) described, one a line, into buf. */
void load_describe_failures(load_client *c, char *buf, size_t size);

#endif
