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
#include "gateway/app_private.h"
#include "gateway/environ_private.h"
#include "middleware/middleware.h"

#include <csgi/app.h>

#include <stdbool.h>
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

/* The two lower-case hex digits of every byte value, "00" to "ff". */
#define HEX_ROW(d) \
    d "0" d "1" d "2" d "3" d "4" d "5" d "6" d "7" d "8" d "9" d "a" d "b" d "c" d "d" d "e" d "f"
static const char hex_pairs[] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4")
    HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b")
        HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");
#undef HEX_ROW

/* n bytes of u as hex at out. */
static inline void put_hex(char *out, const unsigned char *u, int n)
{
    for (int i = 0; i < n; i++)
        memcpy(out + 2 * i, hex_pairs + 2 * u[i], 2);
}

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
    memcpy(out, "req-", 4);
    put_hex(out + 4, u, 4);
    out[12] = '-';
    put_hex(out + 13, u + 4, 2);
    out[17] = '-';
    put_hex(out + 18, u + 6, 2);
    out[22] = '-';
    put_hex(out + 23, u + 8, 2);
    out[27] = '-';
    put_hex(out + 28, u + 10, 6);
    out[ID_LEN] = '\0';
    return 0;
}

/* One request: the id, and the start-response the filter passes on. */
typedef struct call {
    csgi_start_response *parent;
    csgi_environ *environ;
    csgi_start_response own; /* what the next application answers through */
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
    return csgi_app_call(next, environ,
                         csgi_start_response__init(&c->own, environ, start_response, add_id, c));
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
