/*
 * The backends of the healthcheck (healthcheck.c), oslo.middleware's
 * plugins of the same names: disable_by_file, disable_by_files_ports and
 * enable_by_files. Each looks for files on every request, so an operator
 * turns a node's answer to 503 (or back) without a reload.
 */
#include "common/alloc.h"
#include "middleware/healthcheck.h"

#include <csgi/errors.h>

#include <jansson.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

enum backend { DISABLE_BY_FILE, DISABLE_BY_FILES_PORTS, ENABLE_BY_FILES, BACKENDS };
static const char *const backend_names[BACKENDS] = {"disable_by_file", "disable_by_files_ports",
                                                    "enable_by_files"};
static const char *const backend_classes[BACKENDS] = {
    "DisableByFileHealthcheck", "DisableByFilesPortsHealthcheck", "EnableByFilesHealthcheck"};

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* One backend's verdict on the request: reason, and for detailed JSON the
   class and details (a new reference). */
static bool check(const csgi_healthcheck__backends *h, enum backend backend, unsigned port,
                  const char **reason, json_t **details)
{
    const char *missing = NULL;
    switch (backend) {
    case DISABLE_BY_FILE:
        *details = json_pack("{s:s}", "path", h->disable_file);
        *reason = exists(h->disable_file) ? "DISABLED BY FILE" : "OK";
        break;
    case DISABLE_BY_FILES_PORTS:
        *details = json_pack("{s:i}", "port", (json_int_t)port);
        *reason = "OK";
        for (size_t i = 0; i < h->port_file_count; i++) {
            if (h->port_files[i].port != port)
                continue;
            json_object_set_new(*details, "path", json_string(h->port_files[i].path));
            if (exists(h->port_files[i].path))
                *reason = "DISABLED BY FILE";
            break;
        }
        break;
    default:
        for (size_t i = 0; i < h->enable_file_count && !missing; i++)
            if (!exists(h->enable_files[i]))
                missing = h->enable_files[i];
        *details = missing ? json_pack("{s:s}", "missing", missing) : json_object();
        *reason = missing ? "FILE PATH MISSING" : "OK";
        break;
    }
    return strcmp(*reason, "OK") == 0;
}

/* The next item of a list written "a, b" (oslo.config) or "a b"
   (PasteDeploy) from *cursor; NULL at the end. */
static const char *next_item(const char **cursor, size_t *len)
{
    const char *p = *cursor;
    if (!p)
        return NULL;
    p += strspn(p, ", \t\r\n");
    *len = strcspn(p, ", \t\r\n");
    *cursor = p + *len;
    return *len ? p : NULL;
}

static size_t count_items(const char *list)
{
    size_t n = 0, len;
    while (next_item(&list, &len))
        n++;
    return n;
}

/* disable_by_file_paths: PORT:FILE, ... (oslo splits at the first colon). */
static int parse_port_files(csgi_healthcheck__backends *h, const csgi_conf *conf,
                            csgi_load_error *error)
{
    const char *list = csgi_conf_get(conf, "disable_by_file_paths"), *item;
    size_t len;
    h->port_files = csgi__calloc(count_items(list), sizeof(csgi_healthcheck__port_file));
    if (!h->port_files)
        return CSGI_ENOMEM;
    while ((item = next_item(&list, &len))) {
        const char *colon = memchr(item, ':', len);
        size_t digits = colon ? (size_t)(colon - item) : 0;
        unsigned port = 0;
        for (size_t i = 0; i < digits && port <= 65535; i++)
            port = item[i] >= '0' && item[i] <= '9' ? port * 10 + (unsigned)(item[i] - '0') : 65536;
        if (digits == 0 || digits > 5 || port > 65535 || colon + 1 == item + len) {
            csgi_conf_error(conf, "disable_by_file_paths", error, "'%.*s' is not PORT:FILE",
                            (int)len, item);
            return CSGI_EINVAL;
        }
        csgi_healthcheck__port_file *entry = &h->port_files[h->port_file_count++];
        entry->port = port;
        entry->path = csgi__strndup(colon + 1, (size_t)(item + len - colon - 1));
        if (!entry->path)
            return CSGI_ENOMEM;
    }
    return 0;
}

static int parse_enable_files(csgi_healthcheck__backends *h, const csgi_conf *conf)
{
    const char *list = csgi_conf_get(conf, "enable_by_file_paths"), *item;
    size_t len;
    h->enable_files = csgi__calloc(count_items(list), sizeof(char *));
    if (!h->enable_files)
        return CSGI_ENOMEM;
    while ((item = next_item(&list, &len)))
        if (!(h->enable_files[h->enable_file_count++] = csgi__strndup(item, len)))
            return CSGI_ENOMEM;
    return 0;
}

int csgi_healthcheck__backends_parse(csgi_healthcheck__backends *h, const csgi_conf *conf,
                                     csgi_load_error *error)
{
    const char *list = csgi_conf_get(conf, "backends"), *item;
    size_t len;
    bool named[BACKENDS] = {false};
    while ((item = next_item(&list, &len))) {
        enum backend b = 0;
        while (b < BACKENDS &&
               (strlen(backend_names[b]) != len || memcmp(item, backend_names[b], len) != 0))
            b++;
        if (b == BACKENDS) {
            csgi_conf_error(conf, "backends", error,
                            "'%.*s' is not a healthcheck backend (known: disable_by_file, "
                            "disable_by_files_ports, enable_by_files)",
                            (int)len, item);
            return CSGI_EINVAL;
        }
        if (h->count == CSGI_HEALTHCHECK__MAX_BACKENDS) {
            csgi_conf_error(conf, "backends", error, "more than %d backends",
                            CSGI_HEALTHCHECK__MAX_BACKENDS);
            return CSGI_EINVAL;
        }
        h->kinds[h->count++] = (int)b;
        named[b] = true;
    }
    static const char *const needs[BACKENDS] = {"disable_by_file_path", "disable_by_file_paths",
                                                "enable_by_file_paths"};
    for (enum backend b = 0; b < BACKENDS; b++) {
        const char *value = csgi_conf_get(conf, needs[b]);
        if (named[b] && count_items(value) == 0) {
            csgi_conf_error(conf, "backends", error, "%s needs %s", backend_names[b], needs[b]);
            return CSGI_EINVAL;
        }
    }
    if (named[DISABLE_BY_FILE] && named[ENABLE_BY_FILES]) {
        csgi_conf_error(conf, "backends", error,
                        "enable_by_files and disable_by_file cannot be configured at once");
        return CSGI_EINVAL;
    }
    int rc = 0;
    if (named[DISABLE_BY_FILE]) {
        const char *file = csgi_conf_get(conf, "disable_by_file_path");
        h->disable_file = csgi__strndup(file, strlen(file));
        rc = h->disable_file ? 0 : CSGI_ENOMEM;
    }
    if (rc == 0 && named[DISABLE_BY_FILES_PORTS])
        rc = parse_port_files(h, conf, error);
    if (rc == 0 && named[ENABLE_BY_FILES])
        rc = parse_enable_files(h, conf);
    return rc;
}

void csgi_healthcheck__backends_clear(csgi_healthcheck__backends *h)
{
    if (!h)
        return;
    csgi__free(h->disable_file);
    for (size_t i = 0; i < h->port_file_count; i++)
        csgi__free(h->port_files[i].path);
    csgi__free(h->port_files);
    for (size_t i = 0; i < h->enable_file_count; i++)
        csgi__free(h->enable_files[i]);
    csgi__free(h->enable_files);
}

bool csgi_healthcheck__backends_run(const csgi_healthcheck__backends *h, unsigned port,
                                    bool detailed, char *text, json_t *reasons)
{
    bool healthy = true;
    size_t used = 0;
    snprintf(text, CSGI_HEALTHCHECK__TEXT_SIZE, "OK");
    for (size_t i = 0; i < h->count; i++) {
        const char *reason;
        json_t *details = NULL;
        healthy &= check(h, (enum backend)h->kinds[i], port, &reason, &details);
        used += (size_t)snprintf(text + used, CSGI_HEALTHCHECK__TEXT_SIZE - used, "%s%s",
                                 i ? "\n" : "", reason);
        json_t *entry = detailed
                            ? json_pack("{s:s, s:s, s:O}", "class", backend_classes[h->kinds[i]],
                                        "reason", reason, "details", details)
                            : json_string(reason);
        json_array_append_new(reasons, entry);
        json_decref(details);
    }
    if (h->count == 0)
        json_array_append_new(reasons, json_string("OK"));
    return healthy;
}
