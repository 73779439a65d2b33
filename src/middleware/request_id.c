/*
 * oslo.middleware's request_id filter (RequestId) and its INI factory
 * (egg:oslo.middleware#request_id, oslo_middleware:RequestId.factory,
 * oslo_middleware.request_id:RequestId.factory).
 *
 * Every request gets an id "req-" + a random (version 4) UUID, kept in the
 * environ as openstack.request_id and sent back as x-openstack-request-id
 * on whatever the next application answers. An incoming
 * X-OpenStack-Request-ID that is itself such an id is the caller's global
 * request id: it is kept as openstack.global_request_id, anything else is
 * ignored (oslo's is_valid_global_request_id), so a client cannot put
 * arbitrary text into the logs through it.
 */
#include "common/chartab.h"
#include "gateway/environ_private.h"
#include "middleware/middleware.h"

#include <csgi/app.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define HEADER "x-openstack-request-id"
#define ID_LEN (4 + 36) /* "req-" and a UUID */

/* "req-" and a UUID in canonical lower- or upper-case form. */
static bool valid_global_id(const char *value, size_t len)
{
    if (len != ID_LEN || memcmp(value, "req-", 4) != 0)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = value[4 + i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !strchr("0123456789abcdefABCDEF", c) || c == '\0')
            return false;
    }
    return true;
}

/* Each byte's low nibble spread into every other byte: four bytes of x
   become bytes 0, 2, 4 and 6. */
static inline uint64_t spread(uint64_t x)
{
    x &= 0xffffffffu;
    x = (x | (x << 16)) & 0x0000ffff0000ffffu;
    return (x | (x << 8)) & 0x00ff00ff00ff00ffu;
}

/* The 16 bytes at u as 32 lower-case hex digits at out, a word at a time:
   every nibble in a byte of its own, then '0' + n, plus 39 ('a' - '0' -
   10) where n > 9 (n + 0x76 reaches bit 7). Little-endian words put the
   high nibble of each byte first. */
static void put_hex16(char *out, const unsigned char *u)
{
    const uint64_t ones = 0x0101010101010101u;
    for (int half = 0; half < 2; half++) {
        uint64_t v;
        memcpy(&v, u + 8 * half, 8);
        uint64_t hi = (v >> 4) & ones * 0x0f, lo = v & ones * 0x0f;
        for (int quarter = 0; quarter < 2; quarter++) {
            int shift = 32 * quarter;
            uint64_t n = spread(hi >> shift) | spread(lo >> shift) << 8;
            uint64_t letters = ((n + ones * 0x76) >> 7) & ones;
            uint64_t digits = n + ones * '0' + letters * 39;
            memcpy(out + 16 * half + 8 * quarter, &digits, 8);
        }
    }
}
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "put_hex16 assumes little-endian words");

/* out: ID_LEN + 1 bytes. Fails when the kernel has no randomness to give
   (then the request is answered 500 rather than given a guessable id). */
static int new_request_id(char *out)
{
    unsigned char u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
        return -1;
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    /* req-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: 4, 2, 2, 2 and 6 bytes */
    char hex[32];
    put_hex16(hex, u);
    memcpy(out, "req-", 4);
    memcpy(out + 4, hex, 8);
    out[12] = '-';
    memcpy(out + 13, hex + 8, 4);
    out[17] = '-';
    memcpy(out + 18, hex + 12, 4);
    out[22] = '-';
    memcpy(out + 23, hex + 16, 4);
    out[27] = '-';
    memcpy(out + 28, hex + 20, 12);
    out[ID_LEN] = '\0';
    return 0;
}

/* One request: the id, and the start-response the filter passes on. */
typedef struct call {
    csgi_start_response *parent;
    csgi_environ *environ;
    char id[ID_LEN + 1];
} call;

/* The answer's headers with x-openstack-request-id in place of any the
   application set. */
static int add_id(const char *status, const csgi_header *headers, size_t count,
                  const char *exc_info, void *userdata)
{
    call *c = userdata;
    csgi_header *all = csgi_environ_alloc(c->environ, (count + 1) * sizeof(*all));
    if (!all)
        return CSGI_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (headers[i].name_len != sizeof(HEADER) - 1 ||
            !csgi_char__equal_nocase(headers[i].name, HEADER, sizeof(HEADER) - 1))
            all[n++] = headers[i];
    all[n++] = (csgi_header){HEADER, sizeof(HEADER) - 1, c->id, ID_LEN};
    return csgi_start_response_call(c->parent, status, all, n, exc_info);
}

static csgi_body *request_id_call(void *state, csgi_environ *environ,
                                  csgi_start_response *start_response)
{
    csgi_app *next = state;
    call *c = csgi_environ_alloc(environ, sizeof(*c));
    if (!c || new_request_id(c->id) != 0 ||
        csgi_environ__set_static(environ, "openstack.request_id", 20, c->id, ID_LEN) != 0)
        return NULL;
    size_t len = 0;
    const char *global = csgi_environ_get_n(environ, "HTTP_X_OPENSTACK_REQUEST_ID", &len);
    if (global && valid_global_id(global, len) &&
        csgi_environ__set_static(environ, "openstack.global_request_id", 27, global, len) != 0)
        return NULL;
    c->parent = start_response;
    c->environ = environ;
    csgi_start_response *own = csgi_start_response_new(environ, start_response, add_id, c);
    return own ? csgi_app_call(next, environ, own) : NULL;
}

static void request_id_destroy(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type request_id_type = {"request_id", request_id_call, request_id_destroy};

int csgi_request_id__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    static const char *const known[] = {NULL};
    int rc = csgi_middleware__known_keys(local_conf, "request_id", known, error);
    if (rc != 0) {
        csgi_app_free(next);
        return rc;
    }
    /* The state is next itself: destroy frees it, also if this fails. */
    return csgi_app_new(out, &request_id_type, next);
}
