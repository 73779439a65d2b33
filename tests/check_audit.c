/*
 * keystonemiddleware's audit filter (src/middleware/audit.c): the CADF
 * event of each request read back with jansson field by field, the map's
 * path keywords, custom actions and service endpoints, ignore_req_list,
 * hostile header bytes, map files refused at their line, auth_token in
 * front, the error stream, and real sockets.
 */
#include "engine_harness.h"
#include "test_alloc.h"
#include "test_files.h"
#include "test_smallmw.h"

#include <csgi.h>

#include <check.h>
#include <jansson.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char map[] = "[DEFAULT]\n"
                          "target_endpoint_type = compute\n"
                          "\n"
                          "[custom_actions]\n"
                          "enable = enable\n"
                          "startup/get = read/startup\n"
                          "\n"
                          "[path_keywords]\n"
                          "servers = server\n"
                          "Metadata = key\n"
                          "\n"
                          "[service_endpoints]\n"
                          "compute = service/compute\n";

/* A v2 catalog as keystonemiddleware's auth_token puts in X-Service-Catalog. */
static const char catalog[] =
    "[{\"type\":\"image\",\"name\":\"glance\",\"endpoints\":[{\"id\":\"e-img\","
    "\"publicURL\":\"http://glance.example:9292\"}]},"
    "{\"type\":\"compute\",\"name\":\"nova\",\"endpoints\":[{\"id\":\"e-nova\","
    "\"adminURL\":\"http://nova.example:8774/v2.1\",\"internalURL\":\"http://nova.internal/v2.1\","
    "\"publicURL\":\"http://nova.example:8774/v2.1\"}]}]";

/* Answers 200, or the status the X-Test-Status header asks for, with the
   request's body ("ok" when it has none). */
static csgi_response *answer(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *status = csgi_environ_get(csgi_request_environ(request), "HTTP_X_TEST_STATUS");
    const char *body = NULL;
    size_t len = 0;
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_request_body(request, 1 << 20, &body, &len) != 0)
        return NULL;
    if (status && csgi_response_set_status(response, atoi(status)) != 0)
        return NULL;
    if (csgi_response_set_text(response, len ? body : "ok", "utf-8") != 0)
        return NULL;
    return response;
}

CSGI_HANDLER_APP_FACTORY(answer_factory, answer, NULL)

static csgi_loader *loader(void)
{
    csgi_loader *l = smallmw_loader();
    ck_assert_int_eq(
        csgi_loader_register_app(l, "egg:Test#answer", CSGI_FACTORY_APP, answer_factory), 0);
    return l;
}

/* The pipeline "audit app" with the filter's lines. */
static csgi_app *load_with(const char *use, const char *lines, const char *app)
{
    char ini[2048];
    snprintf(ini, sizeof(ini),
             "[pipeline:main]\npipeline = audit app\n\n[filter:audit]\n%s\n%s\n\n"
             "[app:app]\nuse = %s\n",
             use, lines, app);
    csgi_loader *l = loader();
    csgi_app *out = smallmw_load(l, "audit.ini", ini, "main");
    csgi_loader_free(l);
    return out;
}

/* The events file's lines as JSON, count checked. */
static json_t *events(size_t want)
{
    const char *text = test_read_file(test_tmp_path("events.jsonl"));
    json_t *all = json_array();
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        ck_assert_msg(end != NULL, "an unfinished line: %s", line);
        json_error_t error;
        json_t *event = json_loadb(line, (size_t)(end - line), 0, &error);
        ck_assert_msg(event != NULL, "%s: %.*s", error.text, (int)(end - line), line);
        json_array_append_new(all, event);
        line = end + 1;
    }
    ck_assert_uint_eq(json_array_size(all), want);
    return all;
}

static const char *at(json_t *event, const char *path)
{
    char copy[128];
    snprintf(copy, sizeof(copy), "%s", path);
    json_t *value = event;
    for (char *save = NULL, *key = strtok_r(copy, ".", &save); key;
         key = strtok_r(NULL, ".", &save))
        value = json_object_get(value, key);
    return json_string_value(value);
}

static void assert_at(json_t *event, const char *path, const char *want)
{
    const char *got = at(event, path);
    if (!want) {
        ck_assert_msg(got == NULL, "%s: %s, wanted none", path, got);
        return;
    }
    ck_assert_msg(got && strcmp(got, want) == 0, "%s: %s, wanted %s", path, got ? got : "(none)",
                  want);
}

static void assert_match(const char *text, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_msg(text && regexec(&re, text, 0, NULL, 0) == 0, "%s !~ %s", text, pattern);
    regfree(&re);
}

static const char uuid4[] = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";

static csgi_app *mapped(const char *extra)
{
    /* The helpers' paths share static buffers: one at a time. */
    char lines[1024], map_path[512];
    snprintf(map_path, sizeof(map_path), "%s", test_write_file("api_audit_map.conf", map));
    snprintf(lines, sizeof(lines), "audit_map_file = %s\nfile = %s\n%s", map_path,
             test_tmp_path("events.jsonl"), extra);
    return load_with("paste.filter_factory = keystonemiddleware.audit:filter_factory", lines,
                     "egg:Test#answer");
}

static void run(csgi_app *app, const char *method, const char *url, const char *headers, int want)
{
    csgi_test_response *response = smallmw_run(app, method, url, "192.0.2.7", headers);
    ck_assert_int_eq(csgi_test_response_code(response), want);
    csgi_test_response_free(response);
}

#define IDENTITY                                                                       \
    "Host: nova.example:8774\nX-User-Id: u-1\nX-User-Name: alice\nX-Project-Id: p-1\n" \
    "X-Identity-Status: Confirmed\nUser-Agent: novaclient/9\nX-Auth-Token: "           \
    "gAAAAABsecretsecretsecrettoken\nX-Service-Catalog: "

START_TEST(test_event_fields)
{
    csgi_app *app = mapped("");
    time_t before = time(NULL);
    run(app, "GET", "/v2.1/servers/abc.json?x=1&y=2", IDENTITY "%s", 200);
    json_decref(events(1)); /* the catalog header above is the literal "%s": no target */
    ck_assert_int_eq(truncate(test_tmp_path("events.jsonl"), 0), 0); /* the filter holds it open */

    char headers[2048];
    snprintf(headers, sizeof(headers), IDENTITY "%s", catalog);
    run(app, "GET", "/v2.1/servers/abc.json?x=1&y=2", headers, 200);
    json_t *all = events(1), *e = json_array_get(all, 0);
    assert_at(e, "typeURI", "http://schemas.dmtf.org/cloud/audit/1.0/event");
    assert_match(at(e, "id"), uuid4);
    assert_match(at(e, "eventTime"),
                 "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{6}"
                 "\\+0000$");
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(at(e, "eventTime"), "%Y-%m-%dT%H:%M:%S", &tm));
    ck_assert_int_le(labs((long)(timegm(&tm) - before)), 5);
    assert_at(e, "eventType", "activity");
    assert_at(e, "action", "read");
    assert_at(e, "outcome", "success");
    assert_at(e, "reason.reasonType", "HTTP");
    assert_at(e, "reason.reasonCode", "200");
    assert_at(e, "requestPath", "/v2.1/servers/abc.json?x=1&y=2");
    assert_at(e, "observer.id", "target");
    assert_at(e, "observer.typeURI", "unknown");
    assert_at(e, "initiator.typeURI", "service/security/account/user");
    assert_at(e, "initiator.id", "u-1");
    assert_at(e, "initiator.name", "alice");
    assert_at(e, "initiator.project_id", "p-1");
    assert_at(e, "initiator.host.address", "192.0.2.7");
    assert_at(e, "initiator.host.agent", "novaclient/9");
    assert_at(e, "initiator.credential.identity_status", "Confirmed");
    /* The token itself never reaches the audit trail. */
    assert_at(e, "initiator.credential.token", "gAAA xxxxxxxx oken");
    assert_at(e, "target.typeURI", "service/compute/servers/server");
    assert_at(e, "target.id", "e-nova");
    assert_at(e, "target.name", "nova");
    json_t *addresses = json_object_get(json_object_get(e, "target"), "addresses");
    ck_assert_uint_eq(json_array_size(addresses), 3);
    assert_at(json_array_get(addresses, 1), "name", "private");
    assert_at(json_array_get(addresses, 1), "url", "http://nova.internal/v2.1");
    const char *tag = json_string_value(json_array_get(json_object_get(e, "tags"), 0));
    ck_assert_ptr_nonnull(tag);
    ck_assert_int_eq(strncmp(tag, "correlation_id?value=", 21), 0);
    assert_match(tag + 21, uuid4);
    json_t *step = json_array_get(json_object_get(e, "reporterchain"), 0);
    assert_at(step, "role", "modifier");
    assert_at(step, "reporter.id", "target");
    assert_at(step, "reporter.typeURI", "unknown");
    assert_match(at(step, "reporterTime"), "^20[0-9]{2}-.*\\.[0-9]{6}\\+0000$");
    char first_id[64];
    snprintf(first_id, sizeof(first_id), "%s", at(e, "id"));
    json_decref(all);

    /* Actions and outcomes, one event each, every id new. */
    static const struct {
        const char *method, *url, *status, *action, *outcome, *type;
    } cases[] = {
        {"GET", "/v2.1/servers", "200", "read/list", "success", "service/compute/servers"},
        /* The empty segment after "servers/" is still a segment (re.split). */
        {"POST", "/v2.1/servers/", "202", "create", "success", "service/compute/servers/server"},
        {"POST", "/v2.1/servers/abc", "404", "update", "failure", "service/compute/servers/server"},
        /* Map keys are case-insensitive (ConfigParser): "Metadata". */
        {"PUT", "/v2.1/servers/abc/metadata/k", "409", "update", "failure",
         "service/compute/servers/server/metadata/key"},
        {"DELETE", "/v2.1/servers/abc", "204", "delete", "success",
         "service/compute/servers/server"},
        {"HEAD", "/v2.1/servers/abc", "302", "read", "success", "service/compute/servers/server"},
        {"PATCH", "/v2.1/servers/abc/enable", "500", "enable", "failure",
         "service/compute/servers/server"},
        {"GET", "/v2.1/os-hosts/h/startup", "200", "read/startup", "success", "service/compute"},
        {"POST", "/v2.1/os-hosts/h/startup", "503", "update", "failure", "service/compute"},
        {"OPTIONS", "/v2.1", "200", "unknown", "success", "service/compute"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    ck_assert_int_eq(truncate(test_tmp_path("events.jsonl"), 0), 0); /* the filter holds it open */
    for (size_t i = 0; i < n; i++) {
        char h[2048];
        snprintf(h, sizeof(h), "X-Test-Status: %s\n" IDENTITY "%s", cases[i].status, catalog);
        run(app, cases[i].method, cases[i].url, h, atoi(cases[i].status));
    }
    all = events(n);
    for (size_t i = 0; i < n; i++) {
        e = json_array_get(all, i);
        assert_at(e, "action", cases[i].action);
        assert_at(e, "outcome", cases[i].outcome);
        assert_at(e, "reason.reasonCode", cases[i].status);
        assert_at(e, "target.typeURI", cases[i].type);
        ck_assert_str_ne(at(e, "id"), first_id);
        if (i > 0)
            ck_assert_str_ne(at(e, "id"), at(json_array_get(all, i - 1), "id"));
    }
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

/* POST body to url through app, delivered as asked (piece 0: at once). */
static void post(csgi_app *app, const char *url, const char *body, int late, size_t piece,
                 int chunked, int want)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "POST", url), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
    if (chunked)
        csgi_test_request_set_chunked(request, 1);
    ck_assert_int_eq(
        csgi_test_request_set_body_delivery(
            request, late ? CSGI_TEST_DELIVERY_LATE : CSGI_TEST_DELIVERY_AT_ONCE, piece),
        0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_int_eq(csgi_test_response_code(response), want);
    if (want == 200) /* the application got the whole body */
        ck_assert_str_eq(csgi_test_response_body(response, NULL), *body ? body : "ok");
    csgi_test_response_free(response);
    csgi_test_request_free(request);
}

START_TEST(test_action_from_body)
{
    /* keystonemiddleware's POST .../action: update/<the body's first key>,
       create when the body is no JSON object with a key; the application
       still gets the whole body. The body at once, late in one piece, in
       pieces, a byte at a time, chunked. */
    static const struct {
        int late;
        size_t piece;
        int chunked;
    } ways[] = {{0, 0, 0}, {1, 0, 0}, {1, 5, 0}, {1, 1, 0}, {1, 3, 1}};
    static const struct {
        const char *body, *action;
    } cases[] = {{"{\"os-start\": null, \"b\": 1}", "update/os-start"},
                 {"{\"resize\": {\"flavorRef\": \"2\"}}", "update/resize"},
                 {"{}", "create"},
                 {"", "create"},
                 {"not json", "create"},
                 {"[1, 2]", "create"}};
    size_t n = sizeof(cases) / sizeof(cases[0]);
    csgi_app *app = mapped("");
    for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
        ck_assert_int_eq(truncate(test_tmp_path("events.jsonl"), 0), 0);
        for (size_t i = 0; i < n; i++)
            post(app, "/v2.1/servers/abc/action", cases[i].body, ways[w].late, ways[w].piece,
                 ways[w].chunked, 200);
        json_t *all = events(n);
        for (size_t i = 0; i < n; i++)
            assert_at(json_array_get(all, i), "action", cases[i].action);
        json_decref(all);
    }

    /* A body longer than what is kept (64 KiB): its action is not guessed
       from a part; the application still gets all of it. */
    static char big[70000 + 16];
    memset(big, 'x', sizeof(big) - 1);
    memcpy(big, "{\"big\": \"", 9);
    memcpy(big + sizeof(big) - 3, "\"}", 2);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(truncate(test_tmp_path("events.jsonl"), 0), 0);
    post(app, "/v2.1/servers/abc/action", big, 1, 4096, 0, 200);
    json_t *big_events = events(1);
    assert_at(json_array_get(big_events, 0), "action", "update");
    json_decref(big_events);
    csgi_app_free(app);

    /* An application that fails without reading: the body is unknown. */
    char lines[512];
    snprintf(lines, sizeof(lines), "file = %s", test_tmp_path("events.jsonl"));
    app = load_with("use = egg:keystonemiddleware#audit", lines, "egg:Test#fail");
    ck_assert_int_eq(truncate(test_tmp_path("events.jsonl"), 0), 0);
    post(app, "/servers/abc/action", "{\"os-stop\": null}", 1, 0, 0, 500);
    json_t *all = events(1);
    assert_at(json_array_get(all, 0), "action", "update");
    assert_at(json_array_get(all, 0), "outcome", "unknown");
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_no_identity)
{
    /* Without auth_token's headers or a catalog: keystonemiddleware's
       "unknown" everywhere, no agent, no request ids. */
    csgi_app *app = mapped("");
    run(app, "DELETE", "/v2.1/servers/x", NULL, 200);
    json_t *all = events(1), *e = json_array_get(all, 0);
    assert_at(e, "initiator.id", "unknown");
    assert_at(e, "initiator.name", "unknown");
    assert_at(e, "initiator.project_id", "unknown");
    assert_at(e, "initiator.credential.identity_status", "unknown");
    assert_at(e, "initiator.host.agent", NULL);
    assert_at(e, "initiator.request_id", NULL);
    assert_at(e, "target.typeURI", "unknown");
    assert_at(e, "target.id", "unknown");
    assert_at(e, "target.name", "unknown");
    assert_at(e, "action", "delete");
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_ignore_req_list)
{
    csgi_app *app = mapped("ignore_req_list = get, HEAD");
    run(app, "GET", "/v2.1/servers", NULL, 200);
    run(app, "HEAD", "/v2.1/servers", NULL, 200);
    run(app, "POST", "/v2.1/servers", NULL, 200);
    run(app, "GETX", "/v2.1/servers", NULL, 200);
    json_t *all = events(2);
    assert_at(json_array_get(all, 0), "action", "create");
    assert_at(json_array_get(all, 1), "action", "unknown");
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_hostile_headers)
{
    csgi_app *app = mapped("");
    /* Bytes the test client will not put in a header go in the environ as
       a lenient server would leave them. */
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/v2.1/servers/%0a%22x?q=%22"), 0);
    ck_assert_int_eq(
        csgi_test_request_set_environ(request, "HTTP_X_USER_NAME", "bob\"}\x01\x1b[31m\x7f\n"), 0);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "HTTP_USER_AGENT", "a\\b\t\xff\xfe"),
                     0);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "QUERY_STRING", "q=%22\x01\r\n"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-Service-Catalog", "[{\"broken"), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    const char *text = test_read_file(test_tmp_path("events.jsonl"));
    ck_assert_ptr_null(strchr(text, '\x01'));
    ck_assert_ptr_null(strchr(text, '\x1b'));
    json_t *all = events(1), *e = json_array_get(all, 0);
    assert_at(e, "initiator.name", "bob\"}\x01\x1b[31m\x7f\n");
    /* Not UTF-8: the odd bytes escaped rather than the event lost. */
    assert_at(e, "initiator.host.agent", "a\\x5cb\\x09\\xff\\xfe");
    assert_at(e, "requestPath", "/v2.1/servers/%0A%22x?q=%22\x01\r\n");
    assert_at(e, "target.typeURI", "unknown");
    json_decref(all);

    /* A last segment longer than any map key, and many segments. */
    ck_assert_int_eq(truncate(test_tmp_path("events.jsonl"), 0), 0);
    char url[4096] = "/v2.1/servers/", expected[4200] = "service/compute/servers";
    memset(url + strlen(url), 'x', 600);
    strcat(url, "/startup");
    run(app, "GET", url, "X-Service-Catalog: [{\"type\":\"compute\",\"endpoints\":[{}]}]", 200);
    memset(url, 0, sizeof(url));
    snprintf(expected, sizeof(expected), "service/compute");
    for (int i = 0; i < 299; i++) {
        strcat(url, "/servers");
        strcat(expected, "/servers");
    }
    strcat(url, "/");
    memset(url + strlen(url), 'y', 400);
    strcat(expected, "/server");
    run(app, "GET", url, "X-Service-Catalog: [{\"type\":\"compute\",\"endpoints\":[{}]}]", 200);
    all = events(2);
    assert_at(json_array_get(all, 0), "action", "read/startup");
    assert_at(json_array_get(all, 0), "target.typeURI", "service/compute/servers/server");
    assert_at(json_array_get(all, 1), "action", "read");
    const char *got = at(json_array_get(all, 1), "target.typeURI");
    ck_assert_msg(got && strcmp(got, expected) == 0, "the long typeURI differs (%zu bytes)",
                  got ? strlen(got) : 0);
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_token_mask)
{
    /* pycadf's mask_value: round(len / 8) at each end, half to even. */
    static const struct {
        const char *token, *shown;
    } cases[] = {{"abc", "xxxxxxxx"},
                 {"abcd", "xxxxxxxx"},
                 {"abcde", "a xxxxxxxx e"},
                 {"abcdefghijkl", "ab xxxxxxxx kl"},
                 {"abcdefghijklmnopqrst", "ab xxxxxxxx st"},
                 {"abcdefghijklmnopqrstuvwxyzABCDEF", "abcd xxxxxxxx CDEF"}};
    csgi_app *app = mapped("");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char headers[128];
        snprintf(headers, sizeof(headers), "X-Auth-Token: %s", cases[i].token);
        run(app, "GET", "/", headers, 200);
    }
    json_t *all = events(sizeof(cases) / sizeof(cases[0]));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_at(json_array_get(all, i), "initiator.credential.token", cases[i].shown);
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_failing_app)
{
    /* No answer at all: keystonemiddleware's outcome for an exception. */
    char lines[512];
    snprintf(lines, sizeof(lines), "file = %s", test_tmp_path("events.jsonl"));
    csgi_app *app = load_with("use = egg:keystonemiddleware#audit", lines, "egg:Test#fail");
    run(app, "POST", "/v2.1/servers", NULL, 500);
    json_t *all = events(1), *e = json_array_get(all, 0);
    assert_at(e, "outcome", "unknown");
    ck_assert_ptr_null(json_object_get(e, "reason"));
    assert_at(e, "action", "update"); /* no map: no path keywords */
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_error_stream)
{
    csgi_app *app = load_with("use = egg:keystonemiddleware#audit", "", "egg:Test#answer");
    csgi_test_response *response =
        smallmw_run(app, "PUT", "/things/1", NULL, "X-User-Id: u-9\nX-Test-Status: 403");
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    const char *line = NULL;
    for (size_t i = 0; i < csgi_test_response_log_count(response); i++)
        if (strstr(csgi_test_response_log_at(response, i), "audit: {"))
            line = strstr(csgi_test_response_log_at(response, i), "{");
    ck_assert_ptr_nonnull(line);
    json_t *e = json_loads(line, 0, NULL);
    ck_assert_ptr_nonnull(e);
    assert_at(e, "initiator.id", "u-9");
    assert_at(e, "outcome", "failure");
    assert_at(e, "reason.reasonCode", "403");
    json_decref(e);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

static void refused(const char *map_text, const char *lines, const char *want)
{
    char ini[2048], path[512];
    snprintf(path, sizeof(path), "%s", test_write_file("bad_map.conf", map_text));
    snprintf(ini, sizeof(ini),
             "[pipeline:main]\npipeline = audit app\n\n[filter:audit]\n"
             "use = egg:keystonemiddleware#audit\naudit_map_file = %s\n%s\n\n"
             "[app:app]\nuse = egg:Test#hello\n",
             path, lines);
    char message[512];
    /* want starting with ':' is at the map file's line: the path goes before it. */
    snprintf(message, sizeof(message), "%s%s", want[0] == ':' ? path : "", want);
    csgi_loader *l = loader();
    smallmw_load_fails(l, ini, "main", message);
    csgi_loader_free(l);
}

START_TEST(test_bad_map)
{
    refused("[path_keywords]\nservers = server\nflavors\n", "", ":3");
    refused("[DEFAULT]\ntarget_endpoint_type = compute\n\n[path_keyword]\nservers = server\n", "",
            ":4: [path_keyword] unknown section [path_keyword]");
    refused("[DEFAULT]\nendpoint_type = compute\n", "", ":2: [DEFAULT] endpoint_type: unknown key");
    refused("[path_keywords]\nservers = a\nservers = b\n", "", ":3");
    refused("", "frobnicate = 1", "frobnicate");
    refused("", "file =", "must name a file");
    char lines[256];
    snprintf(lines, sizeof(lines), "file = %s/no/such/dir/events", test_tmp_dir());
    refused("", lines, "cannot open");
    /* A missing map file. */
    char ini[1024];
    snprintf(ini, sizeof(ini),
             "[pipeline:main]\npipeline = audit app\n\n[filter:audit]\n"
             "use = egg:keystonemiddleware#audit\naudit_map_file = %s/absent.conf\n\n"
             "[app:app]\nuse = egg:Test#hello\n",
             test_tmp_dir());
    csgi_loader *l = loader();
    smallmw_load_fails(l, ini, "main", "absent.conf");
    csgi_loader_free(l);
}
END_TEST

START_TEST(test_behind_auth_token)
{
    json_t *token = json_pack(
        "{s:{s:{s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s, s:s, s:{s:s}}, s:[{s:s}], s:b, s:[{s:s, "
        "s:s, s:s, s:[{s:s, s:s, s:s}]}]}}}",
        "tokens", "tok-demo", "expires_at", "2099-01-01T00:00:00.000000Z", "user", "id", "u-demo",
        "name", "demo", "domain", "id", "default", "project", "id", "p-demo", "name", "demo",
        "domain", "id", "default", "roles", "name", "member", "is_admin_project", 0, "catalog",
        "type", "compute", "name", "nova", "id", "s-nova", "endpoints", "interface", "public",
        "url", "http://nova.example:8774/v2.1", "id", "e-pub");
    char *text = json_dumps(token, 0);
    char tokens[512], map_path[512], events_path[512];
    snprintf(tokens, sizeof(tokens), "%s", test_write_file("tokens.json", text));
    snprintf(map_path, sizeof(map_path), "%s", test_write_file("map.conf", map));
    snprintf(events_path, sizeof(events_path), "%s", test_tmp_path("events.jsonl"));
    free(text);
    json_decref(token);
    char ini[2048];
    snprintf(ini, sizeof(ini),
             "[pipeline:main]\npipeline = authtoken audit app\n\n"
             "[filter:authtoken]\npaste.filter_factory = keystonemiddleware.auth_token:"
             "filter_factory\ntokens_file = %s\ndelay_auth_decision = true\n\n"
             "[filter:audit]\npaste.filter_factory = keystonemiddleware.audit:filter_factory\n"
             "audit_map_file = %s\nfile = %s\n\n[app:app]\nuse = egg:Test#answer\n",
             tokens, map_path, events_path);
    csgi_loader *l = loader();
    csgi_app *app = smallmw_load(l, "stack.ini", ini, "main");
    csgi_loader_free(l);
    /* A real token; then forged identity headers without one. */
    run(app, "GET", "/v2.1/servers",
        "Host: nova.example:8774\nX-Auth-Token: tok-demo\nX-User-Id: u-admin", 200);
    run(app, "GET", "/v2.1/servers", "X-User-Id: u-admin\nX-Identity-Status: Confirmed", 200);
    json_t *all = events(2), *e = json_array_get(all, 0);
    assert_at(e, "initiator.id", "u-demo");
    assert_at(e, "initiator.name", "demo");
    assert_at(e, "initiator.project_id", "p-demo");
    assert_at(e, "initiator.credential.identity_status", "Confirmed");
    assert_at(e, "target.typeURI", "service/compute/servers");
    assert_at(e, "target.id", "e-pub");
    assert_at(e, "target.name", "nova");
    e = json_array_get(all, 1);
    assert_at(e, "initiator.id", "unknown");
    assert_at(e, "initiator.credential.identity_status", "Invalid");
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_real_sockets)
{
    app_server served;
    app_server_start(&served, mapped(""), NULL);
    char headers[1024];
    snprintf(headers, sizeof(headers), "X-User-Id: u-1\r\nX-Service-Catalog: %s\r\n", catalog);
    /* The body in every way a client may send it: the event is the same. */
    for (int split = 0; split < SPLIT_COUNT; split++) {
        int fd = client_connect(served.port);
        ck_assert_int_eq(client_send_post(fd, "/v2.1/servers/abc/action", headers,
                                          "{\"os-start\": null}", 18, split),
                         0);
        test_response response;
        ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
        ck_assert_int_eq(response.status, 200);
        ck_assert_str_eq(response.body, "{\"os-start\": null}");
        response_free(&response);
        close(fd);
    }
    app_server_stop(&served);
    json_t *all = events(SPLIT_COUNT);
    for (size_t i = 0; i < SPLIT_COUNT; i++) {
        json_t *e = json_array_get(all, i);
        assert_at(e, "action", "update/os-start");
        assert_at(e, "outcome", "success");
        assert_at(e, "initiator.id", "u-1");
        assert_at(e, "initiator.host.address", "127.0.0.1");
        /* Host "t" names no port: the catalog entry of target_endpoint_type. */
        assert_at(e, "target.typeURI", "service/compute/servers/server");
        assert_at(e, "target.name", "nova");
    }
    json_decref(all);
}
END_TEST

START_TEST(test_documented_map)
{
    /* The map docs/middleware.md shows, as written there. */
    char lines[1024], map_path[512];
    snprintf(map_path, sizeof(map_path), "%s/docs/api_audit_map.conf", test_testdata_dir());
    snprintf(lines, sizeof(lines), "audit_map_file = %s\nfile = %s", map_path,
             test_tmp_path("events.jsonl"));
    csgi_app *app = load_with("use = egg:keystonemiddleware#audit", lines, "egg:Test#answer");
    char headers[2048];
    snprintf(headers, sizeof(headers), "X-Service-Catalog: %s", catalog);
    run(app, "GET", "/v2.1/servers/abc", headers, 200);
    run(app, "GET", "/v2.1/os-hosts/h/startup", headers, 200);
    json_t *all = events(2);
    /* No port in the host: the catalog entry of target_endpoint_type. */
    assert_at(json_array_get(all, 0), "target.typeURI", "service/compute/servers/server");
    assert_at(json_array_get(all, 0), "target.name", "nova");
    assert_at(json_array_get(all, 1), "action", "read/startup");
    json_decref(all);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_out_of_memory)
{
    /* Every allocation of loading the map and of a request failing in
       turn: an error or a 500, never a crash or a leak (ASan build). */
    char lines[1024], map_path[512], ini[2048], uri[600];
    snprintf(map_path, sizeof(map_path), "%s", test_write_file("api_audit_map.conf", map));
    snprintf(lines, sizeof(lines), "audit_map_file = %s\nfile = %s", map_path,
             test_tmp_path("events.jsonl"));
    snprintf(ini, sizeof(ini),
             "[pipeline:main]\npipeline = audit app\n\n[filter:audit]\n"
             "use = egg:keystonemiddleware#audit\n%s\n\n[app:app]\nuse = egg:Test#answer\n",
             lines);
    snprintf(uri, sizeof(uri), "%s#main", test_write_file("oom.ini", ini));
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    for (long budget = 0; budget < 5000 && !succeeded; budget++) {
        test_alloc_fail_after(budget);
        csgi_loader *l = NULL;
        csgi_app *app = NULL;
        int rc = csgi_loader_new(&l);
        if (rc == 0)
            rc = csgi_loader_register_app(l, "egg:Test#answer", CSGI_FACTORY_APP, answer_factory);
        if (rc == 0)
            rc = csgi_loader_load_app(&app, l, uri, NULL);
        csgi_test_request *request = NULL;
        csgi_test_response *response = NULL;
        if (rc == 0)
            rc = csgi_test_request_new(&request, "GET", "/v2.1/servers/abc");
        if (rc == 0)
            rc = csgi_test_request_add_header(request, "X-Service-Catalog", catalog);
        if (rc == 0)
            rc = csgi_test_request_run(&response, request, app);
        ck_assert_msg(rc == 0 || rc == CSGI_ENOMEM, "budget %ld: %s", budget, csgi_err_name(rc));
        succeeded = rc == 0 && csgi_test_response_code(response) == 200;
        csgi_test_response_free(response);
        csgi_test_request_free(request);
        csgi_app_free(app);
        csgi_loader_free(l);
    }
    test_alloc_fail_never();
    ck_assert_int_eq(test_alloc_restore(), 0);
    ck_assert(succeeded);
    /* The last, whole run wrote its event (earlier ones may have, too). */
    const char *text = test_read_file(test_tmp_path("events.jsonl"));
    ck_assert_ptr_nonnull(strstr(text, "\"service/compute/servers/server\""));
}
END_TEST

static Suite *audit_suite(void)
{
    Suite *s = suite_create("audit");
    TCase *tc = tcase_create("audit");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_event_fields);
    tcase_add_test(tc, test_action_from_body);
    tcase_add_test(tc, test_no_identity);
    tcase_add_test(tc, test_ignore_req_list);
    tcase_add_test(tc, test_hostile_headers);
    tcase_add_test(tc, test_token_mask);
    tcase_add_test(tc, test_failing_app);
    tcase_add_test(tc, test_error_stream);
    tcase_add_test(tc, test_bad_map);
    tcase_add_test(tc, test_behind_auth_token);
    tcase_add_test(tc, test_documented_map);
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_real_sockets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(audit_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
