/*
 * The threadpool filter (include/csgi/threadpool.h), its INI factory
 * (egg:csgi#threadpool), and the pool of threads it runs applications on.
 *
 * Two threads share a request, and each works on objects of its own:
 *
 *   the loop    gathers the body, queues a job, and returns a body of its
 *               own to the server at once; that body replays what the
 *               application answers, with the request's environ and
 *               start-response;
 *   a thread    runs the application with a copy of the environ (in the
 *               job's arena) and a start-response of the job's, and posts
 *               what it answers to the job as parcels: start-response's
 *               arguments, the body's length, its pieces; then its end.
 *
 * The loop's body replays the parcels in order (start-response on the
 * request's start-response, the pieces as its own), so every rule of the
 * protocol is the server's response driver's, applied on the loop as for
 * any application: a thread breaks it the way a loop application would,
 * and gets the same answer. The parcels and the job's flags are shared
 * under the lock of the job's mailbox: one per pool and event loop, whose
 * eventfd wakes the loop when a job has news. (libevent's own way, event
 * activation from another thread, needs evthread's locks on every event of
 * every request, pooled or not; an eventfd costs the pooled ones only.)
 *
 * Lifetimes. A job is freed on the loop once both sides are done with it:
 * the thread said so (job->done, its last post), and the loop's body was
 * closed. The copied environ borrows the request's memory (the head, the
 * keys' strings, the gathered body, pointer values), so the request is
 * held (csgi_driver__hold) from the job's queueing to its freeing: when
 * the client leaves, the request ends, its memory stays until the thread
 * is done, and the thread's next piece of body is refused. A server's
 * loops are freed only once no request is held (csgi_http__engine_free),
 * and a test client's run waits likewise.
 *
 * Locks: the pool's guards its queue and counts, a mailbox's the parcels,
 * log lines and flags of its jobs; neither is taken while the other is
 * held. A thread that produced QUEUED_MAX bytes the loop has not taken
 * waits on its job's condition (backpressure: the loop takes pieces as
 * the client reads).
 */
#include "common/alloc.h"
#include "common/arena.h"
#include "common/log.h"
#include "common/options.h"
#include "gateway/app_private.h"
#include "gateway/driver.h"
#include "gateway/environ_private.h"
#include "gateway/head.h"
#include "helpers/gather.h"
#include "helpers/helpers.h"
#include "http/parser.h"
#include "middleware/middleware.h"

#include <csgi/response.h>
#include <csgi/threadpool.h>

#include <event2/event.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIECE      (64 * 1024)  /* the most body bytes a parcel holds */
#define PIECE_MIN  (16 * 1024)  /* room a parcel is made with, for the small writes that follow */
#define QUEUED_MAX (128 * 1024) /* body bytes queued for the loop before the thread waits */

/* The bytes of a request body kept in memory by default. */
#define BODY_BUFFER_DEFAULT (16u * 1024u)

typedef struct pool pool;
typedef struct mailbox mailbox;
typedef struct job job;

/* ---- Parcels: what a thread posts to the loop ------------------------------------------- */

enum parcel_kind { PARCEL_START, PARCEL_LENGTH, PARCEL_DATA };

typedef struct parcel {
    struct parcel *next;
    int kind;
    size_t len;      /* PARCEL_DATA: bytes in data */
    size_t capacity; /* PARCEL_DATA: room in data */
    int64_t length;  /* PARCEL_LENGTH: the body's length */
    /* PARCEL_START: start-response's arguments, copied into data */
    const char *status;
    const char *exc_info;
    const csgi_header *headers;
    size_t count;
    alignas(max_align_t) char data[];
} parcel;

static parcel *parcel_new(int kind, size_t room)
{
    if (room > SIZE_MAX - sizeof(parcel))
        return NULL;
    parcel *p = csgi__malloc(sizeof(parcel) + room);
    if (p)
        *p = (parcel){.kind = kind, .capacity = room};
    return p;
}

static void parcels_free(parcel *p)
{
    while (p) {
        parcel *next = p->next;
        csgi__free(p);
        p = next;
    }
}

/* A line the application logged on its thread, for the loop to write. */
typedef struct log_entry {
    struct log_entry *next;
    int level;
    char line[];
} log_entry;

/* ---- The pool, its mailboxes and jobs --------------------------------------------------- */

struct pool {
    csgi_app *app; /* run on the threads (owned) */
    unsigned threads;
    unsigned queue; /* requests that may wait beyond the running ones */
    char retry_after[24];
    csgi_gather__limits limits;
    char *temp_dir;

    pthread_mutex_t lock;
    pthread_cond_t work;   /* a job was queued, or the pool stops */
    job *first, *last;     /* waiting for a thread */
    unsigned waiting;      /* jobs queued (or about to be) */
    unsigned running;      /* jobs on a thread */
    pthread_t *thread_ids; /* started threads */
    unsigned started;      /* how many */
    pid_t pid;             /* the process that started them */
    int stopping;          /* the threads end when the queue is empty */
    mailbox *mailboxes;    /* one per loop with jobs */
};

/* How a pool's threads reach one event loop. The loop's: made with its
   first job, freed with its last (a test client's loop lives for one
   request). */
struct mailbox {
    mailbox *next; /* in pool->mailboxes (pool lock) */
    pool *pool;
    struct event_base *base;
    struct event *event; /* reads fd */
    int fd;              /* eventfd: written when news comes to an empty list */
    size_t jobs;         /* jobs of this loop not freed yet (the loop's) */

    pthread_mutex_t lock;
    job *news;     /* jobs with news the loop has not looked at */
    int signalled; /* fd written since the loop read it */
};

/* One request between its loop and a thread, in an arena of its own. */
struct job {
    csgi_arena arena; /* the job's memory: this struct, the environ's copy */
    pool *pool;
    mailbox *mailbox;
    job *queue_next;     /* pool lock */
    unsigned char taken; /* pool lock: a thread has it */

    /* The thread's while it runs it (the loop's before). */
    csgi_environ *environ; /* the copy the application gets */
    csgi_environ__source source;
    struct sockaddr_storage peer, local;
    csgi_start_response start_response; /* the root of the thread's chain */
    unsigned char started;              /* start-response was called */
    unsigned char head_request;         /* no body bytes need to cross */

    /* Shared: mailbox lock. */
    parcel *first, *last;
    size_t queued; /* body bytes in the parcels */
    log_entry *logs, **logs_tail;
    pthread_cond_t drained; /* queued fell below QUEUED_MAX, or abandoned */
    job *news_next;
    int result;              /* once done: 0, or the application failed */
    unsigned char in_news;   /* in mailbox->news */
    unsigned char done;      /* the thread is done with the job */
    unsigned char abandoned; /* the loop's body was closed (written by the loop only) */

    /* The loop's. */
    job *mail_next;        /* in the news on_mail took */
    unsigned char freeing; /* job_free runs: log lines go out at once */
    csgi_driver *driver;   /* the request's, held */
    const csgi_environ__source *request_source;
    csgi_start_response *parent; /* the start-response the filter was called with */
    csgi_body *outer;            /* the loop's body (the call's) */
    parcel *current;             /* the piece outer gave last */
};

/* The filter's state for one request, in its arena (the loop's). */
typedef struct call {
    pool *pool;
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_body *body;        /* the filter's body, returned while the answer comes */
    csgi_body *answer;      /* an answer of the loop's own: 413, 503, ... */
    job *job;               /* the job, once queued */
    csgi_input *waiting_on; /* while the body is gathered */
    int failed;             /* no answer could be made (logged) */
} call;

/* ---- Mailboxes (the loop's, but for news) ------------------------------------------------ */

/* Put j in the mailbox's news and wake the loop if it has none pending.
   Mailbox lock held. */
static void announce_news(mailbox *mb, job *j)
{
    if (j->in_news)
        return;
    j->in_news = 1;
    j->news_next = mb->news;
    mb->news = j;
    if (!mb->signalled) {
        mb->signalled = 1;
        uint64_t one = 1;
        if (write(mb->fd, &one, sizeof(one)) < 0)
            mb->signalled = 0; /* cannot fail for an eventfd below its maximum */
    }
}

static void on_mail(evutil_socket_t fd, short what, void *arg);

/* The mailbox of p for base, made when that loop has none. */
static mailbox *mailbox_for(pool *p, struct event_base *base)
{
    pthread_mutex_lock(&p->lock);
    mailbox *mb = p->mailboxes;
    while (mb && mb->base != base)
        mb = mb->next;
    pthread_mutex_unlock(&p->lock);
    if (mb)
        return mb;
    mb = csgi__calloc(1, sizeof(*mb));
    if (!mb)
        return NULL;
    mb->pool = p;
    mb->base = base;
    mb->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mb->fd < 0) {
        csgi__free(mb);
        return NULL;
    }
    mb->event = event_new(base, mb->fd, EV_READ | EV_PERSIST, on_mail, mb);
    if (!mb->event || event_add(mb->event, NULL) != 0 || pthread_mutex_init(&mb->lock, NULL) != 0) {
        if (mb->event)
            event_free(mb->event);
        close(mb->fd);
        csgi__free(mb);
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    mb->next = p->mailboxes;
    p->mailboxes = mb;
    pthread_mutex_unlock(&p->lock);
    return mb;
}

/* A job of the mailbox's loop was freed; the last one frees the mailbox.
   Every thread posted its last to it already, so no thread touches it. */
static void mailbox_unref(mailbox *mb)
{
    if (--mb->jobs)
        return;
    pool *p = mb->pool;
    pthread_mutex_lock(&p->lock);
    mailbox **at = &p->mailboxes;
    while (*at != mb)
        at = &(*at)->next;
    *at = mb->next;
    pthread_mutex_unlock(&p->lock);
    event_free(mb->event);
    close(mb->fd);
    pthread_mutex_destroy(&mb->lock);
    csgi__free(mb);
}

/* ---- Jobs on the loop ------------------------------------------------------------------ */

static void write_log(const job *j, int level, const char *line)
{
    const csgi_environ__source *source = j->request_source;
    if (source->log)
        source->log(source->log_context, level, line);
}

/* The lines the application logged on its thread go to the request's log. */
static void flush_logs(job *j)
{
    mailbox *mb = j->mailbox;
    pthread_mutex_lock(&mb->lock);
    log_entry *e = j->logs;
    j->logs = NULL;
    j->logs_tail = &j->logs;
    pthread_mutex_unlock(&mb->lock);
    while (e) {
        log_entry *next = e->next;
        write_log(j, e->level, e->line);
        csgi__free(e);
        e = next;
    }
}

/* Both sides are done with j: free it, and let go of its request. */
static void job_free(job *j)
{
    mailbox *mb = j->mailbox;
    pthread_mutex_lock(&mb->lock);
    if (j->in_news) {
        job **at = &mb->news;
        while (*at != j)
            at = &(*at)->news_next;
        *at = j->news_next;
        j->in_news = 0;
    }
    parcel *parcels = j->first;
    j->first = j->last = NULL;
    pthread_mutex_unlock(&mb->lock);
    parcels_free(parcels);
    csgi__free(j->current);
    flush_logs(j);
    /* The application's deferred callbacks run now, on the loop, while the
       request's memory they may read still lives; their lines go out at
       once. */
    j->freeing = 1;
    csgi_driver *driver = j->driver;
    pthread_cond_destroy(&j->drained);
    csgi_arena arena = j->arena;
    csgi_arena__clear(&arena);
    mailbox_unref(mb);
    csgi_driver__release(driver);
}

/* The loop learns that j has news. */
static void job_news(job *j)
{
    flush_logs(j);
    if (!j->abandoned) {
        csgi_body_resume(j->outer);
        return;
    }
    mailbox *mb = j->mailbox;
    pthread_mutex_lock(&mb->lock);
    int done = j->done;
    pthread_mutex_unlock(&mb->lock);
    if (done)
        job_free(j); /* its request ended first: the thread's work is thrown away */
}

static void on_mail(evutil_socket_t fd, short what, void *arg)
{
    mailbox *mb = arg;
    uint64_t count;
    (void)what;
    if (read(fd, &count, sizeof(count)) < 0)
        count = 0; /* EAGAIN: read already; the list says what is new */
    /* The jobs are listed again through mail_next, which only the loop
       uses: once the lock is let go, a thread may put a job back into the
       news, through news_next. */
    pthread_mutex_lock(&mb->lock);
    job *list = mb->news;
    mb->news = NULL;
    mb->signalled = 0;
    for (job *j = list; j; j = j->news_next) {
        j->in_news = 0;
        j->mail_next = j->news_next;
    }
    pthread_mutex_unlock(&mb->lock);
    /* Each job belongs to a request of its own: processing one (which may
       free it, and with the last job the mailbox) leaves the others. */
    while (list) {
        job *j = list;
        list = j->mail_next;
        job_news(j);
    }
}

/* The next piece of the answer, for the loop's body: parcels are replayed
   in order, the last one given is freed at the next call. */
static int job_next(job *j, csgi_chunk *chunk)
{
    mailbox *mb = j->mailbox;
    csgi__free(j->current);
    j->current = NULL;
    for (;;) {
        pthread_mutex_lock(&mb->lock);
        parcel *p = j->first;
        int done = j->done, result = j->result;
        if (p) {
            j->first = p->next;
            if (!j->first)
                j->last = NULL;
            if (p->kind == PARCEL_DATA) {
                j->queued -= p->len;
                if (j->queued < QUEUED_MAX)
                    pthread_cond_signal(&j->drained);
            }
        }
        pthread_mutex_unlock(&mb->lock);
        if (!p)
            return done ? (result ? CSGI_EIO : 0) : CSGI_EAGAIN;
        if (p->kind == PARCEL_DATA) {
            chunk->data = p->data;
            chunk->len = p->len;
            j->current = p;
            return 1;
        }
        /* The server's start-response decides, and logs what it refuses:
           a loop application's answer would be treated the same. */
        if (p->kind == PARCEL_START)
            csgi_start_response_call(j->parent, p->status, p->headers, p->count, p->exc_info);
        else
            csgi_body_set_length(j->outer, p->length);
        csgi__free(p);
    }
}

/* The loop's body was closed (the response is over, or the client left). */
static void job_close(job *j)
{
    csgi__free(j->current);
    j->current = NULL;
    pool *p = j->pool;
    pthread_mutex_lock(&p->lock);
    int queued = !j->taken;
    if (queued) {
        /* No thread has it: it never runs. */
        job *previous = NULL, **at = &p->first;
        while (*at != j) {
            previous = *at;
            at = &previous->queue_next;
        }
        *at = j->queue_next;
        if (p->last == j)
            p->last = previous;
        p->waiting--;
    }
    pthread_mutex_unlock(&p->lock);
    if (!queued) {
        mailbox *mb = j->mailbox;
        pthread_mutex_lock(&mb->lock);
        j->abandoned = 1;
        int done = j->done;
        pthread_cond_signal(&j->drained); /* a thread waiting to post gives up */
        pthread_mutex_unlock(&mb->lock);
        if (!done)
            return; /* the thread's last post frees it (job_news) */
    }
    job_free(j);
}

/* ---- Jobs on a thread ---------------------------------------------------------------- */

/* Post p to the loop. 0, or CSGI_ECLOSED (p freed) when the loop's side is
   gone. */
static int post(job *j, parcel *p)
{
    mailbox *mb = j->mailbox;
    pthread_mutex_lock(&mb->lock);
    int abandoned = j->abandoned;
    if (!abandoned) {
        p->next = NULL;
        if (j->last)
            j->last->next = p;
        else
            j->first = p;
        j->last = p;
        if (p->kind == PARCEL_DATA)
            j->queued += p->len;
        announce_news(mb, j);
    }
    pthread_mutex_unlock(&mb->lock);
    if (abandoned) {
        csgi__free(p);
        return CSGI_ECLOSED;
    }
    return 0;
}

/* Body bytes to the loop, waiting while QUEUED_MAX bytes are queued. A
   piece of 0 bytes goes as one (the server sends the head with a body's
   first piece). 0, CSGI_ECLOSED (the client left), CSGI_ENOMEM. */
static int forward(job *j, const char *data, size_t len)
{
    mailbox *mb = j->mailbox;
    do {
        pthread_mutex_lock(&mb->lock);
        while (j->queued >= QUEUED_MAX && !j->abandoned)
            pthread_cond_wait(&j->drained, &mb->lock);
        if (j->abandoned) {
            pthread_mutex_unlock(&mb->lock);
            return CSGI_ECLOSED;
        }
        /* Into the last parcel, while the loop has not taken it: small
           writes do not make a parcel each when the loop is behind. The
           loop will take it, so it needs no news. */
        parcel *tail = j->last;
        if (len && tail && tail->kind == PARCEL_DATA && tail->len < tail->capacity) {
            size_t n = tail->capacity - tail->len < len ? tail->capacity - tail->len : len;
            memcpy(tail->data + tail->len, data, n);
            tail->len += n;
            j->queued += n;
            pthread_mutex_unlock(&mb->lock);
            data += n;
            len -= n;
            continue;
        }
        pthread_mutex_unlock(&mb->lock);
        size_t n = len < PIECE ? len : PIECE;
        parcel *p = parcel_new(PARCEL_DATA, n < PIECE_MIN ? PIECE_MIN : n);
        if (!p)
            return CSGI_ENOMEM;
        if (n)
            memcpy(p->data, data, n);
        p->len = n;
        int rc = post(j, p);
        if (rc != 0)
            return rc;
        data += n;
        len -= n;
    } while (len);
    return 0;
}

/* The thread is done with j, whatever happened: after this it touches
   nothing of it (the loop may free it at once). */
static void post_done(job *j, int result)
{
    mailbox *mb = j->mailbox;
    pthread_mutex_lock(&mb->lock);
    j->result = result;
    j->done = 1;
    announce_news(mb, j);
    pthread_mutex_unlock(&mb->lock);
}

/* A line on the request's log from the thread: the loop writes it (the
   log function belongs to the loop), or at once while the job is freed
   (then this is the loop). */
static void job_log(void *context, int level, const char *line)
{
    job *j = context;
    if (j->freeing) {
        write_log(j, level, line);
        return;
    }
    size_t len = strlen(line);
    log_entry *e = csgi__malloc(sizeof(*e) + len + 1);
    if (!e)
        return;
    e->next = NULL;
    e->level = level;
    memcpy(e->line, line, len + 1);
    mailbox *mb = j->mailbox;
    pthread_mutex_lock(&mb->lock);
    *j->logs_tail = e;
    j->logs_tail = &e->next;
    announce_news(mb, j);
    pthread_mutex_unlock(&mb->lock);
}

static void thread_log(job *j, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void thread_log(job *j, const char *format, ...)
{
    char text[300];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    csgi_environ_log(j->environ, "%s: %s", csgi_app_name(j->pool->app), text);
}

/* The application's start-response, on its thread: checked as the server
   will check it (for the return value), and posted as it was given. */
static int thread_start_response(const char *status, const csgi_header *headers, size_t count,
                                 const char *exc_info, void *userdata)
{
    job *j = userdata;
    int rc;
    if (j->started && !exc_info) {
        rc = CSGI_ESTATE;
    } else {
        csgi_gateway__head head;
        const char *problem = NULL;
        rc = csgi_gateway__head_build(&j->arena, status, headers, count, &head, &problem);
        if (rc == 0)
            j->started = 1;
    }
    size_t status_len = strlen(status) + 1;
    size_t exc_len = exc_info ? strlen(exc_info) + 1 : 0;
    size_t size = count * sizeof(csgi_header) + status_len + exc_len;
    for (size_t i = 0; i < count; i++)
        size += headers[i].name_len + headers[i].value_len;
    parcel *p = parcel_new(PARCEL_START, size);
    if (!p)
        return CSGI_ENOMEM;
    csgi_header *copy = (csgi_header *)(void *)p->data;
    char *cursor = p->data + count * sizeof(csgi_header);
    for (size_t i = 0; i < count; i++) {
        copy[i].name = cursor;
        copy[i].name_len = headers[i].name_len;
        memcpy(cursor, headers[i].name, headers[i].name_len);
        cursor += headers[i].name_len;
        copy[i].value = cursor;
        copy[i].value_len = headers[i].value_len;
        memcpy(cursor, headers[i].value, headers[i].value_len);
        cursor += headers[i].value_len;
    }
    memcpy(cursor, status, status_len);
    p->status = cursor;
    cursor += status_len;
    if (exc_info) {
        memcpy(cursor, exc_info, exc_len);
        p->exc_info = cursor;
    }
    p->headers = copy;
    p->count = count;
    /* A client that left is not the application's failure: its body's
       first piece finds out. */
    post(j, p);
    return rc;
}

/* Run the application for j and pull its body to the end, posting what
   it answers. */
static void run_job(pool *p, job *j)
{
    int result = CSGI_EIO;
    csgi_body *body = csgi_app_call(p->app, j->environ, &j->start_response);
    if (!body) {
        thread_log(j, "the application failed (returned no body)");
        post_done(j, result);
        return;
    }
    /* Bytes and files know their length now, an iterator once it gave its
       first piece (csgi_body_set_length()); the loop's body declares it. */
    csgi_body_kind kind = csgi_body_kind_of(body);
    int64_t length = kind == CSGI_BODY_ITERATOR ? -1 : csgi_body_length(body);
    for (int first = 1;; first = 0) {
        csgi_chunk chunk = {NULL, 0};
        int r = csgi_body_next(body, &chunk);
        if (r == CSGI_EAGAIN) {
            thread_log(j, "the body answered CSGI_EAGAIN on a pool thread, where nothing "
                          "resumes it: block instead");
            break;
        }
        if (r < 0) {
            thread_log(j, "the response body failed: %s", csgi_strerror(r));
            break;
        }
        if (first) {
            if (kind == CSGI_BODY_ITERATOR)
                length = csgi_body_length(body);
            parcel *declared = length >= 0 ? parcel_new(PARCEL_LENGTH, 0) : NULL;
            if (declared)
                declared->length = length;
            if (length >= 0 && (!declared || post(j, declared) != 0))
                break;
            /* A response to HEAD sends no body: its first piece, empty,
               is all the server needs (the head goes out with it). */
            if (r > 0 && j->head_request && forward(j, "", 0) != 0)
                break;
        }
        if (r == 0) {
            result = 0;
            break;
        }
        int rc = j->head_request ? 0 : forward(j, chunk.data, chunk.len);
        if (rc != 0) {
            if (rc != CSGI_ECLOSED) /* a client that left needs no line */
                thread_log(j, "cannot pass the body on: %s", csgi_strerror(rc));
            break;
        }
    }
    csgi_body_close(body);
    post_done(j, result);
}

static void *thread_main(void *arg)
{
    pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->first && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        job *j = p->first;
        if (!j)
            break; /* stopping, and nothing waits */
        p->first = j->queue_next;
        if (!p->first)
            p->last = NULL;
        j->taken = 1;
        p->waiting--;
        p->running++;
        pthread_mutex_unlock(&p->lock);
        run_job(p, j);
        pthread_mutex_lock(&p->lock);
        p->running--;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Start the threads in the process that serves, at its first request:
   never in a master that builds the application before it forks (threads
   do not survive fork). Pool lock held. 0, or CSGI_ESTATE (started by
   another process), CSGI_ENOMEM, CSGI_ESYSTEM. */
static int start_threads(pool *p)
{
    if (p->started)
        return p->pid == getpid() ? 0 : CSGI_ESTATE;
    if (!p->thread_ids && !(p->thread_ids = csgi__calloc(p->threads, sizeof(*p->thread_ids))))
        return CSGI_ENOMEM;
    /* Signals are for the thread that waits for them (the server's loop),
       not for a pool thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (p->started < p->threads &&
           pthread_create(&p->thread_ids[p->started], NULL, thread_main, p) == 0)
        p->started++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    p->pid = getpid();
    return p->started ? 0 : CSGI_ESYSTEM;
}

/* ---- The filter (the loop's) ------------------------------------------------------------ */

/* An answer of the filter's own, rendered as the client's Accept (or
   csgi.error_format) asks, as the handlers' are. NULL: a 500. */
static csgi_body *answer(call *c, int status, const char *detail, const char *retry_after)
{
    csgi_response *response = NULL;
    if (csgi_response_error(&response, c->environ, status, detail) != 0 ||
        (retry_after && csgi_response_set_header(response, "Retry-After", retry_after) != 0))
        return NULL;
    return csgi_response_send(response, c->environ, c->start_response);
}

/* The answer when the body could not be gathered. */
static csgi_body *refuse(call *c, int rc)
{
    char detail[96], text[64];
    switch (rc) {
    case CSGI_ETOOBIG:
        csgi_helpers__too_long(c->environ, (size_t)c->pool->limits.max_body, text, sizeof(text));
        snprintf(detail, sizeof(detail), "the body is %s", text);
        return answer(c, 413, detail, NULL);
    case CSGI_EPARSE: return answer(c, 400, "the body is malformed", NULL);
    case CSGI_ETIMEDOUT: return answer(c, 408, NULL, NULL);
    case CSGI_ECLOSED:
        csgi_environ_log_at(c->environ, CSGI_LOG__INFO,
                            "threadpool: the client left before its body arrived");
        return NULL;
    default:
        csgi_environ_log(c->environ, "threadpool: cannot gather the request body: %s",
                         csgi_strerror(rc));
        return NULL;
    }
}

static long no_input_read(void *context, void *buf, size_t len)
{
    (void)context;
    (void)buf;
    (void)len;
    return 0;
}

static size_t no_input_buffered(void *context)
{
    (void)context;
    return 0;
}

/* What the copy's own stream reads when the request has no body. */
static const csgi_input__provider no_input = {no_input_read, no_input_buffered, NULL};

/* An address the copy keeps (the connection's may go while the thread
   runs); only the numbers are read once the environ is built. */
static const struct sockaddr *keep_address(struct sockaddr_storage *to, const struct sockaddr *from)
{
    memset(to, 0, sizeof(*to));
    if (!from)
        return NULL;
    size_t len = from->sa_family == AF_INET    ? sizeof(struct sockaddr_in)
                 : from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : sizeof(sa_family_t);
    memcpy(to, from, len);
    return (const struct sockaddr *)to;
}

/* A job for c's request, with its copy of the environ, ready to queue. */
static job *job_new(call *c, struct event_base *base)
{
    csgi_arena arena;
    csgi_arena__init(&arena, NULL); /* freed on the loop, used on a thread: no recycler */
    job *j = csgi_arena__alloc(&arena, sizeof(*j));
    if (!j) {
        csgi_arena__clear(&arena);
        return NULL;
    }
    memset(j, 0, sizeof(*j));
    j->arena = arena; /* from here, j's arena is the one */
    if (pthread_cond_init(&j->drained, NULL) != 0) {
        arena = j->arena;
        csgi_arena__clear(&arena);
        return NULL;
    }
    j->pool = c->pool;
    j->logs_tail = &j->logs;
    j->parent = c->start_response;
    j->outer = c->body;
    const csgi_environ__source *from = csgi_environ__source_of(c->environ);
    j->request_source = from;
    j->source = *from;
    j->source.peer = keep_address(&j->peer, from->peer);
    j->source.local = keep_address(&j->local, from->local);
    j->source.multithread = 1;
    j->source.input = &no_input;
    j->source.input_context = NULL;
    j->source.log = job_log;
    j->source.log_context = j;
    j->source.owner = NULL; /* no driver: nothing of a loop on the thread */
    /* The server drops a HEAD response's bytes by the request line's method. */
    j->head_request = from->head->method_len == 4 && memcmp(from->head->method, "HEAD", 4) == 0;
    j->environ = csgi_environ__copy(c->environ, &j->arena, &j->source);
    j->start_response = (csgi_start_response){
        .environ = j->environ, .parent = NULL, .fn = thread_start_response, .userdata = j};
    /* The request object of filters in front is bound to their environ:
       the application makes its own. */
    if (!j->environ || csgi_gather__share(c->environ, j->environ) != 0 ||
        csgi_environ_set_int(j->environ, "csgi.multithread", 1) != 0 ||
        (csgi_environ_kind(j->environ, "csgi.request") != CSGI_VALUE_NONE &&
         csgi_environ_remove(j->environ, "csgi.request") != 0) ||
        !(j->mailbox = mailbox_for(c->pool, base))) {
        pthread_cond_destroy(&j->drained);
        arena = j->arena;
        csgi_arena__clear(&arena);
        return NULL;
    }
    j->mailbox->jobs++;
    return j;
}

/* Queue c's request for a thread. Returns c->body (the job's answer comes
   through it), the filter's own answer (503), or NULL (logged: a 500). */
static csgi_body *submit(call *c)
{
    pool *p = c->pool;
    pthread_mutex_lock(&p->lock);
    int rc = start_threads(p);
    unsigned busy = p->running, waiting = p->waiting;
    int full = rc == 0 && (uint64_t)busy + waiting >= (uint64_t)p->started + p->queue;
    if (rc == 0 && !full)
        p->waiting++; /* the place is taken now, the job queued below */
    pthread_mutex_unlock(&p->lock);
    if (rc == CSGI_ESTATE) {
        csgi_environ_log(c->environ, "threadpool: the pool's threads were started by another "
                                     "process (before a fork): they do not run here");
        return NULL;
    }
    if (rc != 0) {
        csgi_environ_log(c->environ, "threadpool: cannot start the threads: %s", csgi_strerror(rc));
        return NULL;
    }
    if (full) {
        csgi_environ_log_at(c->environ, CSGI_LOG__INFO,
                            "threadpool: 503: %u threads busy, %u requests waiting (threads, "
                            "queue)",
                            busy, waiting);
        return answer(c, 503, "every thread is busy; try again later", p->retry_after);
    }
    job *j = job_new(c, csgi_environ_event_base(c->environ));
    if (!j) {
        pthread_mutex_lock(&p->lock);
        p->waiting--;
        pthread_mutex_unlock(&p->lock);
        csgi_environ_log(c->environ, "threadpool: out of memory for the request");
        return NULL;
    }
    j->driver = csgi_environ__owner(c->environ);
    csgi_driver__hold(j->driver);
    c->job = j;
    pthread_mutex_lock(&p->lock);
    if (p->last)
        p->last->queue_next = j;
    else
        p->first = j;
    p->last = j;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return c->body;
}

static int call_next(void *state, csgi_chunk *chunk)
{
    call *c = state;
    if (c->job)
        return job_next(c->job, chunk);
    if (c->answer)
        return csgi_body_next(c->answer, chunk);
    return c->failed ? CSGI_ESTATE : CSGI_EAGAIN; /* gathering */
}

static void call_close(void *state)
{
    call *c = state;
    if (c->waiting_on)
        csgi_input_on_ready(c->waiting_on, NULL, NULL);
    c->waiting_on = NULL;
    csgi_body_close(c->answer);
    job *j = c->job;
    c->job = NULL;
    if (j)
        job_close(j);
}

static const csgi_body_type call_body_type = {"threadpool", call_next, call_close};

/* The body has all arrived (rc 0), or could not: the answer comes now. */
static void gathered(void *userdata, int rc)
{
    call *c = userdata;
    c->waiting_on = NULL;
    csgi_body *answer_body = rc == 0 ? submit(c) : refuse(c, rc);
    if (answer_body != c->body) {
        c->answer = answer_body;
        if (answer_body)
            csgi_body__length_from(c->body, answer_body);
        else
            c->failed = 1;
    }
    csgi_body_resume(c->body);
}

static csgi_body *threadpool_call(void *state, csgi_environ *environ,
                                  csgi_start_response *start_response)
{
    pool *p = state;
    /* On a pool thread already (a pool behind a pool), or without a loop:
       nothing here waits for the application, which runs now. */
    if (!csgi_environ__owner(environ) || !csgi_environ_event_base(environ))
        return csgi_app_call(p->app, environ, start_response);
    call *c = csgi_environ_alloc_zeroed(environ, sizeof(*c));
    if (!c) {
        csgi_environ_log(environ, "threadpool: out of memory for the request");
        return NULL;
    }
    c->pool = p;
    c->environ = environ;
    c->start_response = start_response;
    c->body = csgi_body_new(environ, &call_body_type, c);
    if (!c->body) {
        csgi_environ_log(environ, "threadpool: out of memory for the request");
        return NULL;
    }
    /* The body is gathered on the loop, so that the application's reads
       never wait for the client on a thread. */
    if (csgi_gather__has_body(environ) && !csgi_gather__is_gathered(environ)) {
        csgi_input *input = csgi_environ_input(environ);
        int rc = csgi_gather__start(environ, &p->limits, gathered, c);
        if (rc == CSGI_EAGAIN) {
            c->waiting_on = input;
            return c->body;
        }
        if (rc != 0)
            return refuse(c, rc);
    }
    return submit(c);
}

static void pool_destroy(void *state)
{
    pool *p = state;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    /* Threads started before a fork do not run in the child. */
    if (p->started && p->pid == getpid())
        for (unsigned i = 0; i < p->started; i++)
            pthread_join(p->thread_ids[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    csgi__free(p->thread_ids);
    csgi__free(p->temp_dir);
    csgi_app_free(p->app);
    csgi__free(p);
}

static const csgi_app_type threadpool_type = {"threadpool", threadpool_call, pool_destroy};

int csgi_threadpool_new(csgi_app **out, csgi_app *app, const csgi_threadpool_options *options)
{
    csgi_threadpool_options defaults = CSGI_THREADPOOL_OPTIONS_INIT;
    if (!options)
        options = &defaults;
    if (out)
        *out = NULL;
    if (!out || !app ||
        !csgi_options__version_ok(options->version, CSGI_THREADPOOL_OPTIONS_VERSION) ||
        options->threads > CSGI_THREADPOOL_THREADS_MAX) {
        csgi_app_free(app);
        return CSGI_EINVAL;
    }
    pool *p = csgi__calloc(1, sizeof(*p));
    const char *dir = options->body_temp_dir;
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char *temp_dir = csgi__strndup(dir, strlen(dir));
    int locks = 0;
    if (p && pthread_mutex_init(&p->lock, NULL) == 0) {
        locks = 1;
        if (pthread_cond_init(&p->work, NULL) == 0)
            locks = 2;
    }
    if (!p || !temp_dir || locks < 2) {
        if (locks == 1)
            pthread_mutex_destroy(&p->lock);
        csgi__free(p);
        csgi__free(temp_dir);
        csgi_app_free(app);
        return CSGI_ENOMEM;
    }
    p->app = app;
    p->temp_dir = temp_dir;
    p->threads = options->threads ? options->threads : CSGI_THREADPOOL_THREADS_DEFAULT;
    p->queue = options->queue == CSGI_THREADPOOL_NO_QUEUE ? 0
               : options->queue                           ? options->queue
                                                          : CSGI_THREADPOOL_QUEUE_DEFAULT;
    snprintf(p->retry_after, sizeof(p->retry_after), "%u",
             options->retry_after ? options->retry_after : CSGI_THREADPOOL_RETRY_AFTER_DEFAULT);
    p->limits = (csgi_gather__limits){
        .max_body = options->max_body ? options->max_body : UINT64_MAX,
        .memory = options->body_buffer_size ? options->body_buffer_size : BODY_BUFFER_DEFAULT,
        .temp_dir = temp_dir};
    return csgi_app_new(out, &threadpool_type, p);
}

/* ---- INI factory ----------------------------------------------------------------------- */

static const char *const known_keys[] = {"threads",
                                         "queue",
                                         "retry_after",
                                         "client_max_body_size",
                                         "client_body_buffer_size",
                                         "client_body_temp_path"};

#define KNOWN_KEYS                                                                 \
    "threads, queue, retry_after, client_max_body_size, client_body_buffer_size, " \
    "client_body_temp_path"

/* An integer key from low to high; absent: fallback. */
static int conf_range(const csgi_conf *conf, const char *name, long long low, long long high,
                      long long fallback, long long *out, const char *what, csgi_load_error *error)
{
    int rc = csgi_conf_asint(conf, name, fallback, out, error);
    if (rc == 0 && (*out < low || *out > high)) {
        csgi_conf_error(conf, name, error, "must be %s from %lld to %lld, not %lld", what, low,
                        high, *out);
        rc = CSGI_EINVAL;
    }
    return rc;
}

int csgi_threadpool__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    const char *name, *value;
    int rc = 0;
    for (size_t i = 0; rc == 0 && csgi_conf_entry(local_conf, i, &name, &value); i++) {
        size_t k = 0;
        while (k < sizeof(known_keys) / sizeof(known_keys[0]) && strcmp(name, known_keys[k]) != 0)
            k++;
        if (k == sizeof(known_keys) / sizeof(known_keys[0])) {
            csgi_conf_error(local_conf, name, error,
                            "unknown key for egg:csgi#threadpool (known: " KNOWN_KEYS ")");
            rc = CSGI_EINVAL;
        }
    }
    csgi_threadpool_options options = CSGI_THREADPOOL_OPTIONS_INIT;
    long long threads = 0, queue = 0, retry_after = 0;
    uint64_t max_body = 0, buffer = 0;
    if (rc == 0)
        rc = conf_range(local_conf, "threads", 1, CSGI_THREADPOOL_THREADS_MAX,
                        CSGI_THREADPOOL_THREADS_DEFAULT, &threads, "a number of threads", error);
    if (rc == 0)
        rc = conf_range(local_conf, "queue", 0, 1000000, CSGI_THREADPOOL_QUEUE_DEFAULT, &queue,
                        "a number of requests", error);
    if (rc == 0)
        rc = conf_range(local_conf, "retry_after", 1, 86400, CSGI_THREADPOOL_RETRY_AFTER_DEFAULT,
                        &retry_after, "a number of seconds", error);
    if (rc == 0)
        rc = csgi_helpers__conf_size(local_conf, "client_max_body_size", &max_body, error);
    if (rc == 0)
        rc = csgi_helpers__conf_size(local_conf, "client_body_buffer_size", &buffer, error);
    if (rc == 0 && buffer > SIZE_MAX) {
        csgi_conf_error(local_conf, "client_body_buffer_size", error, "is too large");
        rc = CSGI_EINVAL;
    }
    if (rc != 0) {
        csgi_app_free(next);
        return rc;
    }
    options.threads = (unsigned)threads;
    options.queue = queue ? (unsigned)queue : CSGI_THREADPOOL_NO_QUEUE;
    options.retry_after = (unsigned)retry_after;
    options.max_body = max_body;
    options.body_buffer_size = (size_t)buffer;
    options.body_temp_dir = csgi_conf_get(local_conf, "client_body_temp_path");
    return csgi_threadpool_new(out, next, &options);
}
