/*
 * keystonemiddleware's audit filter (AuditMiddleware) and its INI factory
 * (egg:keystonemiddleware#audit, keystonemiddleware.audit:filter_factory):
 * one CADF event (DMTF DSP0262, as pycadf writes it) per request whose
 * method is not in ignore_req_list, written when the answer starts.
 *
 * The event is keystonemiddleware's "audit.http.response" one: who (the
 * identity auth_token put in the environ), what (an action from the method
 * and the path's last segment), on what (a target found in the token's
 * service catalog and typed by the audit map) and how it ended (outcome and
 * reason from the status). audit_map_file is read once at load with the
 * deploy-file reader (loader/ini.h), so its errors carry file:line.
 *
 * Where the events go: the error stream at info level, or with the csgi key
 * `file` a file opened once at load with O_APPEND, one write(2) per line.
 * Every value is a JSON string escaped by jansson, so a header cannot break
 * a line or forge a field.
 */
#include "middleware/audit.h"

#include "common/alloc.h"
#include "middleware/middleware.h"

#include <csgi/app.h>
#include <csgi/environ.h>
#include <csgi/server.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define UNKNOWN "unknown"

typedef struct audit {
    csgi_app *next;
    int fd;       /* the events file, or -1: the error stream */
    char *ignore; /* ",GET,HEAD," (upper-cased), or NULL */
    csgi_audit__map map;
} audit;

typedef struct call {
    const audit *a;
    csgi_environ *environ;
    csgi_start_response *parent;
    struct timespec start;
    const char *path;        /* WebOb's req.path */
    const char *action;      /* csgi_audit__from_body: ask body */
    csgi_audit__body *body;  /* for a POST .../action, else NULL */
    char action_buffer[256]; /* csgi_audit__action's scratch space */
    bool written;
} call;

/* An environ value for the event, otherwise when unset. JSON strings are
   UTF-8: a value that is not (any client can send such a header) is given
   with its odd bytes as \xHH rather than losing the event. */
static const char *env(csgi_environ *environ, const char *key, const char *otherwise)
{
    size_t len = 0;
    const char *value = csgi_environ_get_n(environ, key, &len);
    if (!value)
        return otherwise;
    json_t *valid = json_stringn(value, len);
    json_decref(valid);
    if (valid && !memchr(value, '\0', len))
        return value;
    char *escaped = csgi_environ_alloc(environ, 4 * len + 4);
    if (escaped)
        csgi_middleware__escape(escaped, 4 * len + 4, value, len);
    return escaped ? escaped : otherwise;
}

/* A version 4 UUID, canonical form, into out (37 bytes). */
static int new_uuid(char *out)
{
    unsigned char u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
        return -1;
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        p += sprintf(p, "%02x", u[i]);
    }
    return 0;
}

/* pycadf's timestamp: 2026-12-03T19:05:42.123456+0000. */
static void iso_time(const struct timespec *when, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&when->tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%06ld+0000", when->tv_nsec / 1000);
}

/* WebOb's req.path: SCRIPT_NAME and PATH_INFO, percent-quoted. */
static char *request_path(csgi_environ *environ)
{
    static const char safe[] = "/:@&+$,;=~!*'()-._";
    const char *parts[2] = {env(environ, "SCRIPT_NAME", ""), env(environ, "PATH_INFO", "")};
    char *out = csgi_environ_alloc(environ, 3 * (strlen(parts[0]) + strlen(parts[1])) + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (int i = 0; i < 2; i++)
        for (const unsigned char *s = (const unsigned char *)parts[i]; *s; s++)
            p += isalnum(*s) || strchr(safe, *s) ? sprintf(p, "%c", *s) : sprintf(p, "%%%02X", *s);
    *p = '\0';
    return out;
}

/* pycadf's mask_value: an eighth of the token at each end (rounded half to
   even, as Python's round(), and at most 32 characters). Where pycadf would
   show a token under 4 characters whole, nothing of it is shown. */
static void masked(const char *token, char *out, size_t size)
{
    size_t len = strlen(token), visible = len / 8;
    if (len % 8 > 4 || (len % 8 == 4 && visible % 2 == 1))
        visible++;
    if (visible > 32)
        visible = 32;
    if (visible == 0)
        snprintf(out, size, "xxxxxxxx");
    else
        snprintf(out, size, "%.*s xxxxxxxx %s", (int)visible, token, token + len - visible);
}

static json_t *build_event(call *c, int status)
{
    csgi_environ *environ = c->environ;
    char id[37], correlation[37], tag[64], when[48], now[48], code[16], token[256];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (new_uuid(id) != 0 || new_uuid(correlation) != 0)
        return NULL;
    snprintf(tag, sizeof(tag), "correlation_id?value=%s", correlation);
    iso_time(&c->start, when, sizeof(when));
    iso_time(&ts, now, sizeof(now));
    masked(env(environ, "HTTP_X_AUTH_TOKEN", ""), token, sizeof(token));
    const char *path = c->path, *action = c->action;
    const char *query = env(environ, "QUERY_STRING", "");
    if (action == csgi_audit__from_body)
        action = csgi_audit__body_action(c->body, environ);
    json_t *event = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:{s:s*, s:s*}, s:{s:s, s:s}},"
        " s:o, s:{s:s, s:s}, s:s++, s:[s], s:[{s:s, s:{s:s, s:s}, s:s}]}",
        "typeURI", "http://schemas.dmtf.org/cloud/audit/1.0/event", "id", id, "eventTime", when,
        "action", action, "eventType", "activity", "outcome",
        status == 0                     ? UNKNOWN
        : status >= 200 && status < 400 ? "success"
                                        : "failure",
        "initiator", "typeURI", "service/security/account/user", "id",
        env(environ, "HTTP_X_USER_ID", UNKNOWN), "name", env(environ, "HTTP_X_USER_NAME", UNKNOWN),
        "project_id", env(environ, "HTTP_X_PROJECT_ID", UNKNOWN), "host", "address",
        env(environ, "REMOTE_ADDR", NULL), "agent", env(environ, "HTTP_USER_AGENT", NULL),
        "credential", "token", token, "identity_status",
        env(environ, "HTTP_X_IDENTITY_STATUS", UNKNOWN), "target",
        csgi_audit__target(&c->a->map, environ, path), "observer", "id", "target", "typeURI",
        UNKNOWN, "requestPath", path, *query ? "?" : "", query, "tags", tag, "reporterchain",
        "role", "modifier", "reporter", "id", "target", "typeURI", UNKNOWN, "reporterTime", now);
    if (!event)
        return NULL;
    json_t *initiator = json_object_get(event, "initiator");
    const char *request_id = env(environ, "openstack.request_id", NULL);
    const char *global_id = env(environ, "openstack.global_request_id", NULL);
    if (request_id)
        json_object_set_new(initiator, "request_id", json_string(request_id));
    if (global_id)
        json_object_set_new(initiator, "global_request_id", json_string(global_id));
    if (status != 0) {
        snprintf(code, sizeof(code), "%d", status);
        json_object_set_new(event, "reason",
                            json_pack("{s:s, s:s}", "reasonType", "HTTP", "reasonCode", code));
    }
    return event;
}

static void write_event(call *c, int status)
{
    c->written = true;
    json_t *event = build_event(c, status);
    char *line = event ? json_dumps(event, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(event);
    if (!line) {
        csgi_environ_log(c->environ, "audit: could not build the event");
        return;
    }
    if (c->a->fd < 0) {
        csgi_environ_log_at(c->environ, CSGI_LOG_INFO, "audit: %s", line);
        free(line);
        return;
    }
    size_t len = strlen(line);
    line[len] = '\n'; /* over the NUL: the line is written by length */
    csgi_middleware__write_line(c->environ, c->a->fd, line, len + 1, "the audit event");
    free(line);
}

static int on_start(const char *status, const csgi_header *headers, size_t count,
                    const char *exc_info, void *userdata)
{
    call *c = userdata;
    int rc = csgi_start_response_call(c->parent, status, headers, count, exc_info);
    if (rc == 0 && !c->written)
        write_event(c, atoi(status));
    return rc;
}

/* The application failed before answering: keystonemiddleware's event for
   an exception, outcome "unknown". */
static void on_end(void *userdata)
{
    call *c = userdata;
    if (!c->written)
        write_event(c, 0);
}

static bool ignored(const audit *a, const char *method)
{
    char key[40];
    if (!a->ignore || strlen(method) > sizeof(key) - 3)
        return false;
    snprintf(key, sizeof(key), ",%s,", method);
    return strstr(a->ignore, key) != NULL;
}

static csgi_body *audit_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    const audit *a = state;
    if (ignored(a, env(environ, "REQUEST_METHOD", "")))
        return csgi_app_call(a->next, environ, start_response);
    call *c = csgi_environ_alloc_zeroed(environ, sizeof(*c));
    if (!c || !(c->path = request_path(environ)))
        return NULL;
    c->a = a;
    c->environ = environ;
    c->parent = start_response;
    clock_gettime(CLOCK_REALTIME, &c->start);
    c->action = csgi_audit__action(&a->map, env(environ, "REQUEST_METHOD", ""), c->path,
                                   c->action_buffer, sizeof(c->action_buffer));
    if ((c->action == csgi_audit__from_body && !(c->body = csgi_audit__watch_body(environ))) ||
        csgi_environ_defer(environ, on_end, c) != 0)
        return NULL;
    csgi_start_response *own = csgi_start_response_new(environ, start_response, on_start, c);
    return own ? csgi_app_call(a->next, environ, own) : NULL;
}

static void audit_destroy(void *state)
{
    audit *a = state;
    if (!a)
        return;
    csgi_app_free(a->next);
    if (a->fd >= 0)
        close(a->fd);
    csgi__free(a->ignore);
    csgi_audit__map_free(&a->map);
    csgi__free(a);
}

static const csgi_app_type audit_type = {"audit", audit_call, audit_destroy};

/* ---- INI factory --------------------------------------------------------------------- */

/* ignore_req_list "GET, head" as ",GET,HEAD,". */
static int read_ignore(audit *a, const char *list)
{
    a->ignore = csgi__malloc(strlen(list) + 3);
    if (!a->ignore)
        return CSGI_ENOMEM;
    char *p = a->ignore;
    *p++ = ',';
    for (const char *s = list; *s; s++)
        if (*s != ' ' && *s != '\t')
            *p++ = (char)toupper((unsigned char)*s);
    *p++ = ',';
    *p = '\0';
    return 0;
}

static int setup(audit *a, const csgi_conf *conf, csgi_load_error *error)
{
    static const char *const known[] = {"audit_map_file", "ignore_req_list", "file",
                                        "service_name",   "log_name",        NULL};
    int rc = csgi_middleware__known_keys(conf, "audit", known, error);
    const char *map = csgi_conf_get(conf, "audit_map_file");
    const char *ignore = csgi_conf_get(conf, "ignore_req_list");
    const char *file = csgi_conf_get(conf, "file");
    if (rc == 0 && map && *map)
        rc = csgi_audit__map_load(&a->map, map, error);
    if (rc == 0 && ignore)
        rc = read_ignore(a, ignore);
    if (rc != 0 || !file)
        return rc;
    /* Not world-readable: the events name users and projects. */
    return csgi_middleware__open_file(conf, file, 0640, &a->fd, error);
}

int csgi_audit__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                               const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    audit *a = csgi__calloc(1, sizeof(*a));
    if (!a) {
        csgi_app_free(next);
        return CSGI_ENOMEM;
    }
    a->next = next;
    a->fd = -1;
    int rc = setup(a, local_conf, error);
    if (rc != 0) {
        audit_destroy(a);
        return rc;
    }
    return csgi_app_new(out, &audit_type, a);
}
