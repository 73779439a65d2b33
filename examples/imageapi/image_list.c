/*
 * The image lists: GET /v2/images (glance's filters, limit/marker
 * pagination with a next link, sort_key/sort_dir and sort=key:dir) and the
 * talk's v1-style GET /images/detail.
 */
#include "image.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_DEFAULT 25
#define LIMIT_MAX     1000

/* ---- List -------------------------------------------------------------------------------- */

static const char *const sort_keys[] = {
    "name",       "status",     "container_format", "disk_format", "size",
    "id",         "created_at", "updated_at",       "min_disk",    "min_ram",
    "visibility", "owner",      "virtual_size",     NULL};

#define MAX_SORT 8

typedef struct list_query {
    long long limit;
    const char *marker;
    const char *keys[MAX_SORT + 1];
    int desc[MAX_SORT + 1];
    size_t key_count, dir_count;
    int sort_param; /* "sort" was given (not with sort_key/sort_dir) */
    const char *visibility;
    int hidden; /* os_hidden wanted: 1, 0 */
    long long size_min, size_max;
    const csgi_params *params; /* the rest: exact-match filters */
} list_query;

static int parse_dir(const char *text, int *desc)
{
    if (strcmp(text, "asc") == 0 || strcmp(text, "desc") == 0) {
        *desc = text[0] == 'd';
        return 0;
    }
    return -1;
}

static int parse_int(const char *text, long long *out)
{
    char *end;
    if (!*text)
        return -1;
    *out = strtoll(text, &end, 10);
    return *end ? -1 : 0;
}

/* "name:asc,created_at" */
static int parse_sort(list_query *query, char *text)
{
    for (char *save = NULL, *item = strtok_r(text, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        char *colon = strchr(item, ':');
        int desc = 1;
        if (colon) {
            *colon = '\0';
            if (parse_dir(colon + 1, &desc) != 0)
                return -1;
        }
        if (!image_in(sort_keys, item) || query->key_count == MAX_SORT)
            return -1;
        query->desc[query->key_count] = desc;
        query->keys[query->key_count++] = item;
    }
    query->dir_count = query->key_count;
    return query->key_count ? 0 : -1; /* "sort=" names no key */
}

/* Read the query string; NULL, or the 400 to answer. */
static csgi_response *parse_query(csgi_request *request, list_query *query)
{
    *query = (list_query){LIMIT_DEFAULT, NULL, {0}, {0}, 0, 0, 0, NULL, 0, -1, -1, NULL};
    csgi_request_error error;
    if (csgi_request_query(request, &query->params, &error) != 0)
        return image_error(request, 400, "the query string cannot be read");
    csgi_environ *environ = csgi_request_environ(request);
    for (size_t i = 0; i < csgi_params_count(query->params); i++) {
        const csgi_param *p = csgi_params_at(query->params, i);
        const char *name = p->name, *value = p->value;
        int bad = 0;
        if (strcmp(name, "limit") == 0) {
            bad = parse_int(value, &query->limit) != 0 || query->limit < 0;
            if (query->limit > LIMIT_MAX)
                query->limit = LIMIT_MAX;
        } else if (strcmp(name, "marker") == 0) {
            query->marker = value;
        } else if (strcmp(name, "sort_key") == 0) {
            bad = query->sort_param || !image_in(sort_keys, value) || query->key_count == MAX_SORT;
            if (!bad)
                query->keys[query->key_count++] = value;
        } else if (strcmp(name, "sort_dir") == 0) {
            bad = query->sort_param || query->dir_count == MAX_SORT ||
                  parse_dir(value, &query->desc[query->dir_count++]) != 0;
        } else if (strcmp(name, "sort") == 0) {
            char *copy = csgi_environ_alloc(environ, p->value_len + 1);
            if (!copy)
                return NULL;
            memcpy(copy, value, p->value_len + 1);
            bad = query->key_count || query->dir_count || parse_sort(query, copy) != 0;
            query->sort_param = 1;
        } else if (strcmp(name, "visibility") == 0) {
            bad = !image_in(image_visibilities, value) && strcmp(value, "all") != 0;
            query->visibility = value;
        } else if (strcmp(name, "os_hidden") == 0) {
            /* as oslo's bool_from_string reads it: openstackclient sends "True" */
            static const char *const yes[] = {"true", "1", "yes", "on", "t", "y"};
            static const char *const no[] = {"false", "0", "no", "off", "f", "n"};
            query->hidden = -1;
            for (size_t k = 0; k < sizeof(yes) / sizeof(yes[0]); k++) {
                if (strcasecmp(value, yes[k]) == 0)
                    query->hidden = 1;
                else if (strcasecmp(value, no[k]) == 0)
                    query->hidden = 0;
            }
            bad = query->hidden < 0;
        } else if (strcmp(name, "size_min") == 0 || strcmp(name, "size_max") == 0) {
            long long *limit =
                name[5] == 'm' && name[6] == 'i' ? &query->size_min : &query->size_max;
            bad = parse_int(value, limit) != 0 || *limit < 0;
        }
        if (bad) {
            char detail[300];
            snprintf(detail, sizeof(detail), "invalid %.64s: %.200s", name, value);
            return image_error(request, 400, detail);
        }
    }
    if (!query->sort_param) {
        if (query->dir_count > 1 && query->dir_count != query->key_count)
            return image_error(request, 400, "give one sort_dir, or one for each sort_key");
        if (query->key_count == 0)
            query->keys[query->key_count++] = "created_at";
        int dir = query->dir_count ? query->desc[0] : 1;
        for (size_t i = query->dir_count == query->key_count ? query->key_count : 0;
             i < query->key_count; i++)
            query->desc[i] = dir;
    }
    /* id breaks ties, in the direction of the last key */
    if (!image_in(query->keys, "id") || query->key_count == 0) {
        query->desc[query->key_count] = query->desc[query->key_count - 1];
        query->keys[query->key_count++] = "id";
    }
    return NULL;
}

/* Whether image passes the filters of query (exact matches, tags, sizes). */
static int matches(const list_query *query, json_t *image)
{
    static const char *const handled[] = {"limit",    "marker",        "sort_key",  "sort_dir",
                                          "sort",     "visibility",    "os_hidden", "size_min",
                                          "size_max", "member_status", NULL};
    for (size_t i = 0; i < csgi_params_count(query->params); i++) {
        const csgi_param *p = csgi_params_at(query->params, i);
        if (image_in(handled, p->name))
            continue;
        if (strcmp(p->name, "tag") == 0) {
            int found = 0;
            size_t j;
            json_t *tag;
            json_array_foreach(json_object_get(image, "tags"), j, tag) found |=
                strcmp(json_string_value(tag), p->value) == 0;
            if (!found)
                return 0;
            continue;
        }
        json_t *value = json_object_get(image, p->name);
        char text[64];
        const char *have = json_string_value(value);
        if (json_is_integer(value) || json_is_boolean(value)) {
            if (json_is_integer(value))
                snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(value));
            else
                snprintf(text, sizeof(text), "%s", json_is_true(value) ? "true" : "false");
            have = text;
        }
        if (!have || strcmp(have, p->value) != 0)
            return 0;
    }
    json_int_t size = json_integer_value(json_object_get(image, "size"));
    int sized = json_is_integer(json_object_get(image, "size"));
    if ((query->size_min >= 0 && (!sized || size < query->size_min)) ||
        (query->size_max >= 0 && (!sized || size > query->size_max)))
        return 0;
    return 1;
}

static int listed(const image_context *context, const list_query *query, json_t *image)
{
    const char *visibility = json_string_value(json_object_get(image, "visibility"));
    if (!image_visible(context, image) || !visibility)
        return 0;
    if (query->visibility) {
        if (strcmp(query->visibility, "all") != 0 && strcmp(query->visibility, visibility) != 0)
            return 0;
    } else if (strcmp(visibility, "community") == 0 && !context->admin &&
               !image_owner_is(image, context->project)) {
        return 0; /* glance lists others' community images only when asked */
    }
    if (json_is_true(json_object_get(image, "os_hidden")) != query->hidden)
        return 0;
    return matches(query, image);
}

static int compare_values(json_t *a, json_t *b)
{
    if (json_is_null(a) || !a)
        return json_is_null(b) || !b ? 0 : -1;
    if (json_is_null(b) || !b)
        return 1;
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    const char *x = json_string_value(a), *y = json_string_value(b);
    return strcmp(x ? x : "", y ? y : "");
}

static int compare_images(const void *left, const void *right, void *userdata)
{
    const list_query *query = userdata;
    json_t *a = *(json_t *const *)left, *b = *(json_t *const *)right;
    for (size_t i = 0; i < query->key_count; i++) {
        int c =
            compare_values(json_object_get(a, query->keys[i]), json_object_get(b, query->keys[i]));
        if (c)
            return query->desc[i] ? -c : c;
    }
    return 0;
}

/* Append text percent-encoded (what urlencode does) to out. */
static void url_encode(char *out, size_t size, const char *text)
{
    size_t used = strlen(out);
    for (const unsigned char *p = (const unsigned char *)text; *p && used + 4 < size; p++) {
        if (isalnum(*p) || strchr("-._~", *p))
            out[used++] = (char)*p;
        else
            used += (size_t)snprintf(out + used, size - used, "%%%02X", *p);
    }
    out[used] = '\0';
}

/* "/v2/images?" and the query without marker (glance's "first" and the start of "next"). */
static void list_link(const list_query *query, char *out, size_t size)
{
    snprintf(out, size, "/v2/images");
    int first = 1;
    for (size_t i = 0; i < csgi_params_count(query->params); i++) {
        const csgi_param *p = csgi_params_at(query->params, i);
        if (strcmp(p->name, "marker") == 0)
            continue;
        strncat(out, first ? "?" : "&", size - strlen(out) - 1);
        url_encode(out, size, p->name);
        strncat(out, "=", size - strlen(out) - 1);
        url_encode(out, size, p->value);
        first = 0;
    }
}

csgi_response *image_list(csgi_request *request, void *userdata)
{
    image_service *service = userdata;
    image_context context;
    list_query query;
    csgi_response *error = image_context_of(request, &context);
    if (!error)
        error = parse_query(request, &query);
    if (error)
        return error;
    json_t *all = imageapi_store_list(service->store);
    if (!all)
        return NULL;
    size_t count = 0, total = json_array_size(all);
    json_t **chosen = calloc(total + 1, sizeof(*chosen));
    for (size_t i = 0; chosen && i < total; i++) {
        json_t *image = json_array_get(all, i);
        const char *status = json_string_value(json_object_get(image, "status"));
        json_t *fresh = status && strcmp(status, "saving") == 0
                            ? image_load(service, json_string_value(json_object_get(image, "id")))
                            : json_incref(image);
        if (fresh && listed(&context, &query, fresh))
            chosen[count++] = fresh;
        else
            json_decref(fresh);
    }
    json_decref(all);
    if (!chosen)
        return NULL;
    qsort_r(chosen, count, sizeof(*chosen), compare_images, &query);

    size_t start = 0;
    if (query.marker) {
        while (start < count &&
               strcmp(json_string_value(json_object_get(chosen[start], "id")), query.marker) != 0)
            start++;
        if (start == count) {
            for (size_t i = 0; i < count; i++)
                json_decref(chosen[i]);
            free(chosen);
            return image_error(request, 400, "the marker is not an image of this list");
        }
        start++;
    }
    json_t *images = json_array();
    size_t end = start + (size_t)query.limit < count ? start + (size_t)query.limit : count;
    for (size_t i = start; i < end; i++)
        json_array_append_new(images, image_view(chosen[i]));
    char link[4096];
    list_link(&query, link, sizeof(link));
    json_t *body =
        json_pack("{so ss ss}", "images", images, "schema", "/v2/schemas/images", "first", link);
    if (body && end > start && end - start == (size_t)query.limit) {
        strncat(link, strchr(link, '?') ? "&marker=" : "?marker=", sizeof(link) - strlen(link) - 1);
        url_encode(link, sizeof(link), json_string_value(json_object_get(chosen[end - 1], "id")));
        json_object_set_new(body, "next", json_string(link));
    }
    for (size_t i = 0; i < count; i++)
        json_decref(chosen[i]);
    free(chosen);
    return imageapi_json(request, 200, body);
}

/* ---- The talk's v1-style listing ----------------------------------------------------------- */

csgi_response *image_list_v1(csgi_request *request, void *userdata)
{
    image_service *service = userdata;
    size_t len;
    const char *path = csgi_request_path_info(request, &len);
    int detail = (len == 14 && strncmp(path, "/images/detail", 14) == 0) ||
                 (len == 7 && strncmp(path, "/detail", 7) == 0);
    int summary =
        (len == 7 && strncmp(path, "/images", 7) == 0) || len == 0 || (len == 1 && path[0] == '/');
    if (!detail && !summary)
        return image_error(request, 404, "the v1 listing is /images and /images/detail");
    if (!image_reading(request))
        return image_error(request, 405, "the v1 listing is read with GET");
    image_context context;
    csgi_response *error = image_context_of(request, &context);
    if (error)
        return error;
    json_t *all = imageapi_store_list(service->store);
    json_t *images = json_array();
    size_t i;
    json_t *image;
    json_array_foreach(all, i, image)
    {
        const char *visibility = json_string_value(json_object_get(image, "visibility"));
        if (!image_visible(&context, image) || json_is_true(json_object_get(image, "os_hidden")) ||
            (visibility && strcmp(visibility, "community") == 0 &&
             !image_owner_is(image, context.project)))
            continue;
        json_t *properties = json_object();
        const char *key;
        json_t *value;
        json_object_foreach(image, key, value) if (!image_in(image_base, key))
            json_object_set(properties, key, value);
        json_t *v1 = json_pack(
            "{sO sO sO sO sO sO sO}", "id", json_object_get(image, "id"), "name",
            json_object_get(image, "name"), "status", json_object_get(image, "status"), "size",
            json_object_get(image, "size"), "checksum", json_object_get(image, "checksum"),
            "disk_format", json_object_get(image, "disk_format"), "container_format",
            json_object_get(image, "container_format"));
        if (v1 && detail) {
            json_object_set_new(v1, "is_public",
                                json_boolean(visibility && strcmp(visibility, "public") == 0));
            const char *copied[] = {"owner",      "protected",  "min_ram", "min_disk",
                                    "created_at", "updated_at", NULL};
            for (const char *const *k = copied; *k; k++)
                json_object_set(v1, *k, json_object_get(image, *k));
            json_object_set_new(v1, "deleted", json_false());
            json_object_set_new(v1, "deleted_at", json_null());
            json_object_set(v1, "properties", properties);
        }
        json_decref(properties);
        json_array_append_new(images, v1);
    }
    json_decref(all);
    return imageapi_json(request, 200, images ? json_pack("{so}", "images", images) : NULL);
}
