/*
 * The compute part of examples/imageapi: the slice of nova the talk's
 * `nova flavor-list` uses. Mounted at /compute (imageapi-paste.ini), behind
 * auth_token:
 *
 *   GET /                       the versions nova serves (v2.0, v2.1)
 *   GET /v2.1                   the v2.1 version document
 *   GET /v2.1/flavors           flavors: id, name, links
 *   GET /v2.1/flavors/detail    flavors with ram, disk, vcpus, ...
 *   GET /v2.1/flavors/{id}      one flavor
 *   GET /v2.1/flavors/{id}/os-extra_specs   {"extra_specs": {}}
 *
 * (also with a project id after /v2.1, as older clients send it).
 *
 * Microversions: a request may ask for one with `OpenStack-API-Version:
 * compute 2.x` or `X-OpenStack-Nova-API-Version: 2.x` ("latest" is the
 * newest); the answer names the version it was made for in both headers,
 * as nova does, and a version outside 2.1..2.75 is 406. From 2.55 flavors
 * have a description, and from 2.75 swap is 0 rather than "" when a flavor
 * has none.
 *
 * The flavors are nova's classic m1 table unless the factory's
 * `flavors_file` names a JSON file {"flavors": [{"id": "1", "name":
 * "m1.tiny", "ram": 512, "disk": 1, "vcpus": 1}, ...]}.
 */
#include "imageapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MICROVERSION_MIN 1
#define MICROVERSION_MAX 75

typedef struct compute {
    json_t
        *flavors; /* array of {id, name, ram, disk, vcpus, ephemeral, swap, description, public} */
} compute;

static const struct {
    const char *id, *name;
    int ram, disk, vcpus;
} classic[] = {
    {"1", "m1.tiny", 512, 1, 1},       {"2", "m1.small", 2048, 20, 1},
    {"3", "m1.medium", 4096, 40, 2},   {"4", "m1.large", 8192, 80, 4},
    {"5", "m1.xlarge", 16384, 160, 8},
};

/* The microversion the request asks for (minor number), 0 when it asks for
   none, -1 when it asks for one this service does not have. */
static int requested_microversion(csgi_request *request)
{
    const char *value = csgi_request_header(request, "OpenStack-API-Version", NULL);
    if (value) {
        if (strcasecmp(value, "compute") == 0)
            return -1; /* for compute, but no version */
        if (strncasecmp(value, "compute ", 8) != 0)
            value = NULL; /* for another service */
        else
            value += 8;
    }
    if (!value)
        value = csgi_request_header(request, "X-OpenStack-Nova-API-Version", NULL);
    if (!value)
        return 0;
    while (*value == ' ')
        value++;
    if (strcasecmp(value, "latest") == 0)
        return MICROVERSION_MAX;
    char *end;
    if (strncmp(value, "2.", 2) != 0)
        return -1;
    long minor = strtol(value + 2, &end, 10);
    if (end == value + 2 || *end || minor < MICROVERSION_MIN || minor > MICROVERSION_MAX)
        return -1;
    return (int)minor;
}

static csgi_response *answer(csgi_request *request, int status, json_t *value, int microversion)
{
    csgi_response *response = imageapi_json(request, status, value);
    char version[32];
    snprintf(version, sizeof(version), "compute 2.%d", microversion);
    if (response &&
        (csgi_response_set_header(response, "OpenStack-API-Version", version) != 0 ||
         csgi_response_set_header(response, "X-OpenStack-Nova-API-Version", version + 8) != 0 ||
         csgi_response_set_header(response, "Vary",
                                  "OpenStack-API-Version, "
                                  "X-OpenStack-Nova-API-Version") != 0))
        return NULL;
    return response;
}

/* nova's error shape: {"itemNotFound": {"code": 404, "message": "..."}}. */
static csgi_response *fault(csgi_request *request, int status, const char *message,
                            int microversion)
{
    const char *kind = status == 404   ? "itemNotFound"
                       : status == 400 ? "badRequest"
                       : status == 406 ? "notAcceptable"
                       : status == 405 ? "badMethod"
                                       : "computeFault";
    return answer(request, status, json_pack("{s{siss}}", kind, "code", status, "message", message),
                  microversion);
}

static json_t *version_document(const char *base)
{
    char href[1024];
    snprintf(href, sizeof(href), "%s/v2.1/", base);
    json_t *v21 = json_pack("{ss ss ss ss ss s[{ssss}]}", "id", "v2.1", "status", "CURRENT",
                            "version", "2.75", "min_version", "2.1", "updated",
                            "2013-07-23T11:33:21Z", "links", "rel", "self", "href", href);
    return v21;
}

static csgi_response *versions(csgi_request *request, const char *base)
{
    char href[1024];
    snprintf(href, sizeof(href), "%s/v2/", base);
    json_t *v20 = json_pack("{ss ss ss ss ss s[{ssss}]}", "id", "v2.0", "status", "SUPPORTED",
                            "version", "", "min_version", "", "updated", "2011-01-21T11:33:21Z",
                            "links", "rel", "self", "href", href);
    return answer(request, 200, json_pack("{s[oo]}", "versions", v20, version_document(base)),
                  MICROVERSION_MIN);
}

static json_t *flavor_json(const json_t *flavor, const char *v21, int microversion, int detail)
{
    const char *id = json_string_value(json_object_get(flavor, "id"));
    char self[1024], bookmark[1024];
    snprintf(self, sizeof(self), "%s/flavors/%s", v21, id);
    snprintf(bookmark, sizeof(bookmark), "%s/flavors/%s", v21, id);
    json_t *out = json_pack("{ss ss s[{ssss}{ssss}]}", "id", id, "name",
                            json_string_value(json_object_get(flavor, "name")), "links", "rel",
                            "self", "href", self, "rel", "bookmark", "href", bookmark);
    if (!out)
        return NULL;
    if (microversion >= 55)
        json_object_set(out, "description", json_object_get(flavor, "description"));
    if (!detail)
        return out;
    json_int_t swap = json_integer_value(json_object_get(flavor, "swap"));
    json_object_set(out, "ram", json_object_get(flavor, "ram"));
    json_object_set(out, "disk", json_object_get(flavor, "disk"));
    json_object_set(out, "vcpus", json_object_get(flavor, "vcpus"));
    json_object_set(out, "OS-FLV-EXT-DATA:ephemeral", json_object_get(flavor, "ephemeral"));
    json_object_set_new(out, "swap",
                        swap || microversion >= 75 ? json_integer(swap) : json_string(""));
    json_object_set_new(out, "rxtx_factor", json_real(1.0));
    json_object_set(out, "os-flavor-access:is_public", json_object_get(flavor, "public"));
    json_object_set_new(out, "OS-FLV-DISABLED:disabled", json_false());
    if (microversion >= 61)
        json_object_set_new(out, "extra_specs", json_object());
    return out;
}

/* Query parameters nova's flavor list takes: minRam, minDisk, is_public,
   limit and marker. */
static csgi_response *list_flavors(csgi_request *request, const compute *c, const char *v21,
                                   int microversion, int detail)
{
    const csgi_params *query;
    if (csgi_request_query(request, &query, NULL) != 0)
        return fault(request, 400, "The query string is malformed.", microversion);
    const char *min_ram = csgi_params_get(query, "minRam", NULL);
    const char *min_disk = csgi_params_get(query, "minDisk", NULL);
    const char *is_public = csgi_params_get(query, "is_public", NULL);
    const char *limit_text = csgi_params_get(query, "limit", NULL);
    const char *marker = csgi_params_get(query, "marker", NULL);
    char *end;
    long long limit = limit_text ? strtoll(limit_text, &end, 10) : 1000;
    if (limit_text && (*end || end == limit_text || limit < 0))
        return fault(request, 400, "limit must be a non-negative integer.", microversion);
    long long ram = min_ram ? strtoll(min_ram, &end, 10) : 0;
    if (min_ram && (*end || end == min_ram))
        return fault(request, 400, "Invalid minRam filter.", microversion);
    long long disk = min_disk ? strtoll(min_disk, &end, 10) : 0;
    if (min_disk && (*end || end == min_disk))
        return fault(request, 400, "Invalid minDisk filter.", microversion);
    /* nova: is_public absent or true lists public flavors; none lists all. */
    int want_public = -1;
    if (!is_public || strcasecmp(is_public, "true") == 0 || strcmp(is_public, "1") == 0)
        want_public = 1;
    else if (strcasecmp(is_public, "false") == 0 || strcmp(is_public, "0") == 0)
        want_public = 0;
    else if (strcasecmp(is_public, "none") != 0)
        return fault(request, 400, "Invalid is_public filter.", microversion);

    json_t *list = json_array();
    size_t index;
    json_t *flavor;
    int after_marker = marker == NULL;
    json_array_foreach(c->flavors, index, flavor)
    {
        const char *id = json_string_value(json_object_get(flavor, "id"));
        if (!after_marker) {
            after_marker = strcmp(id, marker) == 0;
            continue;
        }
        if (json_integer_value(json_object_get(flavor, "ram")) < ram ||
            json_integer_value(json_object_get(flavor, "disk")) < disk ||
            (want_public >= 0 && json_is_true(json_object_get(flavor, "public")) != want_public))
            continue;
        if ((long long)json_array_size(list) >= limit)
            break;
        json_array_append_new(list, flavor_json(flavor, v21, microversion, detail));
    }
    if (!after_marker) {
        json_decref(list);
        return fault(request, 400, "marker not found", microversion);
    }
    return answer(request, 200, json_pack("{so}", "flavors", list), microversion);
}

static csgi_response *handle(csgi_request *request, void *userdata)
{
    const compute *c = userdata;
    int microversion = requested_microversion(request);
    if (microversion < 0) {
        char message[160];
        snprintf(message, sizeof(message),
                 "Version is not supported by the API. Minimum is 2.%d and maximum is 2.%d.",
                 MICROVERSION_MIN, MICROVERSION_MAX);
        return fault(request, 406, message, MICROVERSION_MIN);
    }
    if (!microversion)
        microversion = MICROVERSION_MIN;
    const char *method = csgi_request_method(request);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return fault(request, 405, "This service only lists flavors.", microversion);

    const char *base = csgi_request_application_url(request);
    const char *segment;
    int rc = csgi_request_path_info_pop(request, &segment, NULL);
    if (rc < 0 || !base)
        return NULL;
    if (rc == 0 || !*segment)
        return versions(request, base);
    if (strcmp(segment, "v2.1") != 0)
        return fault(request, 404, "Not found.", microversion);
    char v21[1024];
    snprintf(v21, sizeof(v21), "%s/v2.1", base);
    if ((rc = csgi_request_path_info_pop(request, &segment, NULL)) < 0)
        return NULL;
    if (rc == 0 || !*segment)
        return answer(request, 200, json_pack("{so}", "version", version_document(base)),
                      microversion);
    if (strcmp(segment, "flavors") != 0) {
        /* /v2.1/{project_id}/flavors, as clients that put the project in the URL send it */
        const char *project = csgi_request_header(request, "X-Project-Id", NULL);
        if (!project || strcmp(project, segment) != 0 ||
            csgi_request_path_info_pop(request, &segment, NULL) != 1 ||
            strcmp(segment, "flavors") != 0)
            return fault(request, 404, "Not found.", microversion);
    }
    if ((rc = csgi_request_path_info_pop(request, &segment, NULL)) < 0)
        return NULL;
    if (rc == 0 || !*segment)
        return list_flavors(request, c, v21, microversion, 0);
    if (strcmp(segment, "detail") == 0)
        return list_flavors(request, c, v21, microversion, 1);
    /* /flavors/{id}/os-extra_specs: what openstackclient's flavor list
       asks of each flavor; these flavors have none. */
    const char *rest = csgi_request_path_info(request, NULL);
    int extra_specs = strcmp(rest, "/os-extra_specs") == 0;
    if (*rest && strcmp(rest, "/") != 0 && !extra_specs)
        return fault(request, 404, "Not found.", microversion);
    size_t index;
    json_t *flavor;
    json_array_foreach(c->flavors, index, flavor)
    {
        if (strcmp(json_string_value(json_object_get(flavor, "id")), segment) != 0)
            continue;
        if (extra_specs)
            return answer(request, 200, json_pack("{s{}}", "extra_specs"), microversion);
        return answer(request, 200,
                      json_pack("{so}", "flavor", flavor_json(flavor, v21, microversion, 1)),
                      microversion);
    }
    char message[160];
    snprintf(message, sizeof(message), "Flavor %.64s could not be found.", segment);
    return fault(request, 404, message, microversion);
}

static void compute_free(void *userdata)
{
    compute *c = userdata;
    json_decref(c->flavors);
    free(c);
}

/* A flavor from the file, with every field the answers need; NULL (and
   the reason in why) when it lacks one. */
static json_t *flavor_from(json_t *item, const char **why)
{
    json_t *id = json_object_get(item, "id"), *name = json_object_get(item, "name");
    json_t *ram = json_object_get(item, "ram"), *disk = json_object_get(item, "disk");
    json_t *vcpus = json_object_get(item, "vcpus");
    if (!json_is_string(id) || !json_is_string(name) || !json_is_integer(ram) ||
        !json_is_integer(disk) || !json_is_integer(vcpus)) {
        *why = "a flavor needs id and name (strings), ram, disk and vcpus (integers)";
        return NULL;
    }
    json_t *description = json_object_get(item, "description");
    json_t *public = json_object_get(item, "public");
    return json_pack("{sOsOsOsOsOsIsIsOso}", "id", id, "name", name, "ram", ram, "disk", disk,
                     "vcpus", vcpus, "ephemeral",
                     json_integer_value(json_object_get(item, "ephemeral")), "swap",
                     json_integer_value(json_object_get(item, "swap")), "description",
                     description ? description : json_null(), "public",
                     json_boolean(!public || json_is_true(public)));
}

static int compute_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    compute *c = calloc(1, sizeof(*c));
    if (!c || !(c->flavors = json_array())) {
        free(c);
        return CSGI_ENOMEM;
    }
    const char *path = csgi_conf_get(local_conf, "flavors_file");
    if (!path) {
        for (size_t i = 0; i < sizeof(classic) / sizeof(classic[0]); i++)
            json_array_append_new(c->flavors,
                                  json_pack("{sssssisisisisisnsb}", "id", classic[i].id, "name",
                                            classic[i].name, "ram", classic[i].ram, "disk",
                                            classic[i].disk, "vcpus", classic[i].vcpus, "ephemeral",
                                            0, "swap", 0, "description", "public", 1));
    } else {
        char why[512];
        int missing;
        json_t *file = imageapi_read_json(path, &missing, why, sizeof(why));
        json_t *items = json_object_get(file, "flavors");
        const char *problem = file && !json_is_array(items) ? "no \"flavors\" array" : NULL;
        size_t index;
        json_t *item;
        json_array_foreach(items, index, item)
        {
            json_t *flavor = problem ? NULL : flavor_from(item, &problem);
            if (flavor)
                json_array_append_new(c->flavors, flavor);
        }
        json_decref(file);
        if (!file || problem) {
            csgi_conf_error(local_conf, "flavors_file", error, "%s", file ? problem : why);
            compute_free(c);
            return CSGI_EINVAL;
        }
    }
    *userdata = c;
    *destroy = compute_free;
    return 0;
}

CSGI_HANDLER_APP_FACTORY(compute_factory, handle, compute_setup)
