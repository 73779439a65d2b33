/*
 * The load client of check_load (test_load.h): one thread, poll(2) over
 * non-blocking sockets, one slot a connection. A slot is CLOSED (it
 * connects at resume_ms), SENDING its request, PAUSED between the two
 * pieces of a split head, or READING the answer; after an answer it sends
 * the next request at once, or connects again after Connection: close.
 */
#include "test_load.h"

#include "bench/client.h"
#include "test_serve.h"

#include <check.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* After a refused connect, the slot tries again this much later. */
#define RECONNECT_MS 10

enum slot_state { CLOSED, SENDING, PAUSED, READING };

typedef struct slot {
    int fd;
    enum slot_state state;
    size_t sent;         /* bytes of the request out */
    size_t split_at;     /* the first piece's length (the whole request: not split) */
    int resumed;         /* the pause is over: the rest goes */
    long long resume_ms; /* CLOSED, PAUSED: when to go on */
    long long sent_ms;   /* when the request's first byte went out */
    char in[8192];
    size_t in_len;
    long pid;              /* the worker that answered last on this connection; 0: none yet */
    int message;           /* the last answer's message number (kept across connections) */
    long long answered_ms; /* when the last answer came; 0: none yet */
} slot;

struct load_client {
    int port, count, split_ms;
    char request[256];
    size_t request_len;
    unsigned long long sequence; /* requests so far: where the next one splits */
    slot slots[LOAD_MAX_CONNECTIONS];
    load_counts counts;
    load_failure failures[LOAD_MAX_FAILURES];
    int failure_count;
    int connect_errno;    /* of the last refused connect */
    char regression[128]; /* the first regression, described */
    pthread_mutex_t lock;
    pthread_t thread;
    atomic_int stop;
};

static void close_slot(slot *s, long long retry_ms)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->state = CLOSED;
    s->in_len = 0;
    s->pid = 0;
    s->resume_ms = now_ms() + retry_ms;
}

/* The request outstanding on s failed: record it and start over. */
static void request_failed(load_client *c, slot *s, const char *what, int status)
{
    if (c->failure_count < LOAD_MAX_FAILURES) {
        load_failure *f = &c->failures[c->failure_count++];
        f->slot = (int)(s - c->slots);
        f->pid = s->pid;
        f->status = status;
        f->what = what;
        f->at_ms = now_ms();
    }
    c->counts.failures++;
    close_slot(s, 0);
}

/* Send what may go of the request now: up to the split, or (resumed, or
   not split) to its end. */
static void send_some(load_client *c, slot *s)
{
    size_t limit = s->resumed ? c->request_len : s->split_at;
    while (s->sent < limit) {
        ssize_t n = send(s->fd, c->request + s->sent, limit - s->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* POLLOUT */
        if (n < 0) {
            request_failed(c, s, "reset", 0);
            return;
        }
        s->sent += (size_t)n;
    }
    if (s->sent == c->request_len) {
        s->state = READING;
    } else if (!s->resumed) {
        s->state = PAUSED;
        s->resumed = 1;
        s->resume_ms = now_ms() + c->split_ms;
    }
}

static void start_request(load_client *c, slot *s)
{
    s->sent = 0;
    s->resumed = 0;
    s->split_at = c->request_len;
    if (c->split_ms > 0)
        s->split_at = 1 + (size_t)(c->sequence % (c->request_len - 1));
    else
        s->resumed = 1;
    c->sequence++;
    c->counts.requests++;
    s->sent_ms = now_ms();
    s->state = SENDING;
    send_some(c, s);
}

static void connect_slot(load_client *c, slot *s)
{
    s->fd = bench_connect("127.0.0.1", c->port, 1);
    if (s->fd < 0) {
        c->connect_errno = errno;
        c->counts.refused++;
        close_slot(s, RECONNECT_MS);
        return;
    }
    start_request(c, s);
}

/* The answer at the start of s->in, len bytes: 1 when it is a whole 200
   answer of workerapp, else the request failed (0). */
static int take_answer(load_client *c, slot *s, size_t len, int status)
{
    if (s->state != READING) { /* an answer before the whole request went */
        request_failed(c, s, "malformed", status);
        return 0;
    }
    if (status != 200) {
        request_failed(c, s, "status", status);
        return 0;
    }
    char text[256], message[64];
    size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
    memcpy(text, s->in, n);
    text[n] = '\0';
    const char *body = strstr(text, "\r\n\r\nmessage=");
    long pid = 0;
    if (!body || sscanf(body + 4, "message=%63s pid=%ld", message, &pid) != 2) {
        request_failed(c, s, "malformed", status);
        return 0;
    }
    int number = message[0] == 'm' ? atoi(message + 1) : 0;
    if (number < s->message) {
        if (!c->counts.regressions)
            snprintf(c->regression, sizeof(c->regression),
                     "slot %d: message m%d from pid %ld after m%d", (int)(s - c->slots), number,
                     pid, s->message);
        c->counts.regressions++;
    }
    s->message = number;
    s->pid = pid;
    s->answered_ms = now_ms();
    c->counts.answers++;
    return 1;
}

/* Read what came on s: answers, the end of the connection. */
static void read_slot(load_client *c, slot *s)
{
    int eof = 0, error = 0;
    while (s->in_len < sizeof(s->in)) {
        ssize_t n = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, 0);
        if (n > 0) {
            s->in_len += (size_t)n;
        } else if (n == 0) {
            eof = 1;
            break;
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                error = errno;
            break;
        }
    }
    while (s->in_len > 0) {
        int status = 0, closing = 0;
        ssize_t len = bench_response_length(s->in, s->in_len, &status, &closing);
        if (len == 0 && s->in_len == sizeof(s->in))
            len = -1;
        if (len == 0)
            break;
        if (len < 0) {
            request_failed(c, s, "malformed", 0);
            return;
        }
        if (!take_answer(c, s, (size_t)len, status))
            return;
        memmove(s->in, s->in + len, s->in_len - (size_t)len);
        s->in_len -= (size_t)len;
        if (closing) { /* no error: the next request goes on a new connection */
            c->counts.closes++;
            close_slot(s, 0);
            connect_slot(c, s);
            return;
        }
        if (eof || error) { /* closed before the next request went */
            c->counts.idle_closes++;
            close_slot(s, 0);
            connect_slot(c, s);
            return;
        }
        start_request(c, s);
        if (s->state == CLOSED)
            return;
    }
    if (eof || error)
        request_failed(c, s, error ? "reset" : "closed", 0);
}

static void *load_run(void *arg)
{
    load_client *c = arg;
    struct pollfd fds[LOAD_MAX_CONNECTIONS];
    int index[LOAD_MAX_CONNECTIONS];
    while (!atomic_load(&c->stop)) {
        pthread_mutex_lock(&c->lock);
        long long now = now_ms(), next = now + 20;
        int n = 0;
        for (int i = 0; i < c->count; i++) {
            slot *s = &c->slots[i];
            if (s->state == CLOSED && now >= s->resume_ms)
                connect_slot(c, s);
            if (s->state == PAUSED && now >= s->resume_ms) {
                s->state = SENDING;
                send_some(c, s);
            }
            if (s->state != CLOSED && now - s->sent_ms > LOAD_REQUEST_TIMEOUT_MS)
                request_failed(c, s, "timeout", 0);
            if (s->state == CLOSED || s->state == PAUSED) {
                if (s->resume_ms < next)
                    next = s->resume_ms;
                if (s->state == CLOSED)
                    continue;
            }
            fds[n].fd = s->fd;
            fds[n].events = (short)(POLLIN | (s->state == SENDING ? POLLOUT : 0));
            fds[n].revents = 0;
            index[n++] = i;
        }
        pthread_mutex_unlock(&c->lock);
        int wait = next > now ? (int)(next - now) : 0;
        if (poll(fds, (nfds_t)n, wait) <= 0)
            continue;
        pthread_mutex_lock(&c->lock);
        for (int k = 0; k < n; k++) {
            slot *s = &c->slots[index[k]];
            if (!fds[k].revents || s->fd != fds[k].fd)
                continue;
            if ((fds[k].revents & POLLOUT) && s->state == SENDING)
                send_some(c, s);
            if (s->state != CLOSED && (fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                read_slot(c, s);
        }
        pthread_mutex_unlock(&c->lock);
    }
    return NULL;
}

load_client *load_start(int port, int connections, int split_ms)
{
    ck_assert_int_ge(connections, 1);
    ck_assert_int_le(connections, LOAD_MAX_CONNECTIONS);
    load_client *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->port = port;
    c->count = connections;
    c->split_ms = split_ms;
    c->request_len = bench_request(c->request, sizeof(c->request), "127.0.0.1", port, "/", NULL);
    ck_assert_uint_gt(c->request_len, 1);
    for (int i = 0; i < connections; i++) {
        c->slots[i].fd = -1;
        c->slots[i].state = CLOSED;
    }
    pthread_mutex_init(&c->lock, NULL);
    ck_assert_int_eq(pthread_create(&c->thread, NULL, load_run, c), 0);
    return c;
}

static void counts_locked(load_client *c, load_counts *out)
{
    *out = c->counts;
    out->lowest_message = c->count ? c->slots[0].message : 0;
    for (int i = 1; i < c->count; i++)
        if (c->slots[i].message < out->lowest_message)
            out->lowest_message = c->slots[i].message;
}

void load_get_counts(load_client *c, load_counts *out)
{
    pthread_mutex_lock(&c->lock);
    counts_locked(c, out);
    pthread_mutex_unlock(&c->lock);
}

void load_stop(load_client *c, load_counts *out)
{
    atomic_store(&c->stop, 1);
    pthread_join(c->thread, NULL);
    for (int i = 0; i < c->count; i++)
        if (c->slots[i].fd >= 0)
            close(c->slots[i].fd);
    if (out)
        counts_locked(c, out);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int load_failures(load_client *c, load_failure *out, int max)
{
    pthread_mutex_lock(&c->lock);
    int n = c->failure_count < max ? c->failure_count : max;
    memcpy(out, c->failures, (size_t)n * sizeof(*out));
    pthread_mutex_unlock(&c->lock);
    return n;
}

int load_slots_on(load_client *c, long pid)
{
    pthread_mutex_lock(&c->lock);
    int n = 0;
    for (int i = 0; i < c->count; i++)
        n += c->slots[i].pid == pid;
    pthread_mutex_unlock(&c->lock);
    return n;
}

long load_busiest_pid(load_client *c, int *slots)
{
    long best = 0;
    int most = 0;
    for (int i = 0; i < c->count; i++) {
        pthread_mutex_lock(&c->lock);
        long pid = c->slots[i].pid;
        pthread_mutex_unlock(&c->lock);
        int n = pid ? load_slots_on(c, pid) : 0;
        if (n > most) {
            most = n;
            best = pid;
        }
    }
    *slots = most;
    return best;
}

int load_wait_message(load_client *c, int message, long timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    load_counts counts;
    for (;;) {
        load_get_counts(c, &counts);
        if (counts.lowest_message >= message)
            return 1;
        if (now_ms() >= end)
            return 0;
        sleep_ms(10);
    }
}

int load_wait_answered_since(load_client *c, long long since_ms, long timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        int all = 1;
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < c->count && all; i++)
            all = c->slots[i].answered_ms >= since_ms;
        pthread_mutex_unlock(&c->lock);
        if (all)
            return 1;
        if (now_ms() >= end)
            return 0;
        sleep_ms(10);
    }
}

void load_describe(const load_counts *counts, char *buf, size_t size)
{
    snprintf(buf, size,
             "%lld requests, %lld answers (%lld with Connection: close), %lld failed, %lld "
             "refused connects, %lld idle closes, %lld regressions",
             counts->requests, counts->answers, counts->closes, counts->failures, counts->refused,
             counts->idle_closes, counts->regressions);
}

void load_describe_failures(load_client *c, char *buf, size_t size)
{
    pthread_mutex_lock(&c->lock);
    size_t used = 0;
    buf[0] = '\0';
    if (c->counts.refused && used < size)
        used += (size_t)snprintf(buf + used, size - used, "last refused connect: %s\n",
                                 strerror(c->connect_errno));
    if (c->regression[0] && used < size)
        used += (size_t)snprintf(buf + used, size - used, "first regression: %s\n", c->regression);
    for (int i = 0; i < c->failure_count && i < 40 && used < size; i++) {
        const load_failure *f = &c->failures[i];
        used += (size_t)snprintf(buf + used, size - used, "slot %d on pid %ld: %s %d at %lld\n",
                                 f->slot, f->pid, f->what, f->status, f->at_ms);
    }
    pthread_mutex_unlock(&c->lock);
}
