/*
 * auth_token's token cache: what the identity service (or a local source)
 * said about a token, kept for token_cache_time so that the next request
 * with the same token costs no call. Bounded: past max_entries the least
 * recently used entry goes. Invalid tokens are kept too (negative
 * caching), so that a client repeating a bad token cannot make every
 * request a call. Entries are found by a hash of the token seeded at
 * random per cache (a client cannot aim tokens at one bucket), then
 * compared in full.
 *
 * One cache per filter, shared by the loops of a process, hence the lock;
 * each worker process has its own.
 */
#include "common/alloc.h"
#include "middleware/auth_token.h"

#include <openssl/crypto.h>

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct entry {
    uint64_t hash;
    size_t len;              /* of token */
    auth_identity *identity; /* NULL: invalid */
    int64_t until_ms;        /* monotonic */
    struct entry *chain;     /* the next in its bucket */
    struct entry *newer, *older;
    char token[]; /* len bytes */
} entry;

struct auth_cache {
    pthread_mutex_t lock;
    entry **buckets;
    size_t mask; /* buckets - 1 */
    size_t count, max;
    entry *newest, *oldest;
    uint64_t seed;
};

/* A word-at-a-time multiply-xorshift hash of the token under the seed. */
static uint64_t hash_of(const auth_cache *cache, const char *token, size_t len)
{
    uint64_t h = cache->seed ^ (len * 0x9e3779b97f4a7c15u);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, token + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    memcpy(&tail, token + i, len - i);
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 29);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int auth_token__cache_new(auth_cache **out, size_t max_entries)
{
    *out = NULL;
    size_t buckets = 16;
    while (buckets < max_entries && buckets < ((size_t)1 << 30))
        buckets <<= 1;
    auth_cache *cache = csgi__calloc(1, sizeof(*cache));
    if (!cache || !(cache->buckets = csgi__calloc(buckets, sizeof(entry *)))) {
        csgi__free(cache);
        return CSGI_ENOMEM;
    }
    if (getrandom(&cache->seed, sizeof(cache->seed), 0) != (ssize_t)sizeof(cache->seed))
        cache->seed = (uint64_t)now_ms() * 0x9e3779b97f4a7c15u; /* no randomness: still varied */
    pthread_mutex_init(&cache->lock, NULL);
    cache->mask = buckets - 1;
    cache->max = max_entries;
    *out = cache;
    return 0;
}

static entry **slot_of(auth_cache *cache, uint64_t hash, const char *token, size_t len)
{
    entry **slot = &cache->buckets[hash & cache->mask];
    while (*slot && ((*slot)->hash != hash || (*slot)->len != len ||
                     memcmp((*slot)->token, token, len) != 0))
        slot = &(*slot)->chain;
    return slot;
}

static entry **slot_of_entry(auth_cache *cache, const entry *e)
{
    return slot_of(cache, e->hash, e->token, e->len);
}

static void unlink_age(auth_cache *cache, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        cache->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        cache->oldest = e->newer;
}

static void link_newest(auth_cache *cache, entry *e)
{
    e->newer = NULL;
    e->older = cache->newest;
    if (cache->newest)
        cache->newest->newer = e;
    cache->newest = e;
    if (!cache->oldest)
        cache->oldest = e;
}

/* Remove the entry at *slot. */
static void drop(auth_cache *cache, entry **slot)
{
    entry *e = *slot;
    *slot = e->chain;
    unlink_age(cache, e);
    auth_token__identity_unref(e->identity);
    OPENSSL_cleanse(e->token, e->len);
    csgi__free(e);
    cache->count--;
}

int auth_token__cache_find(auth_cache *cache, const char *token, size_t len,
                           int (*use)(auth_identity *identity, void *userdata), void *userdata,
                           int *use_rc)
{
    int found = AUTH_MISS;
    uint64_t hash = hash_of(cache, token, len);
    pthread_mutex_lock(&cache->lock);
    entry **slot = slot_of(cache, hash, token, len);
    entry *e = *slot;
    if (e && (e->until_ms <= now_ms() || (e->identity && e->identity->expires <= time(NULL)))) {
        drop(cache, slot);
        e = NULL;
    }
    if (e) {
        unlink_age(cache, e);
        link_newest(cache, e);
        found = e->identity ? AUTH_VALID : AUTH_INVALID;
        if (e->identity)
            *use_rc = use(e->identity, userdata);
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

void auth_token__cache_put(auth_cache *cache, const char *token, size_t len,
                           auth_identity *identity, int64_t ttl_ms)
{
    int64_t now = now_ms();
    if (identity) {
        int64_t left = (identity->expires - (int64_t)time(NULL)) * 1000;
        if (left < ttl_ms)
            ttl_ms = left;
    }
    if (ttl_ms <= 0) {
        auth_token__identity_unref(identity);
        return;
    }
    uint64_t hash = hash_of(cache, token, len);
    pthread_mutex_lock(&cache->lock);
    entry **slot = slot_of(cache, hash, token, len);
    if (*slot)
        drop(cache, slot);
    entry *e = len < SIZE_MAX - sizeof(*e) ? csgi__malloc(sizeof(*e) + len) : NULL;
    if (!e) {
        pthread_mutex_unlock(&cache->lock);
        auth_token__identity_unref(identity);
        return; /* not cached: the next request asks again */
    }
    e->hash = hash;
    e->len = len;
    memcpy(e->token, token, len);
    e->identity = identity;
    e->until_ms = now + ttl_ms;
    e->chain = NULL;
    *slot_of(cache, hash, token, len) = e;
    link_newest(cache, e);
    if (++cache->count > cache->max)
        drop(cache, slot_of_entry(cache, cache->oldest));
    pthread_mutex_unlock(&cache->lock);
}

void auth_token__cache_free(auth_cache *cache)
{
    if (!cache)
        return;
    while (cache->oldest)
        drop(cache, slot_of_entry(cache, cache->oldest));
    pthread_mutex_destroy(&cache->lock);
    csgi__free(cache->buckets);
    csgi__free(cache);
}
