/*
 * The ratelimit filter (egg:csgi#ratelimit) and its INI factory: a token
 * bucket per client address (REMOTE_ADDR), or per project when keystone's
 * auth_token in front validated the request's token and set
 * HTTP_X_PROJECT_ID (it removes client-sent identity headers first, so the
 * value is the token's).
 *
 * A bucket holds up to burst tokens and gains rate tokens a second; a
 * request takes one, or is answered 429 Too Many Requests with
 * Retry-After (the seconds until a token is back, rounded up) when there
 * is none. Time is CLOCK_MONOTONIC, so a change of the wall clock neither
 * refills nor starves the buckets.
 *
 * by: auto (the default) limits by project when there is one, else by
 * address; address never looks at the project; project limits only the
 * requests that have one and lets the others through.
 *
 * The table holds at most max_clients buckets: a new client then takes the
 * place of the least recently seen one (which starts again with a full
 * bucket when it comes back). Lookups hash the key with FNV-1a seeded at
 * load from getrandom(), so a client cannot choose addresses that land in
 * one chain. The table is this process's: with worker processes each
 * keeps its own, and a client may get workers times the rate. A mutex
 * guards it for servers running several loops.
 */
#include "common/alloc.h"
#include "middleware/middleware.h"

#include <csgi/handler.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define KEY_MAX         256 /* a longer project id is not one: the address is used */
#define MAX_CLIENTS_CAP 10000000
#define TABLE_MAX       (1u << 20)

enum by { BY_AUTO, BY_ADDRESS, BY_PROJECT };

typedef struct bucket {
    struct bucket *chain;         /* the next of its hash chain */
    struct bucket *newer, *older; /* the recently-seen list */
    double tokens;
    double updated; /* seconds of CLOCK_MONOTONIC */
    uint64_t hash;
    char key[]; /* 'a' and the address, or 'p' and the project */
} bucket;

typedef struct ratelimit {
    pthread_mutex_t lock;
    double rate, burst;
    size_t max_clients, count;
    enum by by;
    uint64_t seed;
    bucket **table;
    size_t mask; /* table size - 1 */
    bucket *newest, *oldest;
} ratelimit;

/* x rounded up, for 0 < x < 2^62 (no libm). */
static long round_up(double x)
{
    long n = (long)x;
    return (double)n < x ? n + 1 : n;
}

static uint64_t hash_key(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void unlink_recent(ratelimit *r, bucket *b)
{
    if (b->newer)
        b->newer->older = b->older;
    else
        r->newest = b->older;
    if (b->older)
        b->older->newer = b->newer;
    else
        r->oldest = b->newer;
    b->newer = b->older = NULL;
}

static void push_newest(ratelimit *r, bucket *b)
{
    b->older = r->newest;
    b->newer = NULL;
    if (r->newest)
        r->newest->newer = b;
    r->newest = b;
    if (!r->oldest)
        r->oldest = b;
}

static void evict_oldest(ratelimit *r)
{
    bucket *b = r->oldest;
    unlink_recent(r, b);
    bucket **at = &r->table[b->hash & r->mask];
    while (*at != b)
        at = &(*at)->chain;
    *at = b->chain;
    csgi__free(b);
    r->count--;
}

/* The bucket of key, made (full) if it is new; NULL when out of memory.
   The caller holds the lock. */
static bucket *lookup(ratelimit *r, const char *key, size_t len, double now)
{
    uint64_t hash = hash_key(r->seed, key, len);
    for (bucket *b = r->table[hash & r->mask]; b; b = b->chain) {
        if (b->hash == hash && strncmp(b->key, key, len) == 0 && b->key[len] == '\0') {
            unlink_recent(r, b);
            push_newest(r, b);
            return b;
        }
    }
    if (r->count == r->max_clients)
        evict_oldest(r);
    bucket *b = csgi__malloc(sizeof(*b) + len + 1);
    if (!b)
        return NULL;
    memcpy(b->key, key, len);
    b->key[len] = '\0';
    b->hash = hash;
    b->tokens = r->burst;
    b->updated = now;
    b->chain = r->table[hash & r->mask];
    r->table[hash & r->mask] = b;
    push_newest(r, b);
    r->count++;
    return b;
}

/* 0 when the request may go, else the seconds to wait (at least 1); -1
   when out of memory. */
static long take(ratelimit *r, const char *key, size_t len)
{
    double now = now_seconds();
    long wait = 0;
    pthread_mutex_lock(&r->lock);
    bucket *b = lookup(r, key, len, now);
    if (!b) {
        wait = -1;
    } else {
        b->tokens += (now - b->updated) * r->rate;
        if (b->tokens > r->burst)
            b->tokens = r->burst;
        b->updated = now;
        if (b->tokens >= 1.0) {
            b->tokens -= 1.0;
        } else {
            double seconds = (1.0 - b->tokens) / r->rate;
            wait = seconds > 86400.0 * 365 ? 86400L * 365 : round_up(seconds);
            if (wait < 1)
                wait = 1;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return wait;
}

static csgi_response *ratelimit_filter(csgi_request *request, csgi_app *next, void *userdata)
{
    ratelimit *r = userdata;
    csgi_environ *environ = csgi_request_environ(request);
    char key[KEY_MAX + 2];
    size_t len = 0;
    const char *project =
        r->by == BY_ADDRESS ? NULL : csgi_environ_get_n(environ, "HTTP_X_PROJECT_ID", &len);
    if (project && len > 0 && len <= KEY_MAX) {
        key[0] = 'p';
    } else if (r->by == BY_PROJECT) {
        return csgi_handler_forward(request, next); /* only projects are limited */
    } else {
        project = csgi_environ_get_n(environ, "REMOTE_ADDR", &len);
        if (!project || len > KEY_MAX)
            project = "", len = 0;
        key[0] = 'a';
    }
    memcpy(key + 1, project, len);
    long wait = take(r, key, len + 1);
    if (wait < 0)
        return NULL;
    if (wait == 0)
        return csgi_handler_forward(request, next);
    char detail[128], seconds[32];
    snprintf(detail, sizeof(detail), "Too many requests: try again in %ld second%s.", wait,
             wait == 1 ? "" : "s");
    snprintf(seconds, sizeof(seconds), "%ld", wait);
    csgi_response *response = csgi_handler_error(request, 429, detail);
    if (response && csgi_response_set_header(response, "Retry-After", seconds) != 0)
        return NULL;
    return response;
}

/* ---- INI factory --------------------------------------------------------------------- */

static void ratelimit_destroy(void *userdata)
{
    ratelimit *r = userdata;
    if (!r)
        return;
    while (r->oldest)
        evict_oldest(r);
    csgi__free(r->table);
    pthread_mutex_destroy(&r->lock);
    csgi__free(r);
}

static int parse(const csgi_conf *conf, double *rate, long long *burst, long long *max_clients,
                 enum by *by, csgi_load_error *error)
{
    static const char *const known[] = {"rate", "burst", "max_clients", "by", NULL};
    int rc = csgi_middleware__known_keys(conf, "ratelimit", known, error);
    if (rc != 0)
        return rc;
    const char *value = csgi_conf_get(conf, "rate");
    if (!value) {
        csgi_conf_error(conf, "rate", error, "ratelimit needs a rate (requests per second)");
        return CSGI_EINVAL;
    }
    char *end;
    errno = 0;
    *rate = strtod(value, &end);
    if (end == value || *end || errno || !(*rate > 0) || *rate > 1e9) {
        csgi_conf_error(conf, "rate", error, "'%s' is not a number of requests per second above 0",
                        value);
        return CSGI_EINVAL;
    }
    rc = csgi_conf_asint(conf, "burst", *rate < 1 ? 1 : (long long)round_up(*rate), burst, error);
    if (rc == 0)
        rc = csgi_conf_asint(conf, "max_clients", 10000, max_clients, error);
    if (rc != 0)
        return rc;
    if (*burst < 1 || *burst > 1000000000) {
        csgi_conf_error(conf, "burst", error, "must be from 1 to 1000000000");
        return CSGI_EINVAL;
    }
    if (*max_clients < 1 || *max_clients > MAX_CLIENTS_CAP) {
        csgi_conf_error(conf, "max_clients", error, "must be from 1 to %d", MAX_CLIENTS_CAP);
        return CSGI_EINVAL;
    }
    value = csgi_conf_get(conf, "by");
    if (!value || strcmp(value, "auto") == 0) {
        *by = BY_AUTO;
    } else if (strcmp(value, "address") == 0) {
        *by = BY_ADDRESS;
    } else if (strcmp(value, "project") == 0) {
        *by = BY_PROJECT;
    } else {
        csgi_conf_error(conf, "by", error, "'%s' is not address, project or auto", value);
        return CSGI_EINVAL;
    }
    return 0;
}

static int setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    double rate;
    long long burst, max_clients;
    enum by by;
    int rc = parse(local_conf, &rate, &burst, &max_clients, &by, error);
    if (rc != 0)
        return rc;
    ratelimit *r = csgi__calloc(1, sizeof(*r));
    if (!r)
        return CSGI_ENOMEM;
    /* A chain per client at most, and 8 MiB of table at most: past a
       million clients the chains grow instead. */
    size_t size = 64;
    while (size < (size_t)max_clients && size < TABLE_MAX)
        size *= 2;
    r->table = csgi__calloc(size, sizeof(*r->table));
    rc = !r->table ? CSGI_ENOMEM
         : getrandom(&r->seed, sizeof(r->seed), 0) != (ssize_t)sizeof(r->seed) ||
                 pthread_mutex_init(&r->lock, NULL) != 0
             ? CSGI_ESYSTEM
             : 0;
    if (rc != 0) {
        csgi__free(r->table);
        csgi__free(r);
        return rc;
    }
    r->mask = size - 1;
    r->rate = rate;
    r->burst = (double)burst;
    r->max_clients = (size_t)max_clients;
    r->by = by;
    *userdata = r;
    *destroy = ratelimit_destroy;
    return 0;
}

int csgi_ratelimit__filter_factory(csgi_app **out, csgi_loader *loader,
                                   const csgi_conf *global_conf, const csgi_conf *local_conf,
                                   csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_filter_factory(out, global_conf, local_conf, next, "ratelimit",
                                       ratelimit_filter, setup, error);
}
