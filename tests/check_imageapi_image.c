/*
 * examples/imageapi's image service (glance v2 and the v1-style listing),
 * loaded from a deploy file with imageapi.so and a temporary state_dir:
 * version discovery, schemas, create / list (filters, pagination, sort) /
 * show / json-patch / delete / tags as glance answers them, with the
 * visibility rules of the X-Project-Id and X-Roles that auth_token sets;
 * uploads through the test client (at once, in pieces, a byte at a time,
 * chunked) and over real sockets, checked by md5 and sha512, downloads
 * with Content-MD5 and ranges; the size cap (413); an upload to an image
 * deleted meanwhile (410, no data left); uploads whose process died (a
 * partial file nobody locks; a serving child killed with SIGKILL
 * mid-upload) repaired to queued at load and on read, so a retry works;
 * and several processes changing one image under the store's lock.
 */
#include "engine_harness.h"

#include <csgi.h>
#include <csgi/testing.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- The service ------------------------------------------------------------------------ */

static char state_dir[256];
static char ini_path[300];

static void remove_tree(const char *path)
{
    DIR *dir = opendir(path);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            char child[1024];
            snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
            remove_tree(child);
        }
        closedir(dir);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A fresh state_dir and a deploy file: / versions, /v2 the API, /images v1. */
static void make_deploy(long long size_cap)
{
    snprintf(state_dir, sizeof(state_dir), "/tmp/check_imageapi_image.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(state_dir));
    snprintf(ini_path, sizeof(ini_path), "%s/image.ini", state_dir);
    FILE *f = fopen(ini_path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "[DEFAULT]\nstate_dir = %s\n\n"
            "[composite:main]\nuse = egg:csgi#urlmap\n/ = versions\n/v2 = v2\n/images = v1\n\n"
            "[app:versions]\npaste.app_factory = imageapi:image_versions_factory\n\n"
            "[app:v2]\npaste.app_factory = imageapi:image_v2_factory\nimage_size_cap = %lld\n\n"
            "[app:v1]\npaste.app_factory = imageapi:image_v1_factory\n",
            state_dir, size_cap);
    fclose(f);
}

static int load(csgi_app **out, char *text, size_t size)
{
    const char *dir = getenv("CSGI_IMAGEAPI_DIR");
    ck_assert_msg(dir != NULL, "CSGI_IMAGEAPI_DIR is set by CTest");
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, dir), 0);
    csgi_load_error error;
    int rc = csgi_loader_load_app(out, loader, ini_path, &error);
    csgi_load_error_format(&error, text, size);
    csgi_loader_free(loader);
    return rc;
}

static csgi_app *load_app(void)
{
    csgi_app *app = NULL;
    char text[1024];
    int rc = load(&app, text, sizeof(text));
    ck_assert_msg(rc == 0, "%s", text);
    return app;
}

static csgi_app *app;

static void setup(void)
{
    make_deploy(1024 * 1024);
    app = load_app();
}

static void teardown(void)
{
    csgi_app_free(app);
    app = NULL;
    remove_tree(state_dir);
}

/* ---- Requests through the test client -------------------------------------------------- */

/* Who asks: as auth_token sets the headers. NULL project: no headers. */
typedef struct who {
    const char *project;
    const char *roles;
} who;

static const who ADMIN = {"p-admin", "admin,member"};
static const who DEMO = {"p-demo", "member,reader"};
static const who OTHER = {"p-other", "member"};
static const who NOBODY = {NULL, NULL}; /* no auth_token in front: an admin */

typedef struct answer {
    int status;
    char *body;
    size_t len;
    json_t *json;
    char md5[64]; /* Content-MD5 */
    char location[256];
    char range[128]; /* Content-Range */
} answer;

static void answer_free(answer *a)
{
    free(a->body);
    json_decref(a->json);
    memset(a, 0, sizeof(*a));
}

typedef struct send_options {
    const char *type;
    const void *body;
    size_t len;
    int late; /* delivered late, in pieces of piece bytes */
    size_t piece;
    int chunked;
    const char *range;
    const char *identity; /* X-Identity-Status */
} send_options;

static answer run(csgi_test_request *request, csgi_app *through);

static answer call(const who *w, const char *method, const char *url, const send_options *o)
{
    static const send_options none = {0};
    if (!o)
        o = &none;
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    if (w->project) {
        csgi_test_request_add_header(request, "X-Identity-Status",
                                     o->identity ? o->identity : "Confirmed");
        csgi_test_request_add_header(request, "X-Project-Id", w->project);
        csgi_test_request_add_header(request, "X-Roles", w->roles);
    }
    if (o->type)
        csgi_test_request_add_header(request, "Content-Type", o->type);
    if (o->range)
        csgi_test_request_add_header(request, "Range", o->range);
    if (o->body)
        ck_assert_int_eq(csgi_test_request_set_body(request, o->body, o->len), 0);
    if (o->late)
        ck_assert_int_eq(
            csgi_test_request_set_body_delivery(request, CSGI_TEST_DELIVERY_LATE, o->piece), 0);
    csgi_test_request_set_chunked(request, o->chunked);
    return run(request, app);
}

/* Run request (freed) through the application; the answer. */
static answer run(csgi_test_request *request, csgi_app *through)
{
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, through), 0);
    answer a = {0};
    a.status = csgi_test_response_code(response);
    size_t len;
    const char *body = csgi_test_response_body(response, &len);
    a.body = malloc(len + 1);
    memcpy(a.body, body, len);
    a.body[len] = '\0';
    a.len = len;
    a.json = len ? json_loadb(a.body, len, 0, NULL) : NULL;
    const char *h = csgi_test_response_header(response, "Content-MD5");
    snprintf(a.md5, sizeof(a.md5), "%s", h ? h : "");
    h = csgi_test_response_header(response, "Location");
    snprintf(a.location, sizeof(a.location), "%s", h ? h : "");
    h = csgi_test_response_header(response, "Content-Range");
    snprintf(a.range, sizeof(a.range), "%s", h ? h : "");
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    return a;
}

static answer get(const who *w, const char *url)
{
    return call(w, "GET", url, NULL);
}

static answer send_json(const who *w, const char *method, const char *url, const char *type,
                        const char *json)
{
    send_options o = {type, json, strlen(json), 0, 0, 0, NULL, NULL};
    return call(w, method, url, &o);
}

/* Expect status; the answer is freed unless kept. */
#define EXPECT(a, code)                                                                  \
    do {                                                                                 \
        ck_assert_msg((a).status == (code), "%s:%d: %d, not %d: %s", __FILE__, __LINE__, \
                      (a).status, (code), (a).body);                                     \
    } while (0)

static int status_of(answer a)
{
    int status = a.status;
    answer_free(&a);
    return status;
}

/* Create an image from JSON; its id in out (37 bytes). */
static void create(const who *w, const char *json, char *out)
{
    answer a = send_json(w, "POST", "/v2/images", "application/json", json);
    EXPECT(a, 201);
    snprintf(out, 37, "%s", json_string_value(json_object_get(a.json, "id")));
    answer_free(&a);
}

static const char *field(const answer *a, const char *name)
{
    return json_string_value(json_object_get(a->json, name));
}

static void hex_digest(const EVP_MD *md, const void *data, size_t len, char *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    ck_assert_int_eq(EVP_Digest(data, len, digest, &n, md, NULL), 1);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static unsigned char *random_data(size_t len)
{
    unsigned char *data = malloc(len);
    ck_assert_ptr_nonnull(data);
    unsigned state = (unsigned)len * 2654435761u;
    for (size_t i = 0; i < len; i++) {
        state = state * 1103515245u + 12345u;
        data[i] = (unsigned char)(state >> 16);
    }
    return data;
}

static answer upload(const who *w, const char *id, const void *data, size_t len, int late,
                     size_t piece, int chunked)
{
    char url[128];
    snprintf(url, sizeof(url), "/v2/images/%s/file", id);
    send_options o = {"application/octet-stream", data, len, late, piece, chunked, NULL, NULL};
    return call(w, "PUT", url, &o);
}

static answer show(const who *w, const char *id)
{
    char url[128];
    snprintf(url, sizeof(url), "/v2/images/%s", id);
    return get(w, url);
}

/* The image is active with data's size, md5 and sha512, and downloads as data. */
static void expect_active(const char *id, const void *data, size_t len)
{
    answer a = show(&ADMIN, id);
    EXPECT(a, 200);
    ck_assert_str_eq(field(&a, "status"), "active");
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "size")), (json_int_t)len);
    char md5[64], sha512[160];
    hex_digest(EVP_md5(), data, len, md5);
    hex_digest(EVP_sha512(), data, len, sha512);
    ck_assert_str_eq(field(&a, "checksum"), md5);
    ck_assert_str_eq(field(&a, "os_hash_algo"), "sha512");
    ck_assert_str_eq(field(&a, "os_hash_value"), sha512);
    answer_free(&a);

    char url[128];
    snprintf(url, sizeof(url), "/v2/images/%s/file", id);
    a = get(&ADMIN, url);
    EXPECT(a, 200);
    ck_assert_uint_eq(a.len, len);
    ck_assert(memcmp(a.body, data, len) == 0);
    ck_assert_str_eq(a.md5, md5);
    answer_free(&a);
}

/* Whether state_dir/dir/<id><suffix> exists. */
static int file_exists(const char *dir, const char *id, const char *suffix)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/%s%s", state_dir, dir, id, suffix);
    return access(path, F_OK) == 0;
}

/* The status the metadata file holds, read directly. */
static const char *stored_status(const char *id, char *out, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/images/%s.json", state_dir, id);
    json_t *image = json_load_file(path, 0, NULL);
    snprintf(out, size, "%s",
             image ? json_string_value(json_object_get(image, "status")) : "(none)");
    json_decref(image);
    return out;
}

/* ---- Discovery and schemas --------------------------------------------------------------- */

START_TEST(versions_and_schemas)
{
    answer a = get(&NOBODY, "/");
    EXPECT(a, 300);
    json_t *first = json_array_get(json_object_get(a.json, "versions"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(first, "id")), "v2.9");
    ck_assert_str_eq(json_string_value(json_object_get(first, "status")), "CURRENT");
    const char *href = json_string_value(
        json_object_get(json_array_get(json_object_get(first, "links"), 0), "href"));
    ck_assert_msg(href && strlen(href) > 4 && strcmp(href + strlen(href) - 4, "/v2/") == 0, "%s",
                  href);
    ck_assert_int_ge(json_array_size(json_object_get(a.json, "versions")), 2);
    answer_free(&a);
    a = get(&NOBODY, "/versions");
    EXPECT(a, 200);
    ck_assert_ptr_nonnull(json_object_get(a.json, "versions"));
    answer_free(&a);
    ck_assert_int_eq(status_of(get(&NOBODY, "/elsewhere")), 404);
    ck_assert_int_eq(status_of(get(&NOBODY, "/versionsX")), 404);
    ck_assert_int_eq(status_of(call(&NOBODY, "POST", "/", NULL)), 405);
    ck_assert_int_eq(status_of(call(&NOBODY, "DELETE", "/images/detail", NULL)), 405);

    a = get(&DEMO, "/v2/schemas/image");
    EXPECT(a, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a.json, "name")), "image");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(a.json, "additionalProperties"), "type")),
        "string");
    ck_assert_ptr_nonnull(json_object_get(json_object_get(a.json, "properties"), "os_hash_value"));
    answer_free(&a);
    a = get(&DEMO, "/v2/schemas/images");
    EXPECT(a, 200);
    json_t *items =
        json_object_get(json_object_get(json_object_get(a.json, "properties"), "images"), "items");
    ck_assert_str_eq(json_string_value(json_object_get(items, "name")), "image");
    answer_free(&a);
}
END_TEST

/* ---- Create, show, delete ---------------------------------------------------------------- */

START_TEST(create_show_delete)
{
    answer a =
        send_json(&DEMO, "POST", "/v2/images", "application/json",
                  "{\"name\": \"cirros\", \"disk_format\": \"qcow2\", \"container_format\": "
                  "\"bare\", \"tags\": [\"a\", \"b\", \"a\"], \"min_disk\": 1, "
                  "\"os_distro\": \"cirros\", \"id\": \"0123ABCD-0000-4000-8000-00000000000A\"}");
    EXPECT(a, 201);
    ck_assert_str_eq(field(&a, "id"), "0123abcd-0000-4000-8000-00000000000a");
    ck_assert_str_eq(field(&a, "status"), "queued");
    ck_assert_str_eq(field(&a, "visibility"), "shared");
    ck_assert_str_eq(field(&a, "owner"), "p-demo");
    ck_assert_str_eq(field(&a, "os_distro"), "cirros");
    ck_assert_str_eq(field(&a, "self"), "/v2/images/0123abcd-0000-4000-8000-00000000000a");
    ck_assert_str_eq(field(&a, "file"), "/v2/images/0123abcd-0000-4000-8000-00000000000a/file");
    ck_assert(json_is_null(json_object_get(a.json, "checksum")));
    ck_assert(json_is_null(json_object_get(a.json, "size")));
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "tags")), 2);
    ck_assert_msg(strstr(a.location, "/v2/images/0123abcd-0000-4000-8000-00000000000a"), "%s",
                  a.location);
    answer_free(&a);
    const char *id = "0123abcd-0000-4000-8000-00000000000a";

    a = show(&DEMO, id);
    EXPECT(a, 200);
    ck_assert_str_eq(field(&a, "name"), "cirros");
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "min_disk")), 1);
    answer_free(&a);
    /* another project does not see a shared image; an admin does */
    ck_assert_int_eq(status_of(show(&OTHER, id)), 404);
    ck_assert_int_eq(status_of(show(&ADMIN, id)), 200);
    ck_assert_int_eq(status_of(show(&DEMO, "nonsense")), 404);
    ck_assert_int_eq(status_of(show(&DEMO, "00000000-0000-4000-8000-000000000000")), 404);

    /* the same id again */
    ck_assert_int_eq(status_of(send_json(&DEMO, "POST", "/v2/images", "application/json",
                                         "{\"id\": \"0123abcd-0000-4000-8000-00000000000a\"}")),
                     409);
    /* what glance refuses */
    static const struct {
        const char *json;
        int status;
    } refused[] = {
        {"{\"id\": \"../../etc/passwd\"}", 400},
        {"{\"status\": \"active\"}", 403},
        {"{\"checksum\": \"abc\"}", 403},
        {"{\"size\": 5}", 403},
        {"{\"visibility\": \"public\"}", 403}, /* not an admin */
        {"{\"visibility\": \"everyone\"}", 400},
        {"{\"disk_format\": \"floppy\"}", 400},
        {"{\"container_format\": 7}", 400},
        {"{\"min_ram\": -1}", 400},
        {"{\"min_disk\": \"1\"}", 400},
        {"{\"protected\": \"yes\"}", 400},
        {"{\"custom\": 5}", 400},
        {"{\"tags\": \"a\"}", 400},
        {"{\"tags\": [1]}", 400},
        {"{\"owner\": \"p-other\"}", 403},
        {"[1, 2]", 400},
        {"{\"name\": ", 400},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        answer r = send_json(&DEMO, "POST", "/v2/images", "application/json", refused[i].json);
        ck_assert_msg(r.status == refused[i].status, "%s: %d, not %d", refused[i].json, r.status,
                      refused[i].status);
        answer_free(&r);
    }
    char long_name[400] = "{\"name\": \"";
    memset(long_name + strlen(long_name), 'n', 256);
    strcat(long_name, "\"}");
    ck_assert_int_eq(
        status_of(send_json(&DEMO, "POST", "/v2/images", "application/json", long_name)), 400);
    /* the JSON body in pieces, a byte at a time, chunked */
    static const char json[] = "{\"name\": \"pieces\", \"tags\": [\"p\"]}";
    for (int way = 0; way < 3; way++) {
        send_options o = {"application/json", json,     strlen(json), 1,
                          way == 0 ? 5 : 1,   way == 2, NULL,         NULL};
        answer p = call(&DEMO, "POST", "/v2/images", &o);
        EXPECT(p, 201);
        ck_assert_str_eq(field(&p, "name"), "pieces");
        answer_free(&p);
    }
    /* a body past 256 KiB is refused */
    char *huge = malloc(300 * 1024);
    memset(huge, ' ', 300 * 1024);
    huge[0] = '{';
    strcpy(huge + 300 * 1024 - 2, "}");
    ck_assert_int_eq(status_of(send_json(&DEMO, "POST", "/v2/images", "application/json", huge)),
                     413);
    free(huge);
    /* an admin publicizes */
    char public_id[37];
    create(&ADMIN, "{\"name\": \"pub\", \"visibility\": \"public\", \"protected\": true}",
           public_id);
    ck_assert_int_eq(status_of(show(&OTHER, public_id)), 200);
    /* protected: not deleted; others' images: 403 when visible, 404 when not */
    char url[128];
    snprintf(url, sizeof(url), "/v2/images/%s", public_id);
    ck_assert_int_eq(status_of(call(&ADMIN, "DELETE", url, NULL)), 403);
    ck_assert_int_eq(status_of(call(&OTHER, "DELETE", url, NULL)), 403);
    snprintf(url, sizeof(url), "/v2/images/%s", id);
    ck_assert_int_eq(status_of(call(&OTHER, "DELETE", url, NULL)), 404);
    ck_assert_int_eq(status_of(call(&DEMO, "DELETE", url, NULL)), 204);
    ck_assert_int_eq(status_of(show(&DEMO, id)), 404);
    ck_assert_int_eq(status_of(call(&DEMO, "DELETE", url, NULL)), 404);
    ck_assert(!file_exists("images", id, ".json"));
    /* an identity auth_token did not confirm */
    send_options invalid = {0};
    invalid.identity = "Invalid";
    ck_assert_int_eq(status_of(call(&DEMO, "GET", "/v2/images", &invalid)), 401);
}
END_TEST

/* ---- List ---------------------------------------------------------------------------------- */

/* The names of a list answer, joined by commas. */
static void names(const answer *a, char *out, size_t size)
{
    out[0] = '\0';
    size_t i;
    json_t *image;
    json_array_foreach(json_object_get(a->json, "images"), i, image)
    {
        const char *name = json_string_value(json_object_get(image, "name"));
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", name ? name : "-");
    }
}

static void expect_names(const who *w, const char *url, const char *expected)
{
    answer a = get(w, url);
    EXPECT(a, 200);
    char got[1024];
    names(&a, got, sizeof(got));
    ck_assert_msg(strcmp(got, expected) == 0, "%s: [%s], not [%s]", url, got, expected);
    answer_free(&a);
}

START_TEST(list_filters_sort_pagination)
{
    char id[37];
    create(&DEMO, "{\"name\": \"d1\", \"tags\": [\"x\"], \"min_ram\": 3, \"arch\": \"arm\"}", id);
    create(&DEMO, "{\"name\": \"d2\", \"tags\": [\"x\", \"y\"], \"visibility\": \"private\"}", id);
    create(&DEMO, "{\"name\": \"d3\", \"visibility\": \"community\"}", id);
    create(&OTHER, "{\"name\": \"o1\"}", id);
    create(&OTHER, "{\"name\": \"o2\", \"visibility\": \"community\"}", id);
    create(&ADMIN, "{\"name\": \"a1\", \"visibility\": \"public\"}", id);
    create(&ADMIN, "{\"name\": \"h1\", \"visibility\": \"public\", \"os_hidden\": true}", id);

    expect_names(&DEMO, "/v2/images?sort=name:asc", "a1,d1,d2,d3");
    expect_names(&DEMO, "/v2/images?sort_key=name&sort_dir=desc", "d3,d2,d1,a1");
    expect_names(&DEMO, "/v2/images?sort_key=name&sort_dir=asc&visibility=all", "a1,d1,d2,d3,o2");
    expect_names(&DEMO, "/v2/images?visibility=community&sort=name:asc", "d3,o2");
    expect_names(&DEMO, "/v2/images?visibility=private", "d2");
    expect_names(&OTHER, "/v2/images?sort=name:asc", "a1,o1,o2");
    expect_names(&ADMIN, "/v2/images?sort=name:asc", "a1,d1,d2,d3,o1,o2");
    expect_names(&DEMO, "/v2/images?os_hidden=true", "h1");
    /* openstackclient writes Python's booleans */
    expect_names(&DEMO, "/v2/images?os_hidden=True", "h1");
    expect_names(&DEMO, "/v2/images?os_hidden=False&sort=name:asc", "a1,d1,d2,d3");
    expect_names(&DEMO, "/v2/images?tag=x&sort=name", "d2,d1");
    expect_names(&DEMO, "/v2/images?tag=x&tag=y", "d2");
    expect_names(&DEMO, "/v2/images?name=d1", "d1");
    expect_names(&DEMO, "/v2/images?owner=p-other&visibility=all", "o2");
    expect_names(&DEMO, "/v2/images?arch=arm", "d1");
    expect_names(&DEMO, "/v2/images?min_ram=3", "d1");
    expect_names(&DEMO, "/v2/images?status=active", "");
    expect_names(&DEMO, "/v2/images?sort=min_ram:desc,name:asc", "d1,a1,d2,d3");
    expect_names(&DEMO, "/v2/images?name=%3Cscript%3E", "");

    /* pages of 2 by the next links, each image once */
    char url[1024] = "/v2/images?sort_key=name&sort_dir=asc&limit=2&visibility=all";
    char seen[256] = "";
    int pages = 0;
    while (url[0] && pages < 10) {
        answer a = get(&ADMIN, url);
        EXPECT(a, 200);
        char got[256];
        names(&a, got, sizeof(got));
        if (got[0] && seen[0])
            strncat(seen, ",", sizeof(seen) - strlen(seen) - 1);
        strncat(seen, got, sizeof(seen) - strlen(seen) - 1);
        ck_assert_str_eq(field(&a, "schema"), "/v2/schemas/images");
        const char *next = field(&a, "next");
        snprintf(url, sizeof(url), "%s", next ? next : ""); /* relative to the endpoint */
        if (next)
            ck_assert_msg(strstr(next, "marker=") && strstr(next, "limit=2"), "%s", next);
        answer_free(&a);
        pages++;
    }
    ck_assert_str_eq(seen, "a1,d1,d2,d3,o1,o2");
    ck_assert_int_eq(pages, 4); /* a full page has a next link, as in glance */

    /* what glance refuses */
    static const char *const bad[] = {
        "/v2/images?limit=-1",
        "/v2/images?limit=ten",
        "/v2/images?sort_key=secret",
        "/v2/images?sort_dir=up",
        "/v2/images?sort=name:up",
        "/v2/images?sort=name&sort_key=id",
        "/v2/images?marker=nonesuch",
        "/v2/images?visibility=everyone",
        "/v2/images?sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc",
        "/v2/images?size_min=x",
        "/v2/images?sort=",
        "/v2/images?sort=,,",
        "/v2/images?sort=a:b:c",
        "/v2/images?sort=name,name,name,name,name,name,name,name,name",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(status_of(get(&DEMO, bad[i])) == 400, "%s", bad[i]);
    /* a marker the caller cannot see is not a marker */
    char hidden_id[37];
    create(&OTHER, "{\"name\": \"o3\", \"visibility\": \"private\"}", hidden_id);
    char marker[128];
    snprintf(marker, sizeof(marker), "/v2/images?marker=%s", hidden_id);
    ck_assert_int_eq(status_of(get(&DEMO, marker)), 400);

    /* the v1-style listing */
    answer v1 = get(&DEMO, "/images/detail");
    EXPECT(v1, 200);
    char got[256];
    names(&v1, got, sizeof(got));
    ck_assert_msg(strstr(got, "d1") && strstr(got, "a1") && !strstr(got, "o1") &&
                      !strstr(got, "o2") && !strstr(got, "h1"),
                  "%s", got);
    json_t *first = json_array_get(json_object_get(v1.json, "images"), 0);
    ck_assert_ptr_nonnull(json_object_get(first, "checksum"));
    ck_assert_ptr_nonnull(json_object_get(first, "is_public"));
    ck_assert(json_is_object(json_object_get(first, "properties")));
    answer_free(&v1);
    ck_assert_int_eq(status_of(get(&DEMO, "/images/elsewhere")), 404);
}
END_TEST

/* Query strings of random pieces: answered 200 or 400, never worse. */
START_TEST(list_hostile_queries)
{
    char id[37];
    create(&DEMO, "{\"name\": \"one\", \"tags\": [\"t\"]}", id);
    create(&DEMO, "{\"name\": \"two\"}", id);
    const char *const pieces[] = {"sort=",      "sort_key=",   "sort_dir=",
                                  "limit=",     "marker=",     "name=",
                                  "tag=",       "visibility=", "size_min=",
                                  "os_hidden=", ":",           ",",
                                  "&",          "asc",         "desc",
                                  "name",       "id",          "created_at",
                                  "-1",         "0",           "99999999999999999999",
                                  "%00",        "%",           "=",
                                  "all",        "true",        id,
                                  "t",          "x:y:z"};
    unsigned state = 12345;
    for (int round = 0; round < 300; round++) {
        char url[512] = "/v2/images?";
        int count = 1 + (int)((state = state * 1103515245u + 12345u) >> 16) % 8;
        for (int i = 0; i < count; i++) {
            state = state * 1103515245u + 12345u;
            strncat(url, pieces[(state >> 16) % (sizeof(pieces) / sizeof(pieces[0]))],
                    sizeof(url) - strlen(url) - 1);
        }
        answer a = get(&DEMO, url);
        ck_assert_msg(a.status == 200 || a.status == 400, "%s: %d", url, a.status);
        if (a.status == 200)
            ck_assert_msg(json_is_array(json_object_get(a.json, "images")), "%s", url);
        answer_free(&a);
    }
}
END_TEST

/* ---- Update and tags ----------------------------------------------------------------------- */

#define PATCH_TYPE "application/openstack-images-v2.1-json-patch"

START_TEST(patch_and_tags)
{
    char id[37], url[160];
    create(&DEMO, "{\"name\": \"before\", \"color\": \"red\"}", id);
    snprintf(url, sizeof(url), "/v2/images/%s", id);

    ck_assert_int_eq(status_of(send_json(&DEMO, "PATCH", url, "application/json", "[]")), 415);
    answer a = send_json(&DEMO, "PATCH", url, PATCH_TYPE,
                         "[{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"after\"},"
                         " {\"op\": \"add\", \"path\": \"/size~1unit\", \"value\": \"GB\"},"
                         " {\"op\": \"replace\", \"path\": \"/color\", \"value\": \"blue\"},"
                         " {\"op\": \"add\", \"path\": \"/tags\", \"value\": [\"t1\", \"t1\"]},"
                         " {\"op\": \"replace\", \"path\": \"/disk_format\", \"value\": \"raw\"}]");
    EXPECT(a, 200);
    ck_assert_str_eq(field(&a, "name"), "after");
    ck_assert_str_eq(field(&a, "size/unit"), "GB");
    ck_assert_str_eq(field(&a, "color"), "blue");
    ck_assert_str_eq(field(&a, "disk_format"), "raw");
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "tags")), 1);
    answer_free(&a);
    a = send_json(&DEMO, "PATCH", url, PATCH_TYPE, "[{\"op\": \"remove\", \"path\": \"/color\"}]");
    EXPECT(a, 200);
    ck_assert_ptr_null(json_object_get(a.json, "color"));
    answer_free(&a);

    static const struct {
        const char *json;
        int status;
    } refused[] = {
        {"[{\"op\": \"remove\", \"path\": \"/color\"}]", 409},
        {"[{\"op\": \"replace\", \"path\": \"/nothere\", \"value\": \"x\"}]", 409},
        {"[{\"op\": \"replace\", \"path\": \"/status\", \"value\": \"active\"}]", 403},
        {"[{\"op\": \"replace\", \"path\": \"/id\", \"value\": \"x\"}]", 403},
        {"[{\"op\": \"remove\", \"path\": \"/name\"}]", 403},
        {"[{\"op\": \"add\", \"path\": \"/visibility\", \"value\": \"public\"}]", 403},
        {"[{\"op\": \"add\", \"path\": \"/k\", \"value\": 1}]", 400},
        {"[{\"op\": \"move\", \"path\": \"/k\", \"value\": \"v\"}]", 400},
        {"[{\"op\": \"add\", \"path\": \"/a/b\", \"value\": \"v\"}]", 400},
        {"[{\"op\": \"add\", \"path\": \"k\", \"value\": \"v\"}]", 400},
        {"[{\"op\": \"add\", \"path\": \"/~2\", \"value\": \"v\"}]", 400},
        {"[{\"op\": \"add\", \"path\": \"/k\"}]", 400},
        {"{\"op\": \"add\"}", 400},
        {"[{\"op\": ", 400},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        answer r = send_json(&DEMO, "PATCH", url, PATCH_TYPE, refused[i].json);
        ck_assert_msg(r.status == refused[i].status, "%s: %d, not %d", refused[i].json, r.status,
                      refused[i].status);
        answer_free(&r);
    }
    /* a refused patch changes nothing, not even its first operations */
    ck_assert_int_eq(
        status_of(send_json(&DEMO, "PATCH", url, PATCH_TYPE,
                            "[{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"lost\"},"
                            " {\"op\": \"replace\", \"path\": \"/status\", \"value\": \"x\"}]")),
        403);
    a = show(&DEMO, id);
    ck_assert_str_eq(field(&a, "name"), "after");
    answer_free(&a);
    /* others' images */
    ck_assert_int_eq(status_of(send_json(&OTHER, "PATCH", url, PATCH_TYPE, "[]")), 404);

    /* tags */
    char tag_url[256];
    snprintf(tag_url, sizeof(tag_url), "%s/tags/new%%20tag", url);
    ck_assert_int_eq(status_of(call(&DEMO, "PUT", tag_url, NULL)), 204);
    ck_assert_int_eq(status_of(call(&DEMO, "PUT", tag_url, NULL)), 204); /* once */
    a = show(&DEMO, id);
    json_t *tags = json_object_get(a.json, "tags");
    ck_assert_int_eq(json_array_size(tags), 2);
    ck_assert_str_eq(json_string_value(json_array_get(tags, 1)), "new tag");
    answer_free(&a);
    ck_assert_int_eq(status_of(call(&OTHER, "PUT", tag_url, NULL)), 404);
    ck_assert_int_eq(status_of(call(&DEMO, "DELETE", tag_url, NULL)), 204);
    ck_assert_int_eq(status_of(call(&DEMO, "DELETE", tag_url, NULL)), 404);
    char long_tag[600];
    int n = snprintf(long_tag, sizeof(long_tag), "%s/tags/", url);
    memset(long_tag + n, 't', 300);
    long_tag[n + 300] = '\0';
    ck_assert_int_eq(status_of(call(&DEMO, "PUT", long_tag, NULL)), 400);
    for (int i = 0; i < 127; i++) {
        snprintf(tag_url, sizeof(tag_url), "%s/tags/tag%d", url, i);
        ck_assert_int_eq(status_of(call(&DEMO, "PUT", tag_url, NULL)), 204);
    }
    ck_assert_int_eq(status_of(call(&DEMO, "PUT", tag_url, NULL)), 204); /* had it */
    snprintf(tag_url, sizeof(tag_url), "%s/tags/one-too-many", url);
    ck_assert_int_eq(status_of(call(&DEMO, "PUT", tag_url, NULL)), 413);
}
END_TEST

/* ---- Upload and download through the test client ---------------------------------------- */

START_TEST(upload_every_delivery)
{
    static const struct {
        const char *how;
        size_t len;
        int late;
        size_t piece;
        int chunked;
    } ways[] = {
        {"at once", 200000, 0, 0, 0},
        {"late in pieces", 200000, 1, 7000, 0},
        {"a byte at a time", 3000, 1, 1, 0},
        {"chunked", 200000, 1, 4096, 1},
        {"empty", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
        char id[37];
        create(&DEMO,
               "{\"name\": \"up\", \"disk_format\": \"raw\", \"container_format\": \"bare\"}", id);
        unsigned char *data = random_data(ways[i].len + 1);
        answer a =
            upload(&DEMO, id, data, ways[i].len, ways[i].late, ways[i].piece, ways[i].chunked);
        ck_assert_msg(a.status == 204, "%s: %d %s", ways[i].how, a.status, a.body);
        answer_free(&a);
        expect_active(id, data, ways[i].len);
        ck_assert(!file_exists("data", id, ".partial"));
        free(data);
    }
}
END_TEST

START_TEST(upload_and_download_errors)
{
    char id[37], public_id[37], url[160];
    create(&DEMO, "{\"name\": \"mine\"}", id);
    create(&ADMIN, "{\"name\": \"theirs\", \"visibility\": \"public\"}", public_id);
    unsigned char *data = random_data(5000);

    /* no data yet: 204 */
    snprintf(url, sizeof(url), "/v2/images/%s/file", id);
    answer a = get(&DEMO, url);
    EXPECT(a, 204);
    ck_assert_uint_eq(a.len, 0);
    answer_free(&a);

    send_options wrong = {"application/json", data, 10, 0, 0, 0, NULL, NULL};
    ck_assert_int_eq(status_of(call(&DEMO, "PUT", url, &wrong)), 415);
    ck_assert_int_eq(
        status_of(upload(&DEMO, "00000000-0000-4000-8000-000000000000", data, 10, 0, 0, 0)), 404);
    ck_assert_int_eq(status_of(upload(&DEMO, "x%2F..%2F..%2Fetc", data, 10, 0, 0, 0)), 404);
    ck_assert_int_eq(status_of(upload(&OTHER, id, data, 10, 0, 0, 0)), 404);
    ck_assert_int_eq(status_of(upload(&DEMO, public_id, data, 10, 0, 0, 0)), 403);
    ck_assert_int_eq(status_of(upload(&DEMO, id, data, 5000, 0, 0, 0)), 204);
    /* active: a second upload is a conflict, and changes nothing */
    ck_assert_int_eq(status_of(upload(&DEMO, id, data + 1, 100, 0, 0, 0)), 409);
    expect_active(id, data, 5000);
    ck_assert_int_eq(status_of(get(&OTHER, url)), 404);

    /* deactivated: the data is for admins only, until reactivated */
    char action[200];
    snprintf(action, sizeof(action), "/v2/images/%s/actions/deactivate", id);
    ck_assert_int_eq(status_of(call(&DEMO, "POST", action, NULL)), 403);
    ck_assert_int_eq(status_of(call(&ADMIN, "POST", action, NULL)), 204);
    ck_assert_int_eq(status_of(call(&ADMIN, "POST", action, NULL)), 204);
    ck_assert_int_eq(status_of(get(&DEMO, url)), 403);
    ck_assert_int_eq(status_of(get(&ADMIN, url)), 200);
    snprintf(action, sizeof(action), "/v2/images/%s/actions/reactivate", id);
    ck_assert_int_eq(status_of(call(&ADMIN, "POST", action, NULL)), 204);
    ck_assert_int_eq(status_of(get(&DEMO, url)), 200);
    snprintf(action, sizeof(action), "/v2/images/%s/actions/explode", id);
    ck_assert_int_eq(status_of(call(&ADMIN, "POST", action, NULL)), 404);
    char queued[37];
    create(&DEMO, "{\"name\": \"queued\"}", queued);
    snprintf(action, sizeof(action), "/v2/images/%s/actions/deactivate", queued);
    ck_assert_int_eq(status_of(call(&ADMIN, "POST", action, NULL)), 403);

    /* ranges */
    send_options range = {0};
    range.range = "bytes=100-199";
    a = call(&DEMO, "GET", url, &range);
    EXPECT(a, 206);
    ck_assert_uint_eq(a.len, 100);
    ck_assert(memcmp(a.body, data + 100, 100) == 0);
    ck_assert_str_eq(a.range, "bytes 100-199/5000");
    ck_assert_str_eq(a.md5, ""); /* Content-MD5 is the whole body's */
    answer_free(&a);
    range.range = "bytes=-10";
    a = call(&DEMO, "GET", url, &range);
    EXPECT(a, 206);
    ck_assert(memcmp(a.body, data + 4990, 10) == 0);
    answer_free(&a);
    range.range = "bytes=9000-";
    ck_assert_int_eq(status_of(call(&DEMO, "GET", url, &range)), 416);
    free(data);
}
END_TEST

START_TEST(upload_size_cap)
{
    /* setup's deploy caps images at 1 MiB */
    size_t cap = 1024 * 1024;
    unsigned char *data = random_data(cap + 1);
    for (int chunked = 0; chunked < 2; chunked++) {
        char id[37];
        create(&DEMO, "{\"name\": \"big\"}", id);
        answer a = upload(&DEMO, id, data, cap + 1, 1, 65536, chunked);
        ck_assert_msg(a.status == 413, "chunked %d: %d %s", chunked, a.status, a.body);
        answer_free(&a);
        a = show(&DEMO, id);
        ck_assert_str_eq(field(&a, "status"), "queued");
        ck_assert(json_is_null(json_object_get(a.json, "checksum")));
        answer_free(&a);
        ck_assert(!file_exists("data", id, ".partial"));
        ck_assert(!file_exists("data", id, ""));
        /* the retry within the cap works */
        ck_assert_int_eq(status_of(upload(&DEMO, id, data, cap, 1, 65536, chunked)), 204);
        expect_active(id, data, cap);
    }
    free(data);
}
END_TEST

/* ---- Uploads whose process died ------------------------------------------------------------ */

/* Make the image look as an uploader left it: status saving, and a partial
   file (locked by a child process when alive; else by nobody). The child's
   pid, or 0. */
static pid_t fake_upload(const char *id, int alive, int committed)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/images/%s.json", state_dir, id);
    json_t *image = json_load_file(path, 0, NULL);
    ck_assert_ptr_nonnull(image);
    json_object_set_new(image, "status", json_string("saving"));
    ck_assert_int_eq(json_dump_file(image, path, 0), 0);
    json_decref(image);
    snprintf(path, sizeof(path), "%s/data/%s%s", state_dir, id, committed ? "" : ".partial");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "partial", 7), 7);
    if (!alive) {
        close(fd);
        return 0;
    }
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        flock(fd, LOCK_EX);
        ssize_t w = write(ready[1], "x", 1);
        (void)w;
        for (;;)
            pause();
    }
    close(fd);
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    return child;
}

START_TEST(dead_uploads_are_repaired)
{
    unsigned char *data = random_data(40000);
    char status[32];

    /* nobody holds the partial file: the uploader died; reading repairs */
    char id[37];
    create(&DEMO, "{\"name\": \"dead\"}", id);
    fake_upload(id, 0, 0);
    answer a = show(&DEMO, id);
    ck_assert_str_eq(field(&a, "status"), "queued");
    answer_free(&a);
    ck_assert_str_eq(stored_status(id, status, sizeof(status)), "queued");
    ck_assert(!file_exists("data", id, ".partial"));
    ck_assert_int_eq(status_of(upload(&DEMO, id, data, 40000, 1, 3000, 0)), 204);
    expect_active(id, data, 40000);

    /* an uploader that lives: saving, and a second upload is refused; once
       it is killed, the next upload works */
    char live[37];
    create(&DEMO, "{\"name\": \"live\"}", live);
    pid_t child = fake_upload(live, 1, 0);
    a = show(&DEMO, live);
    ck_assert_str_eq(field(&a, "status"), "saving");
    answer_free(&a);
    ck_assert_int_eq(status_of(upload(&DEMO, live, data, 100, 0, 0, 0)), 409);
    char url[160];
    snprintf(url, sizeof(url), "/v2/images/%s/file", live);
    ck_assert_int_eq(status_of(get(&DEMO, url)), 204); /* no data to send while saving */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    ck_assert_int_eq(status_of(upload(&DEMO, live, data, 40000, 0, 0, 0)), 204);
    expect_active(live, data, 40000);

    /* the list repairs too */
    char listed[37];
    create(&DEMO, "{\"name\": \"listed\"}", listed);
    fake_upload(listed, 0, 0);
    a = get(&DEMO, "/v2/images?name=listed");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(a.json, "images"), 0), "status")),
                     "queued");
    answer_free(&a);
    free(data);
}
END_TEST

START_TEST(load_sweeps_dead_uploads)
{
    char partial[37], committed[37], live[37], status[32];
    create(&DEMO, "{\"name\": \"partial\"}", partial);
    create(&DEMO, "{\"name\": \"committed\"}", committed);
    create(&DEMO, "{\"name\": \"live\"}", live);
    fake_upload(partial, 0, 0);
    /* the data was renamed into place, the metadata not yet written: the
       data is not trusted */
    fake_upload(committed, 0, 1);
    pid_t child = fake_upload(live, 1, 0);
    /* a queued image with a partial file nobody holds (the uploader died
       before it said saving), and a metadata write that died */
    char queued[37], path[512];
    create(&DEMO, "{\"name\": \"queued\"}", queued);
    snprintf(path, sizeof(path), "%s/data/%s.partial", state_dir, queued);
    close(open(path, O_WRONLY | O_CREAT, 0640));
    snprintf(path, sizeof(path), "%s/images/%s.json.tmp.Ab12Cd", state_dir, queued);
    close(open(path, O_WRONLY | O_CREAT, 0640));

    csgi_app *again = load_app();
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert(!file_exists("data", queued, ".partial"));
    ck_assert_str_eq(stored_status(queued, status, sizeof(status)), "queued");
    ck_assert_str_eq(stored_status(partial, status, sizeof(status)), "queued");
    ck_assert_str_eq(stored_status(committed, status, sizeof(status)), "queued");
    ck_assert_str_eq(stored_status(live, status, sizeof(status)), "saving");
    ck_assert(!file_exists("data", partial, ".partial"));
    ck_assert(!file_exists("data", committed, ""));
    ck_assert(file_exists("data", live, ".partial"));
    csgi_app_free(again);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    again = load_app();
    ck_assert_str_eq(stored_status(live, status, sizeof(status)), "queued");
    csgi_app_free(again);
}
END_TEST

/* Several processes add tags to one image at once: the store's lock keeps
   every one. */
START_TEST(processes_share_the_store)
{
    char id[37];
    create(&DEMO, "{\"name\": \"shared\"}", id);
    pid_t children[4];
    for (int c = 0; c < 4; c++) {
        children[c] = fork();
        ck_assert_int_ge(children[c], 0);
        if (children[c] == 0) {
            for (int i = 0; i < 20; i++) {
                char url[160];
                snprintf(url, sizeof(url), "/v2/images/%s/tags/c%d-%d", id, c, i);
                if (status_of(call(&DEMO, "PUT", url, NULL)) != 204)
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (int c = 0; c < 4; c++) {
        int status;
        ck_assert_int_eq(waitpid(children[c], &status, 0), children[c]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    answer a = show(&DEMO, id);
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "tags")), 80);
    answer_free(&a);
}
END_TEST

/* A process keeps the images it parsed; what another process writes
   afterwards (a new file each time) is what it shows next. */
START_TEST(processes_see_each_others_writes)
{
    char id[37], other[37];
    create(&DEMO, "{\"name\": \"before\"}", id);
    create(&DEMO, "{\"name\": \"kept\"}", other);
    usleep(2100 * 1000); /* the files settle: this process keeps them now */
    expect_names(&DEMO, "/v2/images?sort=name:asc", "before,kept");
    for (int step = 0; step < 2; step++) {
        pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
            char url[160];
            snprintf(url, sizeof(url), "/v2/images/%s", id);
            int status =
                status_of(step == 0 ? send_json(&DEMO, "PATCH", url, PATCH_TYPE,
                                                "[{\"op\": \"replace\", \"path\": \"/name\", "
                                                "\"value\": \"after\"}]")
                                    : call(&DEMO, "DELETE", url, NULL));
            _exit(status == (step == 0 ? 200 : 204) ? 0 : 1);
        }
        int status;
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (step == 0) {
            expect_names(&DEMO, "/v2/images?sort=name:asc", "after,kept");
            answer a = show(&DEMO, id);
            ck_assert_str_eq(field(&a, "name"), "after");
            answer_free(&a);
        } else {
            expect_names(&DEMO, "/v2/images", "kept");
            answer a = show(&DEMO, id);
            ck_assert_int_eq(status_of(a), 404);
        }
    }
}
END_TEST

/* ---- Over real sockets ---------------------------------------------------------------------- */

#define DEMO_HEADERS                                                              \
    "X-Identity-Status: Confirmed\r\nX-Project-Id: p-demo\r\nX-Roles: member\r\n" \
    "Content-Type: application/octet-stream\r\n"

static csgi_server_options serve_options(void)
{
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log = quiet_log;
    options.max_body = UINT64_MAX; /* the image service sets its own cap */
    return options;
}

/* Send the head of an upload of len bytes (chunked when len is 0). */
static void send_upload_head_expect(int fd, const char *id, size_t len, int expect)
{
    char head[1024];
    if (len)
        snprintf(head, sizeof(head),
                 "PUT /v2/images/%s/file HTTP/1.1\r\nHost: t\r\n" DEMO_HEADERS
                 "Content-Length: %zu\r\n%s\r\n",
                 id, len, expect ? "Expect: 100-continue\r\n" : "");
    else
        snprintf(head, sizeof(head),
                 "PUT /v2/images/%s/file HTTP/1.1\r\nHost: t\r\n" DEMO_HEADERS
                 "Transfer-Encoding: chunked\r\n\r\n",
                 id);
    ck_assert_int_eq(client_send_str(fd, head), 0);
}

static void send_upload_head(int fd, const char *id, size_t len)
{
    send_upload_head_expect(fd, id, len, 0);
}

START_TEST(sockets_upload_download)
{
    app_server served;
    csgi_server_options options = serve_options();
    csgi_app_ref(app);
    app_server_start(&served, app, &options);
    size_t len = 300000;
    unsigned char *data = random_data(len);
    for (int split = 0; split < 5; split++) {
        char id[37];
        create(&DEMO, "{\"name\": \"sock\"}", id);
        size_t size = split == 2 ? 2000 : len; /* a byte at a time: smaller */
        int fd = client_connect(served.port);
        send_upload_head_expect(fd, id, split == 3 ? 0 : size, split == 4);
        if (split == 4) { /* after the server's 100 Continue, as curl sends */
            char buf[128];
            client_read(fd, buf, sizeof(buf), 3000, "\r\n\r\n", NULL);
            ck_assert_str_eq(buf, "HTTP/1.1 100 Continue\r\n\r\n");
            ck_assert_int_eq(client_send(fd, data, size), 0);
        } else if (split == 0) {
            ck_assert_int_eq(client_send(fd, data, size), 0);
        } else if (split == 1) {
            ck_assert_int_eq(client_send(fd, data, size / 2), 0);
            usleep(20 * 1000);
            ck_assert_int_eq(client_send(fd, data + size / 2, size - size / 2), 0);
        } else if (split == 2) {
            for (size_t i = 0; i < size; i++)
                ck_assert_int_eq(client_send(fd, data + i, 1), 0);
        } else {
            for (size_t done = 0; done < size; done += 50000) {
                char line[32];
                size_t n = size - done < 50000 ? size - done : 50000;
                snprintf(line, sizeof(line), "%zx\r\n", n);
                ck_assert_int_eq(client_send_str(fd, line), 0);
                ck_assert_int_eq(client_send(fd, data + done, n), 0);
                ck_assert_int_eq(client_send_str(fd, "\r\n"), 0);
            }
            ck_assert_int_eq(client_send_str(fd, "0\r\n\r\n"), 0);
        }
        test_response r;
        ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
        ck_assert_msg(r.status == 204, "split %d: %d %s", split, r.status, r.body);
        response_free(&r);

        /* the download goes by sendfile, with Content-MD5 */
        char head[512];
        snprintf(head, sizeof(head),
                 "GET /v2/images/%s/file HTTP/1.1\r\nHost: t\r\nX-Identity-Status: "
                 "Confirmed\r\nX-Project-Id: p-demo\r\nX-Roles: member\r\n\r\n",
                 id);
        ck_assert_int_eq(client_send_str(fd, head), 0);
        ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_uint_eq(r.body_len, size);
        ck_assert(memcmp(r.body, data, size) == 0);
        char md5[64];
        hex_digest(EVP_md5(), data, size, md5);
        ck_assert_str_eq(response_header(&r, "Content-MD5"), md5);
        ck_assert_str_eq(response_header(&r, "Content-Type"), "application/octet-stream");
        response_free(&r);
        /* the image is active: an upload waiting for 100 Continue gets
           409 at once, and its body is never sent */
        send_upload_head_expect(fd, id, size, 1);
        ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
        ck_assert_int_eq(r.status, 409);
        response_free(&r);
        close(fd);
        expect_active(id, data, size);
    }
    free(data);
    app_server_stop(&served);
}
END_TEST

/* An upload of 20 MiB in 64 KiB writes: it streams to disk (past the
   backend's writeback window) and downloads whole. */
START_TEST(sockets_large_upload)
{
    csgi_app_free(app);
    remove_tree(state_dir);
    make_deploy(64 * 1024 * 1024);
    app = load_app();
    app_server served;
    csgi_server_options options = serve_options();
    csgi_app_ref(app);
    app_server_start(&served, app, &options);
    size_t len = 20 * 1024 * 1024;
    unsigned char *data = random_data(len);
    char id[37];
    create(&DEMO, "{\"name\": \"large\"}", id);
    int fd = client_connect(served.port);
    send_upload_head(fd, id, len);
    for (size_t done = 0; done < len; done += 65536)
        ck_assert_int_eq(client_send(fd, data + done, len - done < 65536 ? len - done : 65536), 0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 30000), 0);
    ck_assert_msg(r.status == 204, "%d %s", r.status, r.body);
    response_free(&r);
    close(fd);
    expect_active(id, data, len);
    free(data);
    app_server_stop(&served);
}
END_TEST

/* Wait until the stored status is want (5 s at most). */
static void wait_status(const char *id, const char *want)
{
    char status[32];
    for (int i = 0; i < 500 && strcmp(stored_status(id, status, sizeof(status)), want) != 0; i++)
        usleep(10 * 1000);
    ck_assert_str_eq(stored_status(id, status, sizeof(status)), want);
}

START_TEST(sockets_delete_during_upload)
{
    app_server served;
    csgi_server_options options = serve_options();
    csgi_app_ref(app);
    app_server_start(&served, app, &options);
    char id[37], url[160];
    create(&DEMO, "{\"name\": \"doomed\"}", id);
    unsigned char *data = random_data(200000);
    int fd = client_connect(served.port);
    send_upload_head(fd, id, 200000);
    ck_assert_int_eq(client_send(fd, data, 100000), 0);
    wait_status(id, "saving");
    snprintf(url, sizeof(url), "/v2/images/%s", id);
    ck_assert_int_eq(status_of(call(&DEMO, "DELETE", url, NULL)), 204);
    ck_assert_int_eq(client_send(fd, data + 100000, 100000), 0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
    ck_assert_msg(r.status == 410, "%d %s", r.status, r.body);
    response_free(&r);
    close(fd);
    ck_assert(!file_exists("data", id, ".partial"));
    ck_assert(!file_exists("data", id, ""));
    ck_assert(!file_exists("images", id, ".json"));
    ck_assert_int_eq(status_of(show(&ADMIN, id)), 404);
    free(data);
    app_server_stop(&served);
}
END_TEST

/* A serving process killed with SIGKILL in the middle of an upload: the
   image is not active, the partial data goes, and the upload works again. */
START_TEST(sockets_kill_during_upload)
{
    char id[37];
    create(&DEMO, "{\"name\": \"crash\"}", id);
    int port_pipe[2];
    ck_assert_int_eq(pipe(port_pipe), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        app_server served;
        csgi_server_options options = serve_options();
        app_server_start(&served, load_app(), &options);
        ssize_t w = write(port_pipe[1], &served.port, sizeof(served.port));
        (void)w;
        for (;;)
            pause();
    }
    int port = 0;
    ck_assert_int_eq(read(port_pipe[0], &port, sizeof(port)), (ssize_t)sizeof(port));
    unsigned char *data = random_data(1000000);
    int fd = client_connect(port);
    send_upload_head(fd, id, 1000000);
    ck_assert_int_eq(client_send(fd, data, 600000), 0);
    wait_status(id, "saving");
    for (int i = 0; i < 100 && !file_exists("data", id, ".partial"); i++)
        usleep(10 * 1000);
    ck_assert(file_exists("data", id, ".partial"));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(fd);

    char status[32];
    ck_assert_str_ne(stored_status(id, status, sizeof(status)), "active");
    answer a = show(&DEMO, id);
    ck_assert_str_eq(field(&a, "status"), "queued");
    answer_free(&a);
    ck_assert(!file_exists("data", id, ".partial"));
    ck_assert(!file_exists("data", id, ""));
    ck_assert_int_eq(status_of(upload(&DEMO, id, data, 1000000, 1, 65536, 0)), 204);
    expect_active(id, data, 1000000);
    free(data);
}
END_TEST

/* ---- Behind the bundled auth_token filter ------------------------------------------------ */

/* A raw request with headers (name, value, ..., NULL) through app. */
static answer call_with(csgi_app *through, const char *method, const char *url,
                        const char *const *headers, const char *body)
{
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    for (; headers && *headers; headers += 2)
        csgi_test_request_add_header(request, headers[0], headers[1]);
    if (body)
        csgi_test_request_set_body(request, body, strlen(body));
    return run(request, through);
}

START_TEST(behind_auth_token)
{
    char tokens[300];
    snprintf(tokens, sizeof(tokens), "%s/tokens.json", state_dir);
    FILE *f = fopen(tokens, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"tokens\": {\"demo-token\": {\"token\": {\"expires_at\": "
          "\"2099-01-01T00:00:00.000000Z\", \"methods\": [\"password\"], \"user\": {\"id\": "
          "\"u1\", \"name\": \"demo\", \"domain\": {\"id\": \"default\", \"name\": "
          "\"Default\"}}, \"project\": {\"id\": \"p-demo\", \"name\": \"demo\", \"domain\": "
          "{\"id\": \"default\", \"name\": \"Default\"}}, \"roles\": [{\"id\": \"r1\", "
          "\"name\": \"member\"}]}}}}",
          f);
    fclose(f);
    f = fopen(ini_path, "a");
    fprintf(f,
            "\n[pipeline:guarded]\npipeline = authtoken v2\n\n[filter:authtoken]\n"
            "paste.filter_factory = keystonemiddleware.auth_token:filter_factory\n"
            "tokens_file = %s\n",
            tokens);
    fclose(f);
    const char *dir = getenv("CSGI_IMAGEAPI_DIR");
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, dir), 0);
    char uri[400];
    snprintf(uri, sizeof(uri), "%s#guarded", ini_path);
    csgi_app *guarded = NULL;
    csgi_load_error error;
    char text[1024];
    int rc = csgi_loader_load_app(&guarded, loader, uri, &error);
    csgi_load_error_format(&error, text, sizeof(text));
    ck_assert_msg(rc == 0, "%s", text);
    csgi_loader_free(loader);

    /* no token: auth_token's 401; a forged project and role do not pass */
    static const char *const forged[] = {"X-Project-Id",      "p-admin",   "X-Roles", "admin",
                                         "X-Identity-Status", "Confirmed", NULL};
    answer a = call_with(guarded, "GET", "/images", forged, NULL);
    EXPECT(a, 401);
    answer_free(&a);
    /* the token's project owns what it creates, whatever the client claims */
    static const char *const token[] = {"X-Auth-Token", "demo-token",       "X-Project-Id",
                                        "p-admin",      "X-Roles",          "admin",
                                        "Content-Type", "application/json", NULL};
    a = call_with(guarded, "POST", "/images", token, "{\"name\": \"guarded\"}");
    EXPECT(a, 201);
    ck_assert_str_eq(field(&a, "owner"), "p-demo");
    answer_free(&a);
    /* and is not an admin: publicizing is refused */
    a = call_with(guarded, "POST", "/images", token, "{\"visibility\": \"public\"}");
    EXPECT(a, 403);
    answer_free(&a);
    a = call_with(guarded, "GET", "/images", token, NULL);
    EXPECT(a, 200);
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "images")), 1);
    answer_free(&a);
    csgi_app_free(guarded);
}
END_TEST

/* ---- Loading ------------------------------------------------------------------------------- */

START_TEST(deploy_errors)
{
    csgi_app *failed = NULL;
    char text[1024];
    FILE *f = fopen(ini_path, "a");
    fprintf(f, "imgae_size_cap = 5\n"); /* in [app:v1]: a typo */
    fclose(f);
    ck_assert_int_ne(load(&failed, text, sizeof(text)), 0);
    ck_assert_msg(strstr(text, "image.ini:") && strstr(text, "imgae_size_cap"), "%s", text);

    f = fopen(ini_path, "w");
    fprintf(f, "[app:main]\npaste.app_factory = imageapi:image_v2_factory\nimage_size_cap = 0\n"
               "state_dir = /tmp\n");
    fclose(f);
    ck_assert_int_ne(load(&failed, text, sizeof(text)), 0);
    ck_assert_msg(strstr(text, "image_size_cap"), "%s", text);
    f = fopen(ini_path, "w");
    fprintf(f, "[app:main]\npaste.app_factory = imageapi:image_v2_factory\n");
    fclose(f);
    ck_assert_int_ne(load(&failed, text, sizeof(text)), 0);
    ck_assert_msg(strstr(text, "state_dir"), "%s", text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("imageapi_image");
    TCase *tc = tcase_create("image");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, versions_and_schemas);
    tcase_add_test(tc, create_show_delete);
    tcase_add_test(tc, list_filters_sort_pagination);
    tcase_add_test(tc, list_hostile_queries);
    tcase_add_test(tc, patch_and_tags);
    tcase_add_test(tc, upload_every_delivery);
    tcase_add_test(tc, upload_and_download_errors);
    tcase_add_test(tc, upload_size_cap);
    tcase_add_test(tc, dead_uploads_are_repaired);
    tcase_add_test(tc, load_sweeps_dead_uploads);
    tcase_add_test(tc, processes_share_the_store);
    tcase_add_test(tc, processes_see_each_others_writes);
    tcase_add_test(tc, sockets_upload_download);
    tcase_add_test(tc, sockets_large_upload);
    tcase_add_test(tc, sockets_delete_during_upload);
    tcase_add_test(tc, sockets_kill_during_upload);
    tcase_add_test(tc, behind_auth_token);
    tcase_add_test(tc, deploy_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
