/*
 * Revoked tokens (the identity part): DELETE /v3/auth/tokens writes
 * state_dir/revoked/<sha256 hex of the token>, holding {"expires_at": ...};
 * every process of every host sharing state_dir then refuses the token.
 *
 * A process keeps the list in memory, sorted, and reloads it only when the
 * directory changed: one stat per check. A directory's mtime has the
 * kernel's timestamp granularity, so two revocations in the same tick
 * could look like one; a list read while its mtime is less than two
 * seconds old is read again at the next check (git's "racy" index rule).
 *
 * imageapi:revocation_factory is the filter that goes right after
 * auth_token in the image and compute pipelines: a request whose
 * X-Auth-Token is revoked gets keystone's 401, whatever auth_token
 * thought of the (validly signed) token. Its conf: state_dir (local, else
 * global; required) and www_authenticate_uri (the URI of the 401's
 * WWW-Authenticate; default the request's host URL and /identity).
 * Requests without X-Auth-Token pass: auth_token in front decides.
 */
#include "imageapi.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIGEST_LEN   32
#define RACY_SECONDS 2

struct imageapi_revocations {
    char *dir; /* state_dir/revoked */
    pthread_mutex_t lock;
    int loaded, racy;
    struct timespec mtime; /* of dir when the list was read */
    ino_t inode;
    unsigned char (*digests)[DIGEST_LEN]; /* sorted */
    size_t count;
};

int imageapi_revocations_new(imageapi_revocations **out, const char *state_dir)
{
    *out = NULL;
    imageapi_revocations *r = calloc(1, sizeof(*r));
    size_t size = strlen(state_dir) + sizeof("/revoked");
    if (!r || !(r->dir = malloc(size))) {
        free(r);
        return -ENOMEM;
    }
    snprintf(r->dir, size, "%s/revoked", state_dir);
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return 0;
}

void imageapi_revocations_free(imageapi_revocations *revocations)
{
    if (!revocations)
        return;
    pthread_mutex_destroy(&revocations->lock);
    free(revocations->digests);
    free(revocations->dir);
    free(revocations);
}

void imageapi_token_digest(const char *token, size_t len, char out[65])
{
    unsigned char digest[DIGEST_LEN];
    unsigned int size = DIGEST_LEN;
    EVP_Digest(token, len, digest, &size, EVP_sha256(), NULL);
    for (size_t i = 0; i < DIGEST_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The digest a file name stands for; 0, or -1 for other names (temporary
   files, strays). */
static int parse_name(const char *name, unsigned char out[DIGEST_LEN])
{
    if (strlen(name) != 2 * DIGEST_LEN)
        return -1;
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        int high = hex_value(name[2 * i]), low = hex_value(name[2 * i + 1]);
        if (high < 0 || low < 0)
            return -1;
        out[i] = (unsigned char)(high << 4 | low);
    }
    return 0;
}

static int compare_digests(const void *a, const void *b)
{
    return memcmp(a, b, DIGEST_LEN);
}

/* Read the directory into the list (lock held). 0 or -errno. */
static int reload(imageapi_revocations *r, const struct stat *st)
{
    DIR *dir = opendir(r->dir);
    if (!dir)
        return -errno;
    unsigned char(*digests)[DIGEST_LEN] = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        unsigned char digest[DIGEST_LEN];
        if (parse_name(entry->d_name, digest) != 0)
            continue;
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            void *grown = realloc(digests, capacity * DIGEST_LEN);
            if (!grown) {
                free(digests);
                closedir(dir);
                return -ENOMEM;
            }
            digests = grown;
        }
        memcpy(digests[count++], digest, DIGEST_LEN);
    }
    closedir(dir);
    qsort(digests, count, DIGEST_LEN, compare_digests);
    free(r->digests);
    r->digests = digests;
    r->count = count;
    r->loaded = 1;
    r->mtime = st->st_mtim;
    r->inode = st->st_ino;
    r->racy = time(NULL) - st->st_mtim.tv_sec < RACY_SECONDS;
    return 0;
}

int imageapi_revocations_contains(imageapi_revocations *revocations, const char *token, size_t len)
{
    unsigned char digest[DIGEST_LEN];
    unsigned int size = DIGEST_LEN;
    if (!EVP_Digest(token, len, digest, &size, EVP_sha256(), NULL))
        return -ENOMEM;
    imageapi_revocations *r = revocations;
    pthread_mutex_lock(&r->lock);
    struct stat st;
    int rc = 0;
    if (stat(r->dir, &st) != 0) {
        rc = errno == ENOENT ? 0 : -errno; /* nothing revoked yet */
        if (!rc) {
            r->count = 0;
            r->loaded = 0;
        }
    } else if (!r->loaded || r->racy || st.st_ino != r->inode ||
               st.st_mtim.tv_sec != r->mtime.tv_sec || st.st_mtim.tv_nsec != r->mtime.tv_nsec) {
        rc = reload(r, &st);
    }
    if (!rc && r->count)
        rc = bsearch(digest, r->digests, r->count, DIGEST_LEN, compare_digests) != NULL;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* Remove the entries whose tokens have expired: they are refused anyway. */
static void purge_expired(imageapi_revocations *r, time_t now)
{
    DIR *dir = opendir(r->dir);
    struct dirent *entry;
    while (dir && (entry = readdir(dir))) {
        unsigned char digest[DIGEST_LEN];
        char path[4096], err[256];
        int missing;
        if (parse_name(entry->d_name, digest) != 0 ||
            snprintf(path, sizeof(path), "%s/%s", r->dir, entry->d_name) >= (int)sizeof(path))
            continue;
        json_t *content = imageapi_read_json(path, &missing, err, sizeof(err));
        time_t expires;
        if (content &&
            imageapi_parse_time(json_string_value(json_object_get(content, "expires_at")),
                                &expires) == 0 &&
            expires + 60 < now)
            unlink(path);
        json_decref(content);
    }
    if (dir)
        closedir(dir);
}

int imageapi_revocations_add(imageapi_revocations *revocations, const char *token, size_t len,
                             time_t expires, char *err, size_t err_size)
{
    int rc = imageapi_mkdirs(revocations->dir);
    if (rc) {
        snprintf(err, err_size, "cannot create %s: %s", revocations->dir, strerror(-rc));
        return rc;
    }
    purge_expired(revocations, time(NULL));
    char name[65], path[4096], when[32];
    imageapi_token_digest(token, len, name);
    snprintf(path, sizeof(path), "%s/%s", revocations->dir, name);
    imageapi_time(expires, 1, when);
    json_t *content = json_pack("{ss}", "expires_at", when);
    if (!content)
        return -ENOMEM;
    rc = imageapi_write_json_atomic(path, content, err, err_size);
    json_decref(content);
    return rc;
}

/* ---- The filter ----------------------------------------------------------------------- */

typedef struct revocation_filter {
    imageapi_revocations *revocations;
    char *uri; /* www_authenticate_uri, or NULL: the host's /identity */
} revocation_filter;

static csgi_response *refuse_revoked(csgi_request *request, csgi_app *next, void *userdata)
{
    revocation_filter *f = userdata;
    size_t len;
    const char *token = csgi_request_header(request, "X-Auth-Token", &len);
    int rc = token ? imageapi_revocations_contains(f->revocations, token, len) : 0;
    if (rc < 0) {
        csgi_environ_log_at(csgi_request_environ(request), CSGI_LOG_ERROR,
                            "cannot read the revocation list: %s", strerror(-rc));
        return imageapi_keystone_error(request, 503,
                                       "The revocation list cannot be read; try again later.");
    }
    if (rc == 0)
        return csgi_handler_forward(request, next);
    char uri[1024];
    const char *host = f->uri ? NULL : csgi_request_host_url(request);
    snprintf(uri, sizeof(uri), "%s%s",
             f->uri ? f->uri
             : host ? host
                    : "",
             f->uri ? "" : "/identity");
    return imageapi_keystone_unauthorized(request, uri);
}

static void revocation_filter_free(void *userdata)
{
    revocation_filter *f = userdata;
    imageapi_revocations_free(f->revocations);
    free(f->uri);
    free(f);
}

static int revocation_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                            const csgi_conf *local_conf, csgi_load_error *error)
{
    static const char *const known[] = {"state_dir", "www_authenticate_uri", NULL};
    if (imageapi_identity_check_keys(local_conf, known, error) != 0)
        return CSGI_EINVAL;
    const char *state_dir = imageapi_identity_conf(global_conf, local_conf, "state_dir");
    if (!state_dir || !*state_dir) {
        csgi_conf_error(local_conf, "state_dir", error,
                        "state_dir is required (the store holding revoked/)");
        return CSGI_EINVAL;
    }
    const char *uri = csgi_conf_get(local_conf, "www_authenticate_uri");
    revocation_filter *f = calloc(1, sizeof(*f));
    if (!f || imageapi_revocations_new(&f->revocations, state_dir) != 0 ||
        (uri && !(f->uri = strdup(uri)))) {
        if (f)
            revocation_filter_free(f);
        return CSGI_ENOMEM;
    }
    *userdata = f;
    *destroy = revocation_filter_free;
    return 0;
}

CSGI_HANDLER_FILTER_FACTORY(revocation_factory, refuse_revoked, revocation_setup)
