/**
 * @file csgi/threadpool.h
 * @brief Blocking applications on a pool of threads (Paste's threadpool_workers).
 *
 * An application that blocks (a database driver without an asynchronous
 * interface, a sleep, a long computation) stops the event loop that calls
 * it, and every request of that loop waits. Wrapped by the threadpool
 * filter, it runs on one of a pool of threads instead, while the loop
 * keeps serving:
 *
 * @code
 * csgi_threadpool_options options = CSGI_THREADPOOL_OPTIONS_INIT;
 * options.threads = 16;
 * csgi_app *pooled = NULL;
 * if (csgi_threadpool_new(&pooled, slow_app, &options) != 0)  // takes slow_app
 *     return 1;
 * @endcode
 *
 * In a deploy file the same is `use = egg:csgi#threadpool` in a filter
 * (keys threads, queue, retry_after), or `blocking = true` in the
 * section of the application or filter that blocks (docs/config.md).
 *
 * For each request the filter, on the loop, first gathers the request
 * body (in memory up to body_buffer_size, in a temporary file past it;
 * over max_body it answers 413), so that the application's reads of
 * csgi.input never wait for the network. Then the request waits for a
 * thread; when threads + queue requests are there already it is answered
 * 503 with a Retry-After field. On the thread the application gets an
 * environ of its own (a copy of the request's, with csgi.multithread 1),
 * calls start-response and produces its body there; the status, headers
 * and body go to the request's loop as they come, which sends them. A
 * thread that produces faster than the client reads waits while 128 KiB
 * are queued for its request. An application that fails gets a 500 (or a
 * cut, once the response started) and a line on the error log. When the
 * client leaves, the thread's next piece of body is refused, and what it
 * did is thrown away once it is done; the request's memory lives until
 * then.
 *
 * The threads start with the first request, in the process that serves
 * it (not when the application is built: a master that builds it before
 * it forks its workers starts none), and the pool is shared by the
 * process's event loops. A server stopping gracefully waits for the
 * requests on the pool as for any other; csgi_server_free() waits for the
 * work still running on the threads, and freeing the filter joins them
 * (like any application, it must outlive the requests it serves).
 *
 * What the application may call on a pool thread: the environ functions
 * on its environ (keys, csgi_environ_alloc(), csgi_environ_defer(), whose
 * callbacks run on the loop thread once the thread is done), csgi.input
 * (it never answers CSGI_EAGAIN), csgi.errors (csgi_environ_log(): the
 * lines reach the server's log through the loop), start-response, bodies
 * of every kind, the request and response helpers and handlers. What it
 * may not: anything of the event loop. csgi_environ_event_base() gives
 * NULL there, csgi_body_resume() does nothing, and a body that answers
 * CSGI_EAGAIN ends the response with an error: block instead.
 * csgi_start_response_write() answers CSGI_ESTATE: return a body. Keys
 * the application sets stay in its copy; filters in front of the pool
 * do not see them. docs/middleware.md has the details.
 */
#ifndef CSGI_THREADPOOL_H
#define CSGI_THREADPOOL_H

#include "app.h"
#include "common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of csgi_threadpool_options; CSGI_THREADPOOL_OPTIONS_INIT sets it. */
#define CSGI_THREADPOOL_OPTIONS_VERSION 1

/** csgi_threadpool_options.queue: no request waits for a thread; when
    every thread is busy the next one gets 503 at once. */
#define CSGI_THREADPOOL_NO_QUEUE (~0u)

/** The default of csgi_threadpool_options.threads (Paste's threadpool_workers). */
#define CSGI_THREADPOOL_THREADS_DEFAULT 10u
/** The default of csgi_threadpool_options.queue. */
#define CSGI_THREADPOOL_QUEUE_DEFAULT 64u
/** The default of csgi_threadpool_options.retry_after, in seconds. */
#define CSGI_THREADPOOL_RETRY_AFTER_DEFAULT 1u
/** The most threads a pool runs. */
#define CSGI_THREADPOOL_THREADS_MAX 1024u

/** Threadpool options. Start from CSGI_THREADPOOL_OPTIONS_INIT; 0 means the default. */
typedef struct csgi_threadpool_options {
    unsigned version;          /**< CSGI_THREADPOOL_OPTIONS_VERSION */
    unsigned threads;          /**< threads that run the application, at most
                                    CSGI_THREADPOOL_THREADS_MAX: 10 */
    unsigned queue;            /**< requests that may wait for a thread beyond those
                                    running, else 503: 64; CSGI_THREADPOOL_NO_QUEUE = none */
    unsigned retry_after;      /**< seconds the 503's Retry-After field says: 1 */
    uint64_t max_body;         /**< request body bytes gathered at most, else 413: no limit
                                    but the server's */
    size_t body_buffer_size;   /**< bytes of body kept in memory, past them a file: 16 KiB */
    const char *body_temp_dir; /**< where the file goes (copied): $TMPDIR, else /tmp */
} csgi_threadpool_options;

/** Initializer for csgi_threadpool_options: every field its default. */
#define CSGI_THREADPOOL_OPTIONS_INIT                         \
    {                                                        \
        CSGI_THREADPOOL_OPTIONS_VERSION, 0, 0, 0, 0, 0, NULL \
    }

/**
 * Wrap an application so that each request runs it on a thread of a pool
 * of its own.
 *
 * @param out     where to store the filter (reference count 1)
 * @param app     the blocking application; taken (freeing the filter frees
 *                it), also when this call fails
 * @param options the options (copied), or NULL for the defaults
 * @return 0; CSGI_EINVAL (out or app NULL, an unknown options version, more
 *         than CSGI_THREADPOOL_THREADS_MAX threads), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_threadpool_new(csgi_app **out, csgi_app *app,
                                    const csgi_threadpool_options *options);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_THREADPOOL_H */
