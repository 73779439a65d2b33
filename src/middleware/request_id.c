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
#include "middleware/middleware.h"

#include <csgi/handler.h>

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

/* out: ID_LEN + 1 bytes. Fails when the kernel has no randomness to give
   (then the request is answered 500 rather than given a guessable id). */
static int new_request_id(char *out)
{
    unsigned char u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
        return -1;
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, ID_LEN + 1,
             "req-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
    return 0;
}

static csgi_response *add_id(csgi_request *request, csgi_response *response, void *state)
{
    (void)request;
    if (csgi_response_set_header(response, HEADER, state) != 0)
        return NULL;
    return response;
}

static csgi_response *request_id(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    char *id = csgi_environ_alloc(environ, ID_LEN + 1);
    if (!id || new_request_id(id) != 0)
        return NULL;
    if (csgi_environ_set(environ, "openstack.request_id", id) != 0)
        return NULL;
    size_t len = 0;
    const char *global = csgi_request_header(request, "X-OpenStack-Request-ID", &len);
    if (global && valid_global_id(global, len) &&
        csgi_environ_set_n(environ, "openstack.global_request_id", global, len) != 0)
        return NULL;
    return csgi_handler_forward_then(request, next, add_id, id);
}

int csgi_request_id__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_filter_factory(out, global_conf, local_conf, next, "request_id", request_id,
                                       NULL, error);
}
