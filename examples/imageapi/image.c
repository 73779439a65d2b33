/*
 * The image service (glance v2), as glanceclient and openstackclient use
 * it, and the talk's v1-style listing:
 *
 *   image_versions_factory   GET /  300 versions document; GET /versions 200
 *   image_v2_factory         mounted at /v2:
 *     GET  /schemas/image, /schemas/images   the JSON schemas glanceclient validates with
 *     GET, POST /images                      list (filters, limit/marker, sort), create
 *     GET, PATCH, DELETE /images/{id}        show, json-patch update, delete
 *     PUT, GET /images/{id}/file             upload (streamed), download (image_data.c)
 *     PUT, DELETE /images/{id}/tags/{tag}    tags
 *     POST /images/{id}/actions/deactivate   (and reactivate: admins only)
 *   image_v1_factory         GET /images/detail (or /detail under /images)
 *
 * Conf (local, else global): state_dir (required), image_size_cap (bytes,
 * default 1 TiB). The owner of an image is the caller's project (the
 * X-Project-Id that auth_token sets); a caller without "admin" in X-Roles
 * sees public and community images and its project's. Without any
 * auth_token header (no filter in front), the caller is an admin, as
 * glance is without authentication.
 *
 * Deploying: uploads need the server's max_body (1 MiB by default) raised
 * to image_size_cap or more, and no sizelimit filter in the image
 * pipeline (glance has none either). The upload handler writes to the
 * backend on the loop thread as the body arrives; the commit's fsync is
 * short because the directory backend starts writeback as it goes.
 */
#include "image.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TEBIBYTE       (1024ull * 1024 * 1024 * 1024)
#define MAX_TAGS       128
#define MAX_PROPERTIES 128

static const char *const disk_formats[] = {"ami", "ari",   "aki", "vhd", "vhdx",  "vmdk",
                                           "raw", "qcow2", "vdi", "iso", "ploop", NULL};
static const char *const container_formats[] = {"ami", "ari", "aki",    "bare",
                                                "ovf", "ova", "docker", NULL};
const char *const image_visibilities[] = {"public", "private", "community", "shared", NULL};
/* Attributes the client cannot set. */
static const char *const read_only[] = {
    "status",       "checksum",      "size",       "virtual_size", "created_at", "updated_at",
    "os_hash_algo", "os_hash_value", "self",       "file",         "schema",     "direct_url",
    "locations",    "deleted",       "deleted_at", "stores",       NULL};
/* Attributes of every image (the rest are custom string properties). */
const char *const image_base[] = {"id",
                                  "name",
                                  "status",
                                  "visibility",
                                  "protected",
                                  "os_hidden",
                                  "checksum",
                                  "owner",
                                  "size",
                                  "virtual_size",
                                  "min_ram",
                                  "min_disk",
                                  "disk_format",
                                  "container_format",
                                  "created_at",
                                  "updated_at",
                                  "tags",
                                  "os_hash_algo",
                                  "os_hash_value",
                                  NULL};

int image_in(const char *const *list, const char *value)
{
    for (; value && *list; list++)
        if (strcmp(*list, value) == 0)
            return 1;
    return 0;
}

/* A new JSON string of text in lowercase (ids compare as glance's do). */
static json_t *lowercase(const char *text)
{
    char copy[64];
    snprintf(copy, sizeof(copy), "%s", text);
    for (char *p = copy; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return json_string(copy);
}

/* ---- The service, the caller ----------------------------------------------------------- */

void image_service_unref(void *userdata)
{
    image_service *service = userdata;
    if (!service || atomic_fetch_sub(&service->refs, 1) != 1)
        return;
    imageapi_store_free(service->store);
    if (service->backend)
        service->backend->type->free(service->backend);
    free(service);
}

static image_service *service_ref(image_service *service)
{
    atomic_fetch_add(&service->refs, 1);
    return service;
}

/* A setting of the local conf, else the global one. */
static const char *setting(const csgi_conf *global, const csgi_conf *local, const char *name,
                           const csgi_conf **from)
{
    const char *value = csgi_conf_get(local, name);
    *from = local;
    if (!value) {
        value = csgi_conf_get(global, name);
        *from = global;
    }
    return value;
}

/* Refuse keys of the local conf that none of the factories reads. */
static int known_keys(const csgi_conf *local, csgi_load_error *error)
{
    static const char *const keys[] = {"state_dir", "image_size_cap", NULL};
    const char *name, *value;
    for (size_t i = 0; csgi_conf_entry(local, i, &name, &value); i++) {
        if (!image_in(keys, name)) {
            csgi_conf_error(local, name, error, "unknown key (the image service reads %s)",
                            "state_dir and image_size_cap");
            return CSGI_EINVAL;
        }
    }
    return 0;
}

static int service_new(image_service **out, const csgi_conf *global, const csgi_conf *local,
                       csgi_load_error *error)
{
    int rc = known_keys(local, error);
    if (rc != 0)
        return rc;
    const csgi_conf *from;
    const char *state_dir = setting(global, local, "state_dir", &from);
    if (!state_dir || !*state_dir) {
        csgi_conf_error(local, "state_dir", error, "the image service needs a state_dir");
        return CSGI_EINVAL;
    }
    long long cap = (long long)TEBIBYTE;
    const char *cap_text = setting(global, local, "image_size_cap", &from);
    if (cap_text && (csgi_conf_asint(from, "image_size_cap", cap, &cap, error) != 0 || cap <= 0)) {
        csgi_conf_error(from, "image_size_cap", error, "must be a positive number of bytes");
        return CSGI_EINVAL;
    }
    image_service *service = calloc(1, sizeof(*service));
    if (!service)
        return CSGI_ENOMEM;
    atomic_init(&service->refs, 1);
    service->size_cap = (uint64_t)cap;
    char err[512];
    if (imageapi_store_open(&service->store, state_dir, err, sizeof(err)) != 0 ||
        imageapi_backend_dir_new(&service->backend, state_dir, err, sizeof(err)) != 0) {
        csgi_conf_error(from, "state_dir", error, "%s", err);
        image_service_unref(service);
        return CSGI_EINVAL;
    }
    image_sweep(service); /* uploads that died with their process */
    *out = service;
    return 0;
}

int image_reading(csgi_request *request)
{
    const char *method = csgi_request_method(request);
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

csgi_response *image_error(csgi_request *request, int status, const char *detail)
{
    return csgi_handler_error(request, status, detail);
}

csgi_response *image_context_of(csgi_request *request, image_context *out)
{
    const char *identity = csgi_request_header(request, "X-Identity-Status", NULL);
    const char *project = csgi_request_header(request, "X-Project-Id", NULL);
    const char *roles = csgi_request_header(request, "X-Roles", NULL);
    if (identity && strcasecmp(identity, "Confirmed") != 0)
        return image_error(request, 401, "the token was not accepted");
    out->project = project && *project ? project : NULL;
    out->admin = !identity && !project && !roles;
    for (const char *p = roles; p && *p && !out->admin;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ", ");
        out->admin = len == 5 && strncasecmp(p, "admin", 5) == 0;
        p += len;
    }
    return NULL;
}

int image_owner_is(json_t *image, const char *project)
{
    const char *owner = json_string_value(json_object_get(image, "owner"));
    return owner && project && strcmp(owner, project) == 0;
}

int image_visible(const image_context *context, json_t *image)
{
    const char *visibility = json_string_value(json_object_get(image, "visibility"));
    return context->admin || image_owner_is(image, context->project) ||
           (visibility &&
            (strcmp(visibility, "public") == 0 || strcmp(visibility, "community") == 0));
}

int image_owned(const image_context *context, json_t *image)
{
    return context->admin || image_owner_is(image, context->project);
}

void image_touch(json_t *image)
{
    char now[32];
    imageapi_time(time(NULL), 0, now);
    json_object_set_new(image, "updated_at", json_string(now));
}

/* ---- Views ------------------------------------------------------------------------------- */

/* The image as glance shows it (a new object): the stored fields and its
   links. The fields' values are shared with image, not copied: neither is
   changed afterwards. */
json_t *image_view(json_t *image)
{
    json_t *shown = json_copy(image);
    const char *id = json_string_value(json_object_get(image, "id"));
    char link[128];
    snprintf(link, sizeof(link), "/v2/images/%s", id ? id : "");
    json_object_set_new(shown, "self", json_string(link));
    snprintf(link, sizeof(link), "/v2/images/%s/file", id ? id : "");
    json_object_set_new(shown, "file", json_string(link));
    json_object_set_new(shown, "schema", json_string("/v2/schemas/image"));
    return shown;
}

static csgi_response *no_content(csgi_request *request)
{
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_status(response, 204) != 0)
        return NULL;
    return response;
}

/* ---- Validation of what a client sets -------------------------------------------------- */

/* Check value for attribute name; 0, or the status to answer with *why set. */
static int check_attribute(const image_context *context, const char *name, json_t *value,
                           int creating, const char **why)
{
    if (image_in(read_only, name) || (!creating && strcmp(name, "id") == 0)) {
        *why = "the attribute is read-only";
        return 403;
    }
    if (strlen(name) > 255) {
        *why = "a property name is at most 255 characters";
        return 400;
    }
    if (strcmp(name, "id") == 0) {
        *why = "id must be a UUID";
        return imageapi_store_valid_id(json_string_value(value)) ? 0 : 400;
    }
    if (strcmp(name, "name") == 0) {
        *why = "name must be null or a string of at most 255 characters";
        return json_is_null(value) || (json_is_string(value) && json_string_length(value) <= 255)
                   ? 0
                   : 400;
    }
    if (strcmp(name, "visibility") == 0) {
        *why = "visibility must be public, private, community or shared";
        if (!image_in(image_visibilities, json_string_value(value)))
            return 400;
        *why = "only an admin publicizes an image";
        return strcmp(json_string_value(value), "public") == 0 && !context->admin ? 403 : 0;
    }
    if (strcmp(name, "protected") == 0 || strcmp(name, "os_hidden") == 0) {
        *why = "protected and os_hidden are booleans";
        return json_is_boolean(value) ? 0 : 400;
    }
    if (strcmp(name, "min_ram") == 0 || strcmp(name, "min_disk") == 0) {
        *why = "min_ram and min_disk are integers, 0 or more";
        return json_is_integer(value) && json_integer_value(value) >= 0 ? 0 : 400;
    }
    if (strcmp(name, "disk_format") == 0 || strcmp(name, "container_format") == 0) {
        *why = "not a known disk_format or container_format";
        const char *const *formats = name[0] == 'd' ? disk_formats : container_formats;
        return json_is_null(value) || image_in(formats, json_string_value(value)) ? 0 : 400;
    }
    if (strcmp(name, "owner") == 0) {
        *why = "owner is a string of at most 255 characters";
        if (!json_is_null(value) && !(json_is_string(value) && json_string_length(value) <= 255))
            return 400;
        *why = "only an admin gives an image to another project";
        return context->admin ? 0 : 403;
    }
    if (strcmp(name, "tags") == 0) {
        *why = "tags is an array of strings of at most 255 characters";
        size_t i;
        json_t *tag;
        if (!json_is_array(value))
            return 400;
        json_array_foreach(value, i, tag) if (!json_is_string(tag) ||
                                              json_string_length(tag) > 255) return 400;
        *why = "too many tags";
        return json_array_size(value) > MAX_TAGS ? 413 : 0;
    }
    *why = "a property's value is a string";
    return json_is_string(value) ? 0 : 400;
}

/* Set tags from value (an array): unique, in order. */
static void set_tags(json_t *image, json_t *value)
{
    json_t *tags = json_array();
    size_t i, j;
    json_t *tag, *seen;
    json_array_foreach(value, i, tag)
    {
        int dup = 0;
        json_array_foreach(tags, j, seen) dup |= json_equal(seen, tag);
        if (!dup)
            json_array_append(tags, tag);
    }
    json_object_set_new(image, "tags", tags);
}

static size_t property_count(json_t *image)
{
    size_t count = 0;
    const char *key;
    json_t *value;
    json_object_foreach(image, key, value) count += !image_in(image_base, key);
    return count;
}

/* ---- Create ------------------------------------------------------------------------------ */

static csgi_response *create_image(csgi_request *request, void *userdata)
{
    image_service *service = userdata;
    image_context context;
    csgi_response *error = image_context_of(request, &context);
    if (error)
        return error;
    json_t *body;
    if (csgi_handler_json(request, 256 * 1024, &body, &error) != 0)
        return error;
    if (!json_is_object(body))
        return image_error(request, 400, "an image is a JSON object");

    char now[32], id[37];
    imageapi_time(time(NULL), 0, now);
    if (imageapi_uuid(id) != 0)
        return NULL;
    json_t *image = json_pack(
        "{ss sn ss ss sb sb sn so sn sn si si sn sn ss ss s[] sn sn}", "id", id, "name", "status",
        "queued", "visibility", "shared", "protected", 0, "os_hidden", 0, "checksum", "owner",
        context.project ? json_string(context.project) : json_null(), "size", "virtual_size",
        "min_ram", 0, "min_disk", 0, "disk_format", "container_format", "created_at", now,
        "updated_at", now, "tags", "os_hash_algo", "os_hash_value");
    if (!image)
        return NULL;
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value)
    {
        const char *why = NULL;
        int status = check_attribute(&context, key, value, 1, &why);
        if (status) {
            json_decref(image);
            char detail[512];
            snprintf(detail, sizeof(detail), "%.255s: %s", key, why);
            return image_error(request, status, detail);
        }
        if (strcmp(key, "tags") == 0)
            set_tags(image, value);
        else if (strcmp(key, "id") == 0)
            json_object_set_new(image, "id", lowercase(json_string_value(value)));
        else
            json_object_set(image, key, value);
    }
    if (property_count(image) > MAX_PROPERTIES) {
        json_decref(image);
        return image_error(request, 413, "too many properties");
    }

    int lock = imageapi_store_lock(service->store);
    char err[512];
    const char *image_id = json_string_value(json_object_get(image, "id"));
    json_t *existing = imageapi_store_get(service->store, image_id, err, sizeof(err));
    int exists = existing != NULL;
    int rc = exists || lock < 0 ? -1 : imageapi_store_put(service->store, image, err, sizeof(err));
    json_decref(existing);
    imageapi_store_unlock(lock);
    if (rc != 0) {
        json_decref(image);
        return exists ? image_error(request, 409, "an image with this id exists")
                      : image_error(request, 500, "the image could not be saved");
    }
    char location[128];
    snprintf(location, sizeof(location), "%s/images/%s", csgi_request_application_url(request),
             image_id);
    csgi_response *response = imageapi_json(request, 201, image_view(image));
    json_decref(image);
    if (response && csgi_response_set_location(response, location) != 0)
        return NULL;
    return response;
}

/* ---- Show, update, delete, tags ---------------------------------------------------------- */

/* The image of the route's {id} that the caller may see (a new reference),
   or NULL with *error set (404, or 403 when write is set and it is not the
   caller's). */
static json_t *find(image_service *service, csgi_request *request, int write,
                    image_context *context, csgi_response **error)
{
    *error = image_context_of(request, context);
    if (*error)
        return NULL;
    const char *id = csgi_router_arg(csgi_request_environ(request), "id");
    json_t *image = image_load(service, id);
    if (!image || !image_visible(context, image)) {
        *error = image_error(request, 404, "no such image");
    } else if (write && !image_owned(context, image)) {
        *error = image_error(request, 403, "the image is not your project's");
    } else {
        return image;
    }
    json_decref(image);
    return NULL;
}

static csgi_response *show_image(csgi_request *request, void *userdata)
{
    image_context context;
    csgi_response *error;
    json_t *image = find(userdata, request, 0, &context, &error);
    if (!image)
        return error;
    csgi_response *response = imageapi_json(request, 200, image_view(image));
    json_decref(image);
    return response;
}

/* The attribute a JSON pointer ("/name", "/a~1b") names, in out; -1 when
   it names something deeper. */
static int pointer_name(const char *path, char *out, size_t size)
{
    if (!path || path[0] != '/' || strchr(path + 1, '/'))
        return -1;
    size_t used = 0;
    for (const char *p = path + 1; *p; p++) {
        char c = *p;
        if (c == '~') {
            if (p[1] != '0' && p[1] != '1')
                return -1;
            c = *++p == '0' ? '~' : '/';
        }
        if (used + 1 >= size)
            return -1;
        out[used++] = c;
    }
    out[used] = '\0';
    return used ? 0 : -1;
}

/* Apply one json-patch operation to image; 0 or the status, with *why. */
static int apply(const image_context *context, json_t *image, json_t *operation, const char **why)
{
    const char *op = json_string_value(json_object_get(operation, "op"));
    char name[300];
    json_t *value = json_object_get(operation, "value");
    *why = "an operation is {\"op\": add|replace|remove, \"path\": \"/name\", \"value\": ...}";
    if (!op || pointer_name(json_string_value(json_object_get(operation, "path")), name,
                            sizeof(name)) != 0)
        return 400;
    int remove = strcmp(op, "remove") == 0;
    if (!remove && ((strcmp(op, "add") != 0 && strcmp(op, "replace") != 0) || !value))
        return 400;
    int is_base = image_in(image_base, name);
    if (remove) {
        if (image_in(read_only, name) || is_base) {
            *why = "a base attribute cannot be removed";
            return 403;
        }
        *why = "no such property";
        return json_object_del(image, name) == 0 ? 0 : 409;
    }
    int status = check_attribute(context, name, value, 0, why);
    if (status)
        return status;
    if ((strcmp(name, "disk_format") == 0 || strcmp(name, "container_format") == 0) &&
        strcmp(json_string_value(json_object_get(image, "status")), "queued") != 0) {
        *why = "disk_format and container_format change only while the image is queued";
        return 403;
    }
    if (!is_base && strcmp(op, "replace") == 0 && !json_object_get(image, name)) {
        *why = "no such property to replace";
        return 409;
    }
    if (strcmp(name, "tags") == 0)
        set_tags(image, value);
    else
        json_object_set(image, name, value);
    return 0;
}

/* What a change does to an image under the store's lock: 0 when it
   changed it (it is written), UNCHANGED, or the HTTP status to answer
   with *why. */
#define UNCHANGED 1
typedef int (*change_fn)(const image_context *context, json_t *image, void *state,
                         const char **why);

/* Change the route's image: the caller must be allowed to (404 when it
   cannot see it, 403 when it is not its own), then under the store's lock
   a fresh read, fn, and the write. NULL with *changed set to the image
   (a new reference; NULL not wanted), or the error response. */
static csgi_response *change(csgi_request *request, image_service *service, change_fn fn,
                             void *state, json_t **changed)
{
    image_context context;
    csgi_response *error;
    json_t *image = find(service, request, 1, &context, &error);
    if (!image)
        return error;
    json_decref(image);
    int lock = imageapi_store_lock(service->store);
    if (lock < 0)
        return image_error(request, 500, "the store cannot be locked");
    char err[512];
    image = imageapi_store_get(service->store, csgi_router_arg(csgi_request_environ(request), "id"),
                               err, sizeof(err));
    const char *why = "no such image";
    int status = image ? fn(&context, image, state, &why) : 404;
    if (status == 0 && property_count(image) > MAX_PROPERTIES) {
        status = 413;
        why = "too many properties";
    }
    if (status == 0) {
        image_touch(image);
        if (imageapi_store_put(service->store, image, err, sizeof(err)) != 0) {
            status = 500;
            why = "the image could not be saved";
        }
    }
    imageapi_store_unlock(lock);
    if (status > UNCHANGED) {
        json_decref(image);
        return image_error(request, status, why);
    }
    if (changed)
        *changed = image;
    else
        json_decref(image);
    return NULL;
}

static int apply_patch(const image_context *context, json_t *image, void *operations,
                       const char **why)
{
    size_t i;
    json_t *operation;
    int status = 0;
    json_array_foreach((json_t *)operations, i, operation) if (!status) status =
        apply(context, image, operation, why);
    return status;
}

static csgi_response *update_image(csgi_request *request, void *userdata)
{
    const char *type = csgi_request_content_type(request);
    if (!type)
        return NULL;
    if (strcmp(type, "application/openstack-images-v2.1-json-patch") != 0)
        return image_error(request, 415,
                           "send the changes as application/openstack-images-v2.1-json-patch");
    json_t *operations, *image = NULL;
    csgi_response *error;
    if (csgi_handler_json(request, 256 * 1024, &operations, &error) != 0)
        return error;
    if (!json_is_array(operations))
        return image_error(request, 400, "a json-patch is an array of operations");
    error = change(request, userdata, apply_patch, operations, &image);
    if (error)
        return error;
    csgi_response *response = imageapi_json(request, 200, image_view(image));
    json_decref(image);
    return response;
}

/* DELETE /images/{id}: the metadata and the data go (not a protected image's). */
static int remove_image(const image_context *context, json_t *image, void *service,
                        const char **why)
{
    (void)context;
    image_service *s = service;
    const char *id = json_string_value(json_object_get(image, "id"));
    *why = "the image is protected";
    if (json_is_true(json_object_get(image, "protected")))
        return 403;
    imageapi_store_remove(s->store, id);
    /* an upload still running finds the image gone when it ends (410) */
    s->backend->type->remove(s->backend, id);
    return UNCHANGED; /* nothing to write back */
}

static csgi_response *delete_image(csgi_request *request, void *userdata)
{
    csgi_response *error = change(request, userdata, remove_image, userdata, NULL);
    return error ? error : no_content(request);
}

/* POST /images/{id}/actions/deactivate and .../reactivate: active <->
   deactivated (a deactivated image's data is for admins only). */
static int set_activation(const image_context *context, json_t *image, void *state,
                          const char **why)
{
    int deactivate = *(const int *)state;
    const char *to = deactivate ? "deactivated" : "active";
    const char *status = json_string_value(json_object_get(image, "status"));
    *why = "only an admin deactivates and reactivates images";
    if (!context->admin)
        return 403;
    if (strcmp(status, to) == 0)
        return UNCHANGED; /* glance: the same status again is fine */
    *why = "only an active image is deactivated, and only a deactivated one reactivated";
    if (strcmp(status, deactivate ? "active" : "deactivated") != 0)
        return 403;
    json_object_set_new(image, "status", json_string(to));
    return 0;
}

static csgi_response *image_action(csgi_request *request, void *userdata)
{
    const char *action = csgi_router_arg(csgi_request_environ(request), "action");
    int deactivate = strcmp(action, "deactivate") == 0;
    if (!deactivate && strcmp(action, "reactivate") != 0)
        return image_error(request, 404, "the actions are deactivate and reactivate");
    csgi_response *error = change(request, userdata, set_activation, &deactivate, NULL);
    return error ? error : no_content(request);
}

/* PUT and DELETE /images/{id}/tags/{tag} */
static int set_tag(const image_context *context, json_t *image, void *request, const char **why)
{
    (void)context;
    const char *tag = csgi_router_arg(csgi_request_environ(request), "tag");
    int add = strcmp(csgi_request_method(request), "PUT") == 0;
    json_t *tags = json_object_get(image, "tags");
    size_t i, at = (size_t)-1;
    json_t *each;
    json_array_foreach(tags, i, each) if (strcmp(json_string_value(each), tag) == 0) at = i;
    *why = add ? "too many tags" : "no such tag";
    if (add && at != (size_t)-1)
        return UNCHANGED;
    if (add)
        return json_array_size(tags) >= MAX_TAGS ? 413
                                                 : json_array_append_new(tags, json_string(tag));
    return at == (size_t)-1 ? 404 : json_array_remove(tags, at);
}

static csgi_response *change_tag(csgi_request *request, void *userdata)
{
    if (strlen(csgi_router_arg(csgi_request_environ(request), "tag")) > 255)
        return image_error(request, 400, "a tag is at most 255 characters");
    csgi_response *error = change(request, userdata, set_tag, request, NULL);
    return error ? error : no_content(request);
}

/* ---- Schemas ----------------------------------------------------------------------------- */

/* glance's image schema (as glanceclient keeps a copy of it), with
   os_hash_value long enough for sha512. glanceclient validates what it
   sends and what show answers against it. */
static const char image_schema[] =
    "{\"additionalProperties\":{\"type\":\"string\"},\"links\":[{\"href\":\"{self}\",\"rel\":"
    "\"self\"},{\"href\":"
    "\"{file}\",\"rel\":\"enclosure\"},{\"href\":\"{schema}\",\"rel\":\"describedby\"}],\"name\":"
    "\"image\",\"prope"
    "rties\":{\"architecture\":{\"description\":\"Operating system architecture as specified in "
    "https"
    "://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html\",\"is_base\":false,\""
    "type\":\"string\"},\"checksum\":{\"description\":\"md5 hash of image "
    "contents.\",\"maxLength\":32,\"re"
    "adOnly\":true,\"type\":[\"null\",\"string\"]},\"container_format\":{\"description\":\"Format "
    "of the co"
    "ntainer\",\"enum\":[null,\"ami\",\"ari\",\"aki\",\"bare\",\"ovf\",\"ova\",\"docker\"],"
    "\"type\":[\"null\",\"strin"
    "g\"]},\"created_at\":{\"description\":\"Date and time of image "
    "registration\",\"readOnly\":true,\"ty"
    "pe\":\"string\"},\"direct_url\":{\"description\":\"URL to access the image file kept in "
    "external s"
    "tore\",\"readOnly\":true,\"type\":\"string\"},\"disk_format\":{\"description\":\"Format of "
    "the disk\",\""
    "enum\":[null,\"ami\",\"ari\",\"aki\",\"vhd\",\"vhdx\",\"vmdk\",\"raw\",\"qcow2\",\"vdi\","
    "\"iso\",\"ploop\"],\"type"
    "\":[\"null\",\"string\"]},\"file\":{\"description\":\"An image file "
    "url\",\"readOnly\":true,\"type\":\"str"
    "ing\"},\"id\":{\"description\":\"An identifier for the "
    "image\",\"pattern\":\"^([0-9a-fA-F]){8}-([0-9"
    "a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$\",\"type\":\"string\"},"
    "\"instan"
    "ce_uuid\":{\"description\":\"Metadata which can be used to record which instance this image is"
    " associated with. (Informational only, does not create an instance snapshot.)\",\"is_base\":f"
    "alse,\"type\":\"string\"},\"kernel_id\":{\"description\":\"ID of image stored in Glance that "
    "should"
    " be used as the kernel when booting an AMI-style "
    "image.\",\"is_base\":false,\"pattern\":\"^([0-9"
    "a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$\",\"type\":"
    "[\"null\",\"string\"]},\"locations\":{\"description\":\"A set of URLs to access the image "
    "file kept"
    " in external "
    "store\",\"items\":{\"properties\":{\"metadata\":{\"type\":\"object\"},\"url\":{\"maxLength\""
    ":255,\"type\":\"string\"}},\"required\":[\"url\",\"metadata\"],\"type\":\"object\"},\"type\":"
    "\"array\"},\"min"
    "_disk\":{\"description\":\"Amount of disk space (in GB) required to boot "
    "image.\",\"type\":\"integ"
    "er\"},\"min_ram\":{\"description\":\"Amount of ram (in MB) required to boot "
    "image.\",\"type\":\"inte"
    "ger\"},\"name\":{\"description\":\"Descriptive name for the "
    "image\",\"maxLength\":255,\"type\":[\"null"
    "\",\"string\"]},\"os_distro\":{\"description\":\"Common name of operating system distribution "
    "as s"
    "pecified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html\","
    "\"is_base\":false,\"type\":\"string\"},\"os_hash_algo\":{\"description\":\"Algorithm to "
    "calculate os_"
    "hash_value\",\"maxLength\":32,\"readOnly\":true,\"type\":[\"null\",\"string\"]},\"os_hash_"
    "value\":{\"des"
    "cription\":\"Hexdigest of the image contents using the algorithm specified by the os_hash_al"
    "go\",\"maxLength\":128,\"readOnly\":true,\"type\":[\"null\",\"string\"]},\"os_hidden\":{"
    "\"description\":\""
    "If true, image will not appear in default image list "
    "response.\",\"type\":\"boolean\"},\"os_vers"
    "ion\":{\"description\":\"Operating system version as specified by the "
    "distributor\",\"is_base\":f"
    "alse,\"type\":\"string\"},\"owner\":{\"description\":\"Owner of the "
    "image\",\"maxLength\":255,\"type\":["
    "\"null\",\"string\"]},\"protected\":{\"description\":\"If true, image will not be "
    "deletable.\",\"type"
    "\":\"boolean\"},\"ramdisk_id\":{\"description\":\"ID of image stored in Glance that should be "
    "used"
    " as the ramdisk when booting an AMI-style "
    "image.\",\"is_base\":false,\"pattern\":\"^([0-9a-fA-F]"
    "){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$\",\"type\":["
    "\"null\""
    ",\"string\"]},\"schema\":{\"description\":\"An image schema "
    "url\",\"readOnly\":true,\"type\":\"string\"}"
    ",\"self\":{\"description\":\"An image self "
    "url\",\"readOnly\":true,\"type\":\"string\"},\"size\":{\"descr"
    "iption\":\"Size of image file in "
    "bytes\",\"readOnly\":true,\"type\":[\"null\",\"integer\"]},\"status\":"
    "{\"description\":\"Status of the "
    "image\",\"enum\":[\"queued\",\"saving\",\"active\",\"killed\",\"deleted\""
    ",\"uploading\",\"importing\",\"pending_delete\",\"deactivated\"],\"readOnly\":true,\"type\":"
    "\"string\"},"
    "\"tags\":{\"description\":\"List of strings related to the "
    "image\",\"items\":{\"maxLength\":255,\"typ"
    "e\":\"string\"},\"type\":\"array\"},\"updated_at\":{\"description\":\"Date and time of the "
    "last image "
    "modification\",\"readOnly\":true,\"type\":\"string\"},\"virtual_size\":{\"description\":"
    "\"Virtual size"
    " of image in "
    "bytes\",\"readOnly\":true,\"type\":[\"null\",\"integer\"]},\"visibility\":{\"description\""
    ":\"Scope of image "
    "accessibility\",\"enum\":[\"public\",\"private\",\"community\",\"shared\"],\"type\":\"s"
    "tring\"}}}";

static csgi_response *schema_image(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *response = csgi_handler_response(request);
    if (!response ||
        csgi_response_set_body_static(response, image_schema, strlen(image_schema)) != 0 ||
        csgi_response_set_content_type(response, "application/json", NULL) != 0)
        return NULL;
    return response;
}

static csgi_response *schema_images(csgi_request *request, void *userdata)
{
    (void)userdata;
    json_t *image = json_loads(image_schema, 0, NULL);
    return imageapi_json(
        request, 200,
        image ? json_pack("{ss s{s{ss so} s{ss} s{ss} s{ss}} s[{ss ss} {ss ss} {ss ss}]}", "name",
                          "images", "properties", "images", "type", "array", "items", image,
                          "schema", "type", "string", "first", "type", "string", "next", "type",
                          "string", "links", "rel", "first", "href", "{first}", "rel", "next",
                          "href", "{next}", "rel", "describedby", "href", "{schema}")
              : NULL);
}

/* ---- Versions ---------------------------------------------------------------------------- */

static csgi_response *versions(csgi_request *request, void *userdata)
{
    (void)userdata;
    size_t len;
    const char *path = csgi_request_path_info(request, &len);
    int root = len == 0 || (len == 1 && path[0] == '/');
    int named = (len == 9 || (len == 10 && path[9] == '/')) && strncmp(path, "/versions", 9) == 0;
    if (!root && !named)
        return image_error(request, 404, "the image service's versions are at / and /versions");
    if (!image_reading(request))
        return image_error(request, 405, "the versions are read with GET");
    char href[2048];
    snprintf(href, sizeof(href), "%s/v2/", csgi_request_application_url(request));
    json_t *list = json_array();
    for (int minor = 9; list && minor >= 0; minor--) {
        char id[8];
        snprintf(id, sizeof(id), "v2.%d", minor);
        json_array_append_new(list, json_pack("{ss ss s[{ss ss}]}", "id", id, "status",
                                              minor == 9 ? "CURRENT" : "SUPPORTED", "links", "rel",
                                              "self", "href", href));
    }
    return imageapi_json(request, root ? 300 : 200,
                         list ? json_pack("{so}", "versions", list) : NULL);
}

/* ---- Factories ------------------------------------------------------------------------------- */

static int service_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    image_service *service = NULL;
    int rc = service_new(&service, global_conf, local_conf, error);
    *userdata = service;
    *destroy = image_service_unref;
    return rc;
}

static int versions_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    *userdata = NULL;
    *destroy = NULL;
    return known_keys(local_conf, error);
}

CSGI_HANDLER_APP_FACTORY(image_versions_factory, versions, versions_setup)
CSGI_HANDLER_APP_FACTORY(image_v1_factory, image_list_v1, service_setup)

/* One route: a handler application holding a reference to service. */
static int route(csgi_router *router, const char *name, const char *methods, const char *pattern,
                 csgi_handler_fn handler, image_service *service, int stream)
{
    csgi_app *app = NULL;
    int rc = csgi_handler_app(&app, name, handler, service_ref(service), image_service_unref);
    if (rc == 0 && stream) {
        csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
        options.body = CSGI_HANDLER_BODY_STREAM;
        options.max_body = service->size_cap;
        rc = csgi_handler_set_options(app, &options);
        if (rc != 0) {
            csgi_app_free(app);
            return rc;
        }
    }
    return rc == 0 ? csgi_router_add(router, name, methods, pattern, app) : rc;
}

int image_v2_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                     const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    image_service *service = NULL;
    int rc = service_new(&service, global_conf, local_conf, error);
    if (rc != 0)
        return rc;
    static const struct {
        const char *name, *methods, *pattern;
        csgi_handler_fn handler;
        int stream; /* the upload reads its body as it comes */
    } routes[] = {
        {"schema_image", "GET", "/schemas/image", schema_image, 0},
        {"schema_images", "GET", "/schemas/images", schema_images, 0},
        {"list", "GET", "/images", image_list, 0},
        {"create", "POST", "/images", create_image, 0},
        {"show", "GET", "/images/{id}", show_image, 0},
        {"update", "PATCH", "/images/{id}", update_image, 0},
        {"delete", "DELETE", "/images/{id}", delete_image, 0},
        {"upload", "PUT", "/images/{id}/file", image_upload, 1},
        {"download", "GET", "/images/{id}/file", image_download, 0},
        {"tag", "PUT,DELETE", "/images/{id}/tags/{tag}", change_tag, 0},
        {"action", "POST", "/images/{id}/actions/{action}", image_action, 0},
    };
    csgi_router *router = NULL;
    rc = csgi_router_new(&router);
    for (size_t i = 0; rc == 0 && i < sizeof(routes) / sizeof(routes[0]); i++)
        rc = route(router, routes[i].name, routes[i].methods, routes[i].pattern, routes[i].handler,
                   service, routes[i].stream);
    image_service_unref(service);
    if (rc == 0)
        rc = csgi_router_app(out, &router);
    csgi_router_free(router);
    if (rc != 0 && !error->text[0])
        snprintf(error->text, sizeof(error->text), "cannot build the image API: %s",
                 csgi_strerror(rc));
    return rc;
}
