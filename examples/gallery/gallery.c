/*
 * A small multi-user file gallery, served by csgi-serve from gallery.ini:
 *
 *   csgi-serve --module-path build/examples/gallery examples/gallery/gallery.ini
 *
 *   GET  /                  the signed-in user's files, ?page=N, and the upload form
 *   GET  /signin, POST      the sign-in form and its answer (a session cookie)
 *   POST /signout           ends the session
 *   POST /upload            multipart/form-data, field "file" (several allowed)
 *   GET  /files/{id}        the bytes, as an attachment (Range, ETag/304)
 *   POST /files/{id}/delete removes the file
 *   GET  /status, /status.json  the server's live figures (csgi_server_stats_get())
 *
 * Every POST carries the CSRF token in its form ("csrf") or gets 403.
 * The handlers share the settings of [DEFAULT] (gallery_config).
 */
#include "gallery.h"

#include <csgi/loader.h>

#include <openssl/rand.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SIGNIN_COOKIE "gallery_signin"

static atomic_ullong requests_served;
static atomic_llong started_at; /* CLOCK_MONOTONIC seconds of the first load */

static long long monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec;
}

/* ---- Responses ------------------------------------------------------------------- */

static csgi_response *see_other(csgi_request *request, const char *location)
{
    csgi_response *response = csgi_handler_response(request);
    if (response && (csgi_response_set_status(response, 303) != 0 ||
                     csgi_response_set_location(response, location) != 0))
        return NULL;
    return response;
}

static int set_cookie(csgi_request *request, csgi_response *response, const char *name,
                      const char *value)
{
    csgi_cookie_options options = CSGI_COOKIE_OPTIONS_INIT;
    options.path = "/";
    options.http_only = 1;
    options.same_site = CSGI_SAME_SITE_LAX;
    options.secure = strcmp(csgi_request_scheme(request), "https") == 0;
    return csgi_response_set_cookie(response, name, value, &options);
}

/* The form of a POST, or an error page in *error. */
static const csgi_params *post_form(csgi_request *request, csgi_response **error)
{
    const csgi_params *form = NULL;
    int rc = csgi_request_form(request, &form, NULL);
    *error = NULL;
    if (rc == CSGI_ETOOBIG)
        *error = gallery_error_page(request, 413, "The upload is larger than this gallery takes.");
    else if (rc != 0)
        *error = gallery_error_page(request, 400, "The form could not be read.");
    return rc == 0 ? form : NULL;
}

static csgi_response *csrf_refused(csgi_request *request)
{
    return gallery_error_page(request, 403,
                              "The form's security token is missing or wrong: "
                              "reload the page and try again.");
}

/* ---- Sign in and out --------------------------------------------------------------- */

static csgi_response *signin_page(csgi_request *request, const gallery_config *config,
                                  const char *message, int status)
{
    const char *secret = csgi_request_cookie(request, SIGNIN_COOKIE, NULL);
    char fresh[33];
    if (!secret || strlen(secret) != 32) {
        unsigned char raw[16];
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            return NULL;
        for (int i = 0; i < 16; i++)
            snprintf(fresh + 2 * i, 3, "%02x", raw[i]);
        secret = fresh;
    }
    gallery_page page = {0};
    gallery_page_begin(&page, "Sign in", NULL, NULL);
    if (message) {
        gallery_page_raw(&page, "<p class=\"error\">");
        gallery_page_escape(&page, message);
        gallery_page_raw(&page, "</p>\n");
    }
    gallery_page_raw(&page, "<form method=\"post\" action=\"/signin\" class=\"signin\">\n"
                            "<input type=\"hidden\" name=\"csrf\" value=\"");
    gallery_page_escape(&page, gallery_token_for(request, config, secret));
    gallery_page_raw(&page,
                     "\">\n<label>User <input name=\"user\" autocomplete=\"username\" "
                     "required></label>\n<label>Password <input type=\"password\" "
                     "name=\"password\" autocomplete=\"current-password\" required></label>\n"
                     "<button type=\"submit\">Sign in</button>\n</form>\n");
    csgi_response *response = gallery_page_end(request, &page, status);
    if (response && secret == fresh && set_cookie(request, response, SIGNIN_COOKIE, fresh) != 0)
        return NULL;
    return response;
}

static csgi_response *signin_form(csgi_request *request, void *userdata)
{
    return signin_page(request, userdata, NULL, 200);
}

static csgi_response *signin(csgi_request *request, void *userdata)
{
    const gallery_config *config = userdata;
    csgi_response *error;
    const csgi_params *form = post_form(request, &error);
    if (!form)
        return error;
    const char *secret = csgi_request_cookie(request, SIGNIN_COOKIE, NULL);
    if (!secret || strlen(secret) != 32 ||
        !gallery_token_ok(gallery_token_for(request, config, secret), form))
        return csrf_refused(request);
    size_t user_len = 0, password_len = 0;
    const char *user = csgi_params_get(form, "user", &user_len);
    const char *password = csgi_params_get(form, "password", &password_len);
    /* A NUL inside either would cut what crypt_rn and the name check see. */
    if (!user || !password || strlen(user) != user_len || strlen(password) != password_len ||
        gallery_check_password(config, user, password) != 0)
        return signin_page(request, config, "Wrong user name or password.", 401);
    const char *session = gallery_session_new(request, config, user);
    csgi_response *response = session ? see_other(request, "/") : NULL;
    if (response && (set_cookie(request, response, GALLERY_COOKIE, session) != 0 ||
                     csgi_response_delete_cookie(response, SIGNIN_COOKIE, "/", NULL) != 0))
        return NULL;
    return response;
}

static csgi_response *signout(csgi_request *request, void *userdata)
{
    csgi_response *error;
    const csgi_params *form = post_form(request, &error);
    if (!form)
        return error;
    if (!gallery_csrf_ok(request, userdata, form))
        return csrf_refused(request);
    csgi_response *response = see_other(request, "/signin");
    if (response && csgi_response_delete_cookie(response, GALLERY_COOKIE, "/", NULL) != 0)
        return NULL;
    return response;
}

/* ---- The listing and the upload form ------------------------------------------------ */

static void list_row(gallery_page *page, const json_t *file, const char *csrf)
{
    const char *id = json_string_value(json_object_get(file, "id"));
    gallery_page_raw(page, "<tr><td><a href=\"/files/");
    gallery_page_escape(page, id);
    gallery_page_raw(page, "\">");
    gallery_page_escape(page, json_string_value(json_object_get(file, "name")));
    gallery_page_raw(page, "</a></td><td>");
    gallery_page_escape(page, json_string_value(json_object_get(file, "type")));
    gallery_page_raw(page,
                     "</td><td class=\"size\">%lld</td><td><form method=\"post\" action=\"/files/",
                     (long long)json_integer_value(json_object_get(file, "size")));
    gallery_page_escape(page, id);
    gallery_page_raw(page, "/delete\"><input type=\"hidden\" name=\"csrf\" value=\"");
    gallery_page_escape(page, csrf);
    gallery_page_raw(page, "\"><button type=\"submit\">Delete</button></form></td></tr>\n");
}

static csgi_response *home(csgi_request *request, void *userdata)
{
    const gallery_config *config = userdata;
    const char *user = gallery_session_user(request, config);
    const char *csrf = user ? gallery_csrf_token(request, config) : NULL;
    if (!csrf)
        return see_other(request, "/signin");
    const csgi_params *query = NULL;
    const char *page_text = csgi_request_query(request, &query, NULL) == 0
                                ? csgi_params_get(query, "page", NULL)
                                : NULL;
    long long number = page_text ? strtoll(page_text, NULL, 10) : 1;
    json_t *files = gallery_store_list(config, user);
    long long count = (long long)json_array_size(files);
    long long pages = count ? (count + config->page_size - 1) / config->page_size : 1;
    if (number < 1 || number > pages)
        number = 1;

    gallery_page page = {0};
    gallery_page_begin(&page, "Your files", user, csrf);
    gallery_page_raw(&page,
                     "<form method=\"post\" action=\"/upload\" enctype=\"multipart/form-data\" "
                     "class=\"upload\" id=\"upload\">\n<input type=\"hidden\" name=\"csrf\" "
                     "value=\"");
    gallery_page_escape(&page, csrf);
    gallery_page_raw(&page,
                     "\">\n<input type=\"file\" name=\"file\" multiple required>\n"
                     "<button type=\"submit\">Upload</button>\n"
                     "<progress id=\"progress\" max=\"100\" value=\"0\" hidden></progress>\n"
                     "<p id=\"upload-error\" class=\"error\" hidden></p>\n"
                     "<small>At most %lld bytes a file, %lld bytes an upload.</small>\n"
                     "</form>\n",
                     config->max_file_size, config->max_request_size);
    if (count == 0) {
        gallery_page_raw(&page, "<p>No files yet.</p>\n");
    } else {
        gallery_page_raw(&page, "<table>\n<thead><tr><th>Name</th><th>Type</th><th>Bytes</th>"
                                "<th></th></tr></thead>\n<tbody>\n");
        for (long long i = (number - 1) * config->page_size;
             i < count && i < number * config->page_size; i++)
            list_row(&page, json_array_get(files, (size_t)i), csrf);
        gallery_page_raw(&page, "</tbody>\n</table>\n<nav class=\"pages\">");
        if (number > 1)
            gallery_page_raw(&page, "<a href=\"/?page=%lld\" rel=\"prev\">Previous</a> ",
                             number - 1);
        gallery_page_raw(&page, "page %lld of %lld", number, pages);
        if (number < pages)
            gallery_page_raw(&page, " <a href=\"/?page=%lld\" rel=\"next\">Next</a>", number + 1);
        gallery_page_raw(&page, "</nav>\n");
    }
    json_decref(files);
    return gallery_page_end(request, &page, 200);
}

/* An upload streams: the handler runs when the head arrives and parses
   the multipart body as its bytes come (csgi_request_form() goes on where
   it stopped), each file part written straight to a temporary file in
   STATE/tmp past 64 KiB, which the store then links into place. Nothing
   gathers the body first, and the loop is never held while a body
   arrives. */
typedef struct upload_state {
    const gallery_config *config;
    const char *user;
    csgi_input *input;
    csgi_handler_later *later;
} upload_state;

static csgi_response *upload_go_on(csgi_request *request, void *state);

static void upload_ready(csgi_input *input, void *userdata)
{
    (void)input;
    upload_state *u = userdata;
    csgi_handler_resume(u->later, upload_go_on, u);
}

static void upload_cancel(void *state)
{
    upload_state *u = state;
    csgi_input_on_ready(u->input, NULL, NULL);
}

static csgi_response *upload_go_on(csgi_request *request, void *state)
{
    upload_state *u = state;
    const csgi_params *form = NULL;
    int rc = csgi_request_form(request, &form, NULL);
    if (rc == CSGI_EAGAIN) {
        csgi_response *wait = csgi_handler_wait(request, &u->later, upload_cancel, u);
        if (wait)
            csgi_input_on_ready(u->input, upload_ready, u);
        return wait;
    }
    if (rc == CSGI_ETOOBIG)
        return gallery_error_page(request, 413, "The upload is larger than this gallery takes.");
    if (rc != 0)
        return gallery_error_page(request, 400, "The form could not be read.");
    if (!gallery_csrf_ok(request, u->config, form))
        return csrf_refused(request);
    for (size_t i = 0; i < csgi_request_file_count(request); i++) {
        const csgi_form_file *file = csgi_request_file_at(request, i);
        char id[33];
        if (strcmp(file->name, "file") != 0 || (file->size == 0 && file->filename_len == 0))
            continue;
        if (gallery_store_save(u->config, u->user, file, id) != 0)
            return gallery_error_page(request, 500, "The file could not be stored.");
    }
    return see_other(request, "/");
}

static csgi_response *upload(csgi_request *request, void *userdata)
{
    const gallery_config *config = userdata;
    const char *user = gallery_session_user(request, config);
    if (!user)
        return gallery_error_page(request, 403, "Sign in first.");
    csgi_environ *environ = csgi_request_environ(request);
    upload_state *u = csgi_environ_alloc(environ, sizeof(*u));
    char *spool = csgi_environ_alloc(environ, strlen(config->state_dir) + 5);
    if (!u || !spool)
        return NULL;
    sprintf(spool, "%s/tmp", config->state_dir);
    *u = (upload_state){config, user, csgi_environ_input(environ), NULL};
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.max_body = (size_t)config->max_request_size;
    limits.max_file_size = (size_t)config->max_file_size;
    limits.spool_threshold = 64 * 1024;
    limits.spool_dir = spool; /* beside STATE/files: saving links, never copies */
    if (csgi_request_set_limits(request, &limits) != 0)
        return NULL;
    /* The CSRF token is checked once the form is read, before any file is
       kept: a refused upload leaves nothing behind. */
    return upload_go_on(request, u);
}

/* ---- Download and delete ------------------------------------------------------------ */

/* attachment; filename="ASCII"; filename*=UTF-8''PERCENT-ENCODED (RFC 6266),
   with "/" and "\\" made "_" so that no client takes the name for a path. */
static const char *disposition(csgi_request *request, const char *name)
{
    size_t len = strlen(name);
    char *out = csgi_environ_alloc(csgi_request_environ(request), 64 + 4 * len);
    if (!out)
        return NULL;
    size_t n = (size_t)sprintf(out, "attachment; filename=\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        out[n++] = (c >= 0x20 && c < 0x7f && !strchr("\"\\%/", c)) ? (char)c : '_';
    }
    n += (size_t)sprintf(out + n, "\"; filename*=UTF-8''");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c == '\\')
            out[n++] = '_';
        else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 strchr("!#$&+-.^_`|~", c))
            out[n++] = (char)c;
        else
            n += (size_t)sprintf(out + n, "%%%02X", c);
    }
    out[n] = '\0';
    return out;
}

static csgi_response *download(csgi_request *request, void *userdata)
{
    const gallery_config *config = userdata;
    const char *user = gallery_session_user(request, config);
    if (!user)
        return see_other(request, "/signin");
    int fd = -1;
    json_t *meta =
        gallery_store_open(config, user, csgi_router_arg(csgi_request_environ(request), "id"), &fd);
    if (!meta)
        return gallery_error_page(request, 404, "There is no such file.");
    const char *type = json_string_value(json_object_get(meta, "type"));
    const char *name = disposition(request, json_string_value(json_object_get(meta, "name")));
    const char *id = csgi_router_arg(csgi_request_environ(request), "id");
    csgi_cache_control cache = CSGI_CACHE_CONTROL_INIT;
    cache.is_private = 1;
    cache.no_cache = 1;
    csgi_response *response = name ? csgi_handler_response(request) : NULL;
    if (!response) {
        close(fd);
    } else if (csgi_response_set_file(response, fd, 0,
                                      (int64_t)json_integer_value(json_object_get(meta, "size"))) !=
                   0 ||
               csgi_response_set_header(response, "Content-Type",
                                        type ? type : "application/octet-stream") != 0 ||
               csgi_response_set_header(response, "Content-Disposition", name) != 0 ||
               csgi_response_set_header(response, "X-Content-Type-Options", "nosniff") != 0 ||
               csgi_response_set_etag(response, id, 0) != 0 ||
               csgi_response_set_cache_control(response, &cache) != 0) {
        response = NULL;
    }
    if (response)
        csgi_response_set_conditional(response, 1);
    json_decref(meta);
    return response;
}

static csgi_response *delete_file(csgi_request *request, void *userdata)
{
    const gallery_config *config = userdata;
    csgi_response *error;
    const csgi_params *form = post_form(request, &error);
    if (!form)
        return error;
    const char *user = gallery_session_user(request, config);
    if (!user || !gallery_csrf_ok(request, config, form))
        return csrf_refused(request);
    if (gallery_store_delete(config, user, csgi_router_arg(csgi_request_environ(request), "id")) !=
        0)
        return gallery_error_page(request, 404, "There is no such file.");
    return see_other(request, "/");
}

/* ---- Status ------------------------------------------------------------------------- */

/* The figures of /status and /status.json: the server's (every worker's)
   when a csgi server serves this process, else (under the test client)
   the requests the count filter saw, with no connection or worker. */
typedef struct status_figures {
    unsigned long long requests, connections;
    unsigned workers, threads;
    long long uptime;
    int server; /* 1: csgi_server_stats_get() answered */
} status_figures;

static status_figures status_now(void)
{
    status_figures f = {0};
    csgi_server_stats stats = CSGI_SERVER_STATS_INIT;
    if (csgi_server_stats_get(&stats) == 0) {
        f.requests = stats.requests;
        f.connections = stats.connections;
        f.workers = stats.workers;
        f.threads = stats.threads;
        f.uptime = (long long)stats.uptime;
        f.server = 1;
    } else {
        f.requests = atomic_load(&requests_served);
        f.uptime = monotonic_seconds() - atomic_load(&started_at);
    }
    return f;
}

static csgi_response *status_page(csgi_request *request, void *userdata)
{
    const gallery_config *config = userdata;
    const char *user = gallery_session_user(request, config);
    status_figures f = status_now();
    gallery_page page = {0};
    gallery_page_begin(&page, "Status", user, user ? gallery_csrf_token(request, config) : NULL);
    gallery_page_raw(&page,
                     "<dl class=\"figures\">\n<dt>Requests</dt><dd id=\"requests\">%llu</dd>\n"
                     "<dt>Open connections</dt><dd id=\"connections\">%llu</dd>\n",
                     f.requests, f.connections);
    gallery_page_raw(&page,
                     "<dt>Worker processes</dt><dd id=\"workers\">%u</dd>\n"
                     "<dt>Threads per process</dt><dd id=\"threads\">%u</dd>\n"
                     "<dt>Up for</dt><dd><span id=\"uptime\">%lld</span> s</dd>\n</dl>\n",
                     f.workers, f.threads, f.uptime);
    gallery_page_raw(&page, "<canvas id=\"chart\" width=\"600\" height=\"200\">Requests per "
                            "second</canvas>\n<p><small>Refreshed every 2 s from "
                            "<a href=\"/status.json\">/status.json</a>; 0 workers means one "
                            "process serves.</small></p>\n");
    return gallery_page_end(request, &page, 200);
}

static csgi_response *status_json(csgi_request *request, void *userdata)
{
    (void)userdata;
    status_figures f = status_now();
    json_t *value = json_pack("{sIsIsIsIsIsIsb}", "requests", (json_int_t)f.requests, "connections",
                              (json_int_t)f.connections, "workers", (json_int_t)f.workers,
                              "threads", (json_int_t)f.threads, "uptime", (json_int_t)f.uptime,
                              "pid", (json_int_t)getpid(), "server", f.server);
    csgi_response *response = value ? csgi_handler_response(request) : NULL;
    if (!response) {
        json_decref(value);
        return NULL;
    }
    if (csgi_response_set_json(response, value) != 0 ||
        csgi_response_set_header(response, "Cache-Control", "no-store") != 0)
        return NULL;
    return response;
}

/* Counts every request for /status (a filter in front of everything). */
static csgi_response *count_requests(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    atomic_fetch_add(&requests_served, 1);
    return csgi_handler_forward(request, next);
}

/* ---- Setup and factories ------------------------------------------------------------ */

static void config_free(void *userdata)
{
    gallery_config *config = userdata;
    if (config) {
        free(config->state_dir);
        free(config->users_file);
        OPENSSL_cleanse(config->key, sizeof(config->key));
        free(config);
    }
}

static int config_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                        const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)local_conf;
    const char *state = csgi_conf_get(global_conf, "state_dir");
    const char *users = csgi_conf_get(global_conf, "users");
    if (!state || !users) {
        csgi_conf_error(global_conf, state ? "users" : "state_dir", error, "missing");
        return CSGI_EINVAL;
    }
    gallery_config *config = calloc(1, sizeof(*config));
    if (!config)
        return CSGI_ENOMEM;
    *destroy = config_free;
    *userdata = config;
    int rc = csgi_conf_asint(global_conf, "max_file_size", 8 << 20, &config->max_file_size, error);
    if (rc == 0)
        rc = csgi_conf_asint(global_conf, "max_request_size", 16 << 20, &config->max_request_size,
                             error);
    if (rc == 0)
        rc = csgi_conf_asint(global_conf, "page_size", 10, &config->page_size, error);
    if (rc != 0)
        return rc;
    if (config->max_file_size < 1 || config->max_request_size < 1 || config->page_size < 1) {
        csgi_conf_error(global_conf, "page_size", error, "sizes must be positive");
        return CSGI_EINVAL;
    }
    config->state_dir = strdup(state);
    config->users_file = strdup(users);
    if (!config->state_dir || !config->users_file)
        return CSGI_ENOMEM;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s/tmp", state);
    mkdir(state, 0700);
    mkdir(tmp, 0700);
    if (gallery_load_key(config) != 0) {
        csgi_conf_error(global_conf, "state_dir", error, "cannot read or make session.key there");
        return CSGI_EINVAL;
    }
    long long zero = 0;
    atomic_compare_exchange_strong(&started_at, &zero, monotonic_seconds());
    return 0;
}

CSGI_HANDLER_APP_FACTORY(home_factory, home, config_setup)
CSGI_HANDLER_APP_FACTORY(signin_form_factory, signin_form, config_setup)
CSGI_HANDLER_APP_FACTORY(signin_factory, signin, config_setup)
CSGI_HANDLER_APP_FACTORY(signout_factory, signout, config_setup)
CSGI_HANDLER_APP_FACTORY(download_factory, download, config_setup)
CSGI_HANDLER_APP_FACTORY(delete_factory, delete_file, config_setup)
CSGI_HANDLER_APP_FACTORY(status_factory, status_page, config_setup)
CSGI_HANDLER_APP_FACTORY(status_json_factory, status_json, config_setup)
CSGI_HANDLER_FILTER_FACTORY(count_factory, count_requests, NULL)

/* The upload handler streams (upload() above): the form parser's limits
   and the handler's max_body (a body announced longer is refused before a
   byte is read) are max_request_size. */
int upload_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                   const csgi_conf *local_conf, csgi_load_error *error);
int upload_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                   const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    long long max = 0;
    int rc = csgi_conf_asint(global_conf, "max_request_size", 16 << 20, &max, error);
    if (rc == 0)
        rc = csgi_handler_app_factory(out, global_conf, local_conf, "upload", upload, config_setup,
                                      error);
    if (rc != 0)
        return rc;
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = CSGI_HANDLER_BODY_STREAM;
    options.max_body = (uint64_t)max;
    rc = csgi_handler_set_options(*out, &options);
    if (rc != 0) {
        csgi_app_free(*out);
        *out = NULL;
    }
    return rc;
}

extern const csgi_entry_point csgi_plugin_entry_points[];

const csgi_entry_point csgi_plugin_entry_points[] = {
    {"home_factory", CSGI_FACTORY_APP, home_factory, NULL, NULL},
    {"signin_form_factory", CSGI_FACTORY_APP, signin_form_factory, NULL, NULL},
    {"signin_factory", CSGI_FACTORY_APP, signin_factory, NULL, NULL},
    {"signout_factory", CSGI_FACTORY_APP, signout_factory, NULL, NULL},
    {"upload_factory", CSGI_FACTORY_APP, upload_factory, NULL, NULL},
    {"download_factory", CSGI_FACTORY_APP, download_factory, NULL, NULL},
    {"delete_factory", CSGI_FACTORY_APP, delete_factory, NULL, NULL},
    {"status_factory", CSGI_FACTORY_APP, status_factory, NULL, NULL},
    {"status_json_factory", CSGI_FACTORY_APP, status_json_factory, NULL, NULL},
    {"count_factory", CSGI_FACTORY_FILTER, NULL, count_factory, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
