/*
 * The access log and the error log's levels, over real sockets: a
 * csgi_server (engine_harness.c's app_server) serving a small application,
 * its access log in a file of the test's temporary directory.
 *
 * Each test fails when its feature breaks: the combined line is checked
 * field by field with a regular expression, the custom tokens against what
 * the client sent and received, buffering by the access log's write
 * counter, reopening by what each file holds after a rename, escaping by a
 * request with control bytes, quotes and bytes above 0x7F.
 */
#include "engine_harness.h"
#include "test_deploy.h"
#include "test_files.h"

#include "common/log.h"
#include "gateway/server_private.h"
#include "http/access_log.h"

#include <check.h>
#include <csgi.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- The application ---------------------------------------------------------- */

/* An iterator body: /cut gives 4 pieces of 64 KiB then fails (the response
   declared 1 MiB); /never never gives a piece. */
typedef struct pieces {
    int left;
    char block[65536];
} pieces;

static int pieces_next(void *state, csgi_chunk *chunk)
{
    pieces *p = state;
    if (p->left-- <= 0)
        return CSGI_EIO;
    chunk->data = p->block;
    chunk->len = sizeof(p->block);
    return 1;
}

static void pieces_close(void *state)
{
    free(state);
}

static const csgi_body_type pieces_type = {"pieces", pieces_next, pieces_close};

static int never_next(void *state, csgi_chunk *chunk)
{
    (void)state;
    (void)chunk;
    return CSGI_EAGAIN;
}

static const csgi_body_type never_type = {"never", never_next, NULL};

/*
 * By path:
 *   /user     REMOTE_USER alice, test.request_id rid-42, X-Out: out-value,
 *             20 ms of work before answering "user"
 *   /newline* environ test.value "x<LF>y\"z"
 *   /cut      Content-Length 1048576, 256 KiB sent, then the body fails
 *   /never    never answers
 *   /levels   logs one line at each level (0 error .. 3 debug)
 *   /fail     the application fails (no body): 500
 *   else      "Hello World"
 */
static csgi_body *test_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    (void)state;
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    csgi_header headers[2] = {CSGI_HEADER("Content-Type", "text/plain"),
                              CSGI_HEADER("X-Out", "out-value")};
    if (strcmp(path, "/fail") == 0)
        return NULL;
    if (strcmp(path, "/levels") == 0) {
        for (int level = 0; level <= 3; level++)
            csgi_environ_log_at(environ, level, "line at level %d", level);
    }
    if (strcmp(path, "/user") == 0) {
        if (csgi_environ_set(environ, "REMOTE_USER", "alice") != 0 ||
            csgi_environ_set(environ, "test.request_id", "rid-42") != 0)
            return NULL;
        usleep(20000);
        if (csgi_start_response_call(start_response, "200 OK", headers, 2, NULL) != 0)
            return NULL;
        return csgi_body_static(environ, "user", 4);
    }
    if (strncmp(path, "/newline", 8) == 0 &&
        csgi_environ_set(environ, "test.value", "x\ny\"z") != 0)
        return NULL;
    if (strcmp(path, "/cut") == 0) {
        csgi_header cut_headers[2] = {CSGI_HEADER("Content-Type", "text/plain"),
                                      CSGI_HEADER("Content-Length", "1048576")};
        pieces *p = calloc(1, sizeof(*p));
        if (!p)
            return NULL;
        p->left = 4;
        memset(p->block, 'c', sizeof(p->block));
        if (csgi_start_response_call(start_response, "200 OK", cut_headers, 2, NULL) != 0) {
            free(p);
            return NULL;
        }
        return csgi_body_new(environ, &pieces_type, p);
    }
    if (strcmp(path, "/never") == 0) {
        if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
            return NULL;
        return csgi_body_new(environ, &never_type, NULL);
    }
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "Hello World", 11);
}

static const csgi_app_type test_type = {"test", test_call, NULL};

static csgi_app *test_app(void)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &test_type, NULL), 0);
    return app;
}

/* ---- The error log, captured ------------------------------------------------------ */

static pthread_mutex_t captured_lock = PTHREAD_MUTEX_INITIALIZER;
static char captured[64][512];
static int captured_levels[64];
static int captured_count;

static void capture_log(int level, const char *message, void *userdata)
{
    (void)userdata;
    pthread_mutex_lock(&captured_lock);
    if (captured_count < 64) {
        snprintf(captured[captured_count], sizeof(captured[0]), "%s", message);
        captured_levels[captured_count] = level;
        captured_count++;
    }
    pthread_mutex_unlock(&captured_lock);
}

/* The level of the first captured line holding text, or -1. */
static int captured_level(const char *text)
{
    int level = -1;
    pthread_mutex_lock(&captured_lock);
    for (int i = 0; i < captured_count && level < 0; i++)
        if (strstr(captured[i], text))
            level = captured_levels[i];
    pthread_mutex_unlock(&captured_lock);
    return level;
}

/* ---- Helpers ------------------------------------------------------------------------ */

/* Options with the access log in the file log_path(): logs captured. */
static csgi_server_options log_options(void)
{
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log = capture_log;
    options.access_log = test_tmp_path("access.log");
    captured_count = 0;
    return options;
}

static const char *log_path(void)
{
    return test_tmp_path("access.log");
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        n++;
    return n;
}

/* Line index (from 0) of text, without its newline, into out. */
static const char *nth_line(const char *text, size_t index, char *out, size_t cap)
{
    const char *p = text;
    for (size_t i = 0; i < index && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    ck_assert_ptr_nonnull(p);
    const char *end = strchr(p, '\n');
    ck_assert_ptr_nonnull(end);
    size_t len = (size_t)(end - p) < cap - 1 ? (size_t)(end - p) : cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    return out;
}

/* Send request on a new connection and read until the server closes;
   returns the bytes received, the response in out (when not NULL). */
static size_t exchange(int port, const char *request, size_t request_len, char *out, size_t cap)
{
    static char scratch[1 << 20];
    if (!out) {
        out = scratch;
        cap = sizeof(scratch);
    }
    int fd = client_connect(port);
    ck_assert_int_eq(client_send(fd, request, request_len), 0);
    int eof = 0;
    size_t n = client_read(fd, out, cap, 5000, NULL, &eof);
    ck_assert_msg(eof, "the server did not close: %s", out);
    close(fd);
    return n;
}

static size_t get(int port, const char *request)
{
    return exchange(port, request, strlen(request), NULL, 0);
}

/* The line must match the extended regular expression pattern. */
static void assert_matches(const char *line, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, line, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "'%s' does not match '%s'", line, pattern);
}

/* Two long texts are equal; else the message shows where they differ. */
static void assert_same_text(const char *got, const char *expected)
{
    size_t at = 0;
    while (got[at] && got[at] == expected[at])
        at++;
    size_t from = at > 60 ? at - 60 : 0;
    ck_assert_msg(got[at] == expected[at], "differ at byte %zu: '%.120s' and '%.120s'", at,
                  got + from, expected + from);
}

/* ---- The log object itself ------------------------------------------------------- */

/* A log of the given format into the file name (in the test's directory). */
static csgi_access_log *unit_log(const char *name, const char *format)
{
    csgi_access_log__config config = {
        .destination = test_tmp_path(name),
        .format = format,
        .threads = 1,
        .error_log = capture_log,
    };
    csgi_access_log *log = NULL;
    char why[256];
    ck_assert_int_eq(csgi_access_log__new(&log, &config, why, sizeof(why)), 0);
    return log;
}

static void entry_for(csgi_access_log__entry *entry, const struct sockaddr *peer,
                      const csgi_http__head *head, const char *line, size_t line_len)
{
    memset(entry, 0, sizeof(*entry));
    entry->peer = peer;
    entry->head = head;
    entry->line = line;
    entry->line_len = line_len;
    entry->status = 200;
    entry->body_bytes = 1234;
    entry->start.tv_sec = 1700000000;
}

/* Every byte value, at every place of a word, with words around it: the
   escaping is the byte-by-byte rule, whatever path the bytes take. */
START_TEST(every_byte_escaped_as_the_rule_says)
{
    csgi_access_log *log = unit_log("bytes.log", "%r");
    char expected[1 << 16];
    size_t expected_len = 0;
    for (int byte = 0; byte < 256; byte++) {
        for (size_t len = 1; len <= 24; len += 3) {
            char line[32];
            memset(line, 'a', sizeof(line));
            size_t at = (size_t)byte % len;
            line[at] = (char)byte;
            csgi_access_log__entry entry;
            entry_for(&entry, NULL, NULL, line, len);
            csgi_access_log__write(log, &entry);
            for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)line[i];
                if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
                    expected_len += (size_t)sprintf(expected + expected_len, "\\x%02X", c);
                else
                    expected[expected_len++] = (char)c;
            }
            expected[expected_len++] = '\n';
        }
    }
    csgi_access_log__free(log);
    expected[expected_len] = '\0';
    assert_same_text(test_read_file(test_tmp_path("bytes.log")), expected);
}
END_TEST

/* The combined format has a writer of its own: it must write what its
   directives written out would, for every kind of client and request. */
START_TEST(combined_writer_equals_its_directives)
{
    csgi_access_log *fast = unit_log("fast.log", "combined");
    csgi_access_log *tokens =
        unit_log("tokens.log", "%a %l %u %t \"%r\" %s %b \"%{referer}i\" \"%{USER-AGENT}i\"");
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct sockaddr unix_peer = {.sa_family = AF_UNIX};
    inet_pton(AF_INET, "10.0.255.7", &in4.sin_addr);
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
    static char long_value[20000];
    memset(long_value, 'v', sizeof(long_value) - 1);
    csgi_http__header headers[] = {
        {"Referer", 7, "http://r/\"quoted\"", 17},
        {"user-agent", 10, "agent\x1b[1m", 9},
        {"REFERER", 7, "second", 6},
        {"X-Long", 6, long_value, sizeof(long_value) - 1},
    };
    csgi_http__head head;
    memset(&head, 0, sizeof(head));
    head.method = "GET /x HTTP/1.1";
    head.method_len = 3;
    head.headers = headers;
    const struct sockaddr *peers[] = {(struct sockaddr *)&in4, (struct sockaddr *)&in6, &unix_peer,
                                      NULL};
    const struct {
        size_t header_count;
        const char *line;
        size_t line_len;
        int status;
        uint64_t bytes;
    } requests[] = {
        {0, "GET /x HTTP/1.1", 15, 200, 11},
        {2, "GET /x HTTP/1.1", 15, 404, 0},               /* both fields, escaped; no body: "-" */
        {3, "GET /x HTTP/1.1", 15, 200, 12345},           /* Referer twice: joined */
        {0, NULL, 0, 400, 16},                            /* refused before a line came */
        {0, long_value, sizeof(long_value) - 1, 414, 17}, /* longer than a line: cut */
        {4, long_value, 8000, 200, 1},                    /* the long field is not logged */
        {0, "GET /\x7f\xff HTTP/1.1", 16, 1000, 99},      /* odd status, bytes to escape */
    };
    for (size_t p = 0; p < sizeof(peers) / sizeof(peers[0]); p++) {
        for (size_t r = 0; r < sizeof(requests) / sizeof(requests[0]); r++) {
            head.header_count = requests[r].header_count;
            csgi_access_log__entry entry;
            entry_for(&entry, peers[p], r == 3 ? NULL : &head, requests[r].line,
                      requests[r].line_len);
            entry.status = requests[r].status;
            entry.body_bytes = requests[r].bytes;
            entry.start.tv_sec += (time_t)r;
            csgi_access_log__write(fast, &entry);
            csgi_access_log__write(tokens, &entry);
        }
    }
    csgi_access_log__free(fast);
    csgi_access_log__free(tokens);
    char *fast_text = strdup(test_read_file(test_tmp_path("fast.log")));
    const char *tokens_text = test_read_file(test_tmp_path("tokens.log"));
    ck_assert_uint_eq(count_lines(fast_text), 28);
    assert_same_text(fast_text, tokens_text);
    ck_assert_ptr_nonnull(strstr(fast_text, "\n10.0.255.7 - - ["));
    ck_assert_ptr_nonnull(strstr(fast_text, "\n2001:db8::1 - - ["));
    ck_assert_ptr_nonnull(strstr(fast_text, "\nunix: - - ["));
    ck_assert_ptr_nonnull(
        strstr(fast_text, "\"http://r/\\x22quoted\\x22, second\" \"agent\\x1B[1m\"\n"));
    ck_assert_ptr_nonnull(strstr(fast_text, "\" 404 - \"http://r/\\x22quoted\\x22\""));
    ck_assert_ptr_nonnull(strstr(fast_text, "\"GET /\\x7F\\xFF HTTP/1.1\" 1000 99 \"-\" \"-\"\n"));
    /* every line shorter than the limit, the cut one included */
    for (const char *line = fast_text; *line;) {
        const char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_uint_lt((size_t)(nl - line), CSGI_ACCESS_LOG__LINE_MAX);
        line = nl + 1;
    }
    free(fast_text);
}
END_TEST

/* Standard error and syslog take lines too; a write that fails is said
   once (not once a line), and serving goes on. */
START_TEST(other_destinations)
{
    csgi_access_log__entry entry;
    entry_for(&entry, NULL, NULL, "GET / HTTP/1.1", 14);
    csgi_access_log__config config = {
        .format = "%r %>s", .threads = 1, .buffer = 1, .error_log = capture_log};
    char why[256];
    csgi_access_log *log = NULL;

    const char *path = test_tmp_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    dup2(fileno(f), 2);
    config.destination = "-";
    ck_assert_int_eq(csgi_access_log__new(&log, &config, why, sizeof(why)), 0);
    csgi_access_log__write(log, &entry);
    csgi_access_log__free(log);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    ck_assert_str_eq(test_read_file(path), "GET / HTTP/1.1 200\n");

    config.destination = "syslog:local0"; /* whether a syslog daemon listens or not */
    ck_assert_int_eq(csgi_access_log__new(&log, &config, why, sizeof(why)), 0);
    for (int i = 0; i < 3; i++)
        csgi_access_log__write(log, &entry);
    ck_assert_uint_eq(csgi_access_log__writes(log), 3);
    csgi_access_log__free(log);

    captured_count = 0;
    config.destination = "/dev/full";
    ck_assert_int_eq(csgi_access_log__new(&log, &config, why, sizeof(why)), 0);
    for (int i = 0; i < 3; i++)
        csgi_access_log__write(log, &entry);
    csgi_access_log__free(log);
    ck_assert_int_eq(captured_level("access log /dev/full: write failed, lines lost: No space "
                                    "left on device"),
                     CSGI_LOG_ERROR);
    ck_assert_int_eq(captured_count, 1);
}
END_TEST

/* A file that cannot be opened again (its directory went): the lines keep
   going to the old one, and the error says so. */
START_TEST(failed_reopen_keeps_the_old_file)
{
    char dir[4200], moved[4200], path[4300];
    snprintf(dir, sizeof(dir), "%s", test_tmp_path("logs"));
    snprintf(moved, sizeof(moved), "%s", test_tmp_path("logs.old"));
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/access.log", dir);
    csgi_access_log__config config = {
        .destination = path, .format = "%r", .threads = 1, .error_log = capture_log};
    csgi_access_log *log = NULL;
    char why[256];
    ck_assert_int_eq(csgi_access_log__new(&log, &config, why, sizeof(why)), 0);
    csgi_access_log__entry entry;
    entry_for(&entry, NULL, NULL, "first", 5);
    csgi_access_log__write(log, &entry);
    ck_assert_int_eq(rename(dir, moved), 0);
    captured_count = 0;
    csgi_access_log__reopen(log);
    entry_for(&entry, NULL, NULL, "second", 6);
    csgi_access_log__write(log, &entry);
    csgi_access_log__free(log);
    ck_assert_int_ge(captured_level("cannot reopen, still writing to the old file"),
                     CSGI_LOG_ERROR);
    snprintf(path, sizeof(path), "%s/access.log", moved);
    ck_assert_str_eq(test_read_file(path), "first\nsecond\n");
}
END_TEST

/* A log other processes write to as well (workers): each write(2) is
   whole lines of at most PIPE_BUF bytes, a longer line alone; a log of
   this process alone writes its buffer at once. */
START_TEST(shared_log_writes_whole_lines_in_pieces)
{
    static char line[6000];
    memset(line, 'a', sizeof(line));
    for (int shared = 0; shared <= 1; shared++) {
        char name[32];
        snprintf(name, sizeof(name), "pieces%d.log", shared);
        csgi_access_log__config config = {.destination = test_tmp_path(name),
                                          .format = "%r",
                                          .threads = 1,
                                          .shared = shared,
                                          .error_log = capture_log};
        csgi_access_log *log = NULL;
        char why[256];
        ck_assert_int_eq(csgi_access_log__new(&log, &config, why, sizeof(why)), 0);
        csgi_access_log__entry entry;
        entry_for(&entry, NULL, NULL, line, 999); /* 1000 bytes with the newline */
        for (int i = 0; i < 20; i++)
            csgi_access_log__write(log, &entry);
        csgi_access_log__flush(log);
        /* 4 lines (4000 bytes) a write when shared: 5 writes. */
        ck_assert_uint_eq(csgi_access_log__writes(log), shared ? 5 : 1);
        entry_for(&entry, NULL, NULL, line, 999);
        csgi_access_log__write(log, &entry);
        entry_for(&entry, NULL, NULL, line, 5999); /* longer than PIPE_BUF */
        csgi_access_log__write(log, &entry);
        entry_for(&entry, NULL, NULL, line, 999);
        csgi_access_log__write(log, &entry);
        csgi_access_log__flush(log);
        ck_assert_uint_eq(csgi_access_log__writes(log), shared ? 5 + 3 : 2);
        csgi_access_log__free(log);
        const char *text = test_read_file(test_tmp_path(name));
        ck_assert_uint_eq(strlen(text), 22 * 1000 + 6000);
        ck_assert_uint_eq(count_lines(text), 23);
    }
}
END_TEST

/* ---- The combined format ------------------------------------------------------------ */

START_TEST(combined_line_field_by_field)
{
    csgi_server_options options = log_options();
    app_server server;
    /* gettimeofday, the server's clock: time() reads a coarser one, which
       can still say the second before. */
    struct timeval before, after;
    gettimeofday(&before, NULL);
    app_server_start(&server, test_app(), &options);
    get(server.port, "GET /path?q=1&r=%41 HTTP/1.1\r\nHost: t\r\nReferer: http://r.example/x\r\n"
                     "User-Agent: agent/1.0 (test)\r\nConnection: close\r\n\r\n");
    get(server.port, "HEAD /head HTTP/1.0\r\n\r\n");
    app_server_stop(&server);
    gettimeofday(&after, NULL);

    const char *text = test_read_file(log_path());
    ck_assert_uint_eq(count_lines(text), 2);
    char line[2048];
    nth_line(text, 0, line, sizeof(line));
    /* %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" */
    assert_matches(line, "^127\\.0\\.0\\.1 - - "
                         "\\[[0-3][0-9]/[A-Z][a-z][a-z]/[0-9]{4}:[0-2][0-9]:[0-5][0-9]:[0-6][0-9] "
                         "[-+][0-9]{4}\\] "
                         "\"GET /path\\?q=1&r=%41 HTTP/1\\.1\" 200 11 "
                         "\"http://r\\.example/x\" \"agent/1\\.0 \\(test\\)\"$");
    /* The time is the request's, in local time as Apache writes it. */
    const char *stamp = strchr(line, '[');
    int found = 0;
    for (time_t second = before.tv_sec; second <= after.tv_sec && !found; second++) {
        char expected[64];
        struct tm tm;
        strftime(expected, sizeof(expected), "[%d/%b/%Y:%H:%M:%S %z]", localtime_r(&second, &tm));
        found = strncmp(stamp, expected, strlen(expected)) == 0;
    }
    ck_assert_msg(found, "%s is not between %ld and %ld", stamp, (long)before.tv_sec,
                  (long)after.tv_sec);
    /* No body for HEAD: "-"; missing headers: "-". */
    nth_line(text, 1, line, sizeof(line));
    assert_matches(line, "^127\\.0\\.0\\.1 - - \\[[^]]+\\] \"HEAD /head HTTP/1\\.0\" 200 - "
                         "\"-\" \"-\"$");
}
END_TEST

/* The default format is "combined", and "common" is its first part. */
START_TEST(named_formats)
{
    csgi_server_options options = log_options();
    options.access_log_format = "common";
    app_server server;
    app_server_start(&server, test_app(), &options);
    get(server.port, "GET /c HTTP/1.1\r\nHost: t\r\nUser-Agent: u\r\nConnection: close\r\n\r\n");
    app_server_stop(&server);
    char line[2048];
    nth_line(test_read_file(log_path()), 0, line, sizeof(line));
    assert_matches(line, "^127\\.0\\.0\\.1 - - \\[[^]]+\\] \"GET /c HTTP/1\\.1\" 200 11$");
}
END_TEST

/* ---- Custom formats ------------------------------------------------------------------- */

START_TEST(custom_format_tokens)
{
    csgi_server_options options = log_options();
    options.access_log_format = "%a|%l|%u|%m|%U|%q|%H|%s|%>s|%b|%B|%O|%D|%{us}T|%{ms}T|%T|"
                                "%{X-In}i|%{x-out}o|%{Content-Type}o|%{test.request_id}e|"
                                "%{no.such}e|%P|%%|tab\there";
    app_server server;
    app_server_start(&server, test_app(), &options);
    char response[8192];
    const char *request = "POST /user?a=b HTTP/1.1\r\nHost: t\r\nX-In: one\r\nx-in: two\r\n"
                          "Content-Length: 0\r\nConnection: close\r\n\r\n";
    size_t received = exchange(server.port, request, strlen(request), response, sizeof(response));
    app_server_stop(&server);
    ck_assert_ptr_nonnull(strstr(response, "\r\n\r\nuser"));

    char line[2048], expected[512];
    nth_line(test_read_file(log_path()), 0, line, sizeof(line));
    char *field[32];
    int n = 0;
    for (char *p = line; n < 32;) {
        field[n++] = p;
        p = strchr(p, '|');
        if (!p)
            break;
        *p++ = '\0';
    }
    ck_assert_int_eq(n, 24);
    ck_assert_str_eq(field[0], "127.0.0.1");
    ck_assert_str_eq(field[1], "-");
    ck_assert_str_eq(field[2], "alice");
    ck_assert_str_eq(field[3], "POST");
    ck_assert_str_eq(field[4], "/user");
    ck_assert_str_eq(field[5], "?a=b");
    ck_assert_str_eq(field[6], "HTTP/1.1");
    ck_assert_str_eq(field[7], "200");
    ck_assert_str_eq(field[8], "200");
    ck_assert_str_eq(field[9], "4");
    ck_assert_str_eq(field[10], "4");
    /* %O: every byte the client received */
    snprintf(expected, sizeof(expected), "%zu", received);
    ck_assert_str_eq(field[11], expected);
    /* the application took 20 ms */
    long us = atol(field[12]);
    ck_assert_int_ge(us, 20000);
    ck_assert_int_lt(us, 5000000);
    ck_assert_str_eq(field[13], field[12]);
    ck_assert_int_eq(atol(field[14]), us / 1000);
    ck_assert_str_eq(field[15], "0");
    ck_assert_str_eq(field[16], "one, two"); /* a repeated field, joined */
    ck_assert_str_eq(field[17], "out-value");
    ck_assert_str_eq(field[18], "text/plain");
    ck_assert_str_eq(field[19], "rid-42");
    ck_assert_str_eq(field[20], "-");
    snprintf(expected, sizeof(expected), "%ld", (long)getpid());
    ck_assert_str_eq(field[21], expected);
    ck_assert_str_eq(field[22], "%");
    ck_assert_str_eq(field[23], "tab\there");
}
END_TEST

START_TEST(bad_formats_refused)
{
    static const struct {
        const char *format, *why;
    } bad[] = {
        {"%h %Z", "unknown directive %Z at byte 3"},
        {"%{Referer", "%{ without its } at byte 0"},
        {"%{}i", "empty %{} at byte 0"},
        {"%{X}y", "%{X}y at byte 0: %{...} takes i (request header), o"},
        {"%{minutes}T", "%{minutes}T at byte 0"},
        {"%h %", "a lone % at the end"},
        {"line\nbreak", "control byte 0x0a at byte 4"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char why[256] = "";
        ck_assert_int_eq(csgi_access_log__check_format(bad[i].format, why, sizeof(why)),
                         CSGI_EINVAL);
        ck_assert_msg(strstr(why, bad[i].why), "%s: %s", bad[i].format, why);

        csgi_server_options options = log_options();
        options.access_log_format = bad[i].format;
        csgi_server *server = NULL;
        ck_assert_int_eq(csgi_server_new(&server, test_app(), &options, NULL), CSGI_EINVAL);
        ck_assert_ptr_null(server);
        ck_assert_int_eq(captured_level(bad[i].why), CSGI_LOG_ERROR);
    }
    char why[256];
    ck_assert_int_eq(csgi_access_log__check_format("combined", why, sizeof(why)), 0);
    ck_assert_int_eq(csgi_access_log__check_format(NULL, why, sizeof(why)), 0);
    ck_assert_int_eq(csgi_access_log__check_destination("syslog:local3", why, sizeof(why)), 0);
    ck_assert_int_eq(csgi_access_log__check_destination("syslog:nope", why, sizeof(why)),
                     CSGI_EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "'nope' is not a syslog facility"));

    /* A file that cannot be opened: the error says why. */
    csgi_server_options options = log_options();
    options.access_log = "/nonexistent-csgi-dir/access.log";
    csgi_server *server = NULL;
    ck_assert_int_eq(csgi_server_new(&server, test_app(), &options, NULL), CSGI_ENOTFOUND);
    ck_assert_int_eq(captured_level("cannot open '/nonexistent-csgi-dir/access.log': No such file"),
                     CSGI_LOG_ERROR);
}
END_TEST

/* ---- Files: appended, reopened ------------------------------------------------------- */

static void get_path(int port, const char *path)
{
    char request[256];
    snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             path);
    get(port, request);
}

START_TEST(file_appended_and_reopened_after_rename)
{
    const char *path = log_path();
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("an older line\n", f); /* appended to, not truncated */
    fclose(f);
    char rotated[4200];
    snprintf(rotated, sizeof(rotated), "%s.1", path);

    csgi_server_options options = log_options();
    app_server server;
    app_server_start(&server, test_app(), &options);
    get_path(server.port, "/one");
    get_path(server.port, "/two");
    ck_assert_int_eq(rename(path, rotated), 0);
    csgi_server_reopen_logs(server.server);
    get_path(server.port, "/three");
    get_path(server.port, "/four");
    app_server_stop(&server);

    const char *old = test_read_file(rotated);
    ck_assert_uint_eq(count_lines(old), 3);
    ck_assert_ptr_nonnull(strstr(old, "an older line\n"));
    ck_assert_ptr_nonnull(strstr(old, "\"GET /one HTTP/1.1\""));
    ck_assert_ptr_nonnull(strstr(old, "\"GET /two HTTP/1.1\""));
    const char *now = test_read_file(path);
    ck_assert_uint_eq(count_lines(now), 2);
    ck_assert_ptr_nonnull(strstr(now, "\"GET /three HTTP/1.1\""));
    ck_assert_ptr_nonnull(strstr(now, "\"GET /four HTTP/1.1\""));
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644 & ~(unsigned)umask(022));
}
END_TEST

/* SIGUSR1 under csgi_server_run_until_signal reopens; SIGTERM stops. */
static void *run_until_signal(void *arg)
{
    csgi_server_run_until_signal(arg);
    return NULL;
}

static int handler_installed(int signal_number)
{
    struct sigaction current;
    return sigaction(signal_number, NULL, &current) == 0 && current.sa_handler != SIG_DFL &&
           current.sa_handler != SIG_IGN;
}

START_TEST(sigusr1_reopens)
{
    const char *path = log_path();
    char rotated[4200];
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    csgi_server_options options = log_options();
    options.verbose = 1;
    csgi_server *server = NULL;
    ck_assert_int_eq(csgi_server_new(&server, test_app(), &options, NULL), 0);
    ck_assert_int_eq(csgi_server_listen(server, "127.0.0.1:0"), 0);
    int port = csgi_server_port(server, 0);
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, run_until_signal, server), 0);
    long deadline = now_ms() + 5000;
    while (!handler_installed(SIGUSR1) && now_ms() < deadline)
        usleep(1000);
    ck_assert(handler_installed(SIGUSR1));

    get_path(port, "/before");
    ck_assert_int_eq(rename(path, rotated), 0);
    kill(getpid(), SIGUSR1);
    struct stat st;
    while (stat(path, &st) != 0 && now_ms() < deadline)
        usleep(1000);
    ck_assert_int_eq(stat(path, &st), 0); /* reopened at the signal, not at the next line */
    get_path(port, "/after");
    kill(getpid(), SIGTERM);
    pthread_join(thread, NULL);
    csgi_server_free(server);

    ck_assert_int_ge(captured_level("reopening the log files"), CSGI_LOG_INFO);
    const char *old = test_read_file(rotated);
    ck_assert_uint_eq(count_lines(old), 1);
    ck_assert_ptr_nonnull(strstr(old, "/before"));
    const char *now = test_read_file(path);
    ck_assert_uint_eq(count_lines(now), 1);
    ck_assert_ptr_nonnull(strstr(now, "/after"));
}
END_TEST

/* ---- Buffering ---------------------------------------------------------------------- */

/* Lines wait in the buffer: none is written before the server stops, and
   then all of them in one write. */
START_TEST(buffered_until_stop)
{
    csgi_server_options options = log_options();
    options.access_log_flush_ms = 60000;
    app_server server;
    app_server_start(&server, test_app(), &options);
    for (int i = 0; i < 100; i++)
        get_path(server.port, "/buffered");
    usleep(50000);
    ck_assert_uint_eq(count_lines(test_read_file(log_path())), 0);
    csgi_access_log *log = csgi_server__access_log(server.server);
    ck_assert_uint_eq(csgi_access_log__writes(log), 0);
    csgi_server_stop(server.server, 1000);
    pthread_join(server.thread, NULL);
    ck_assert_uint_eq(csgi_access_log__writes(log), 1);
    ck_assert_uint_eq(count_lines(test_read_file(log_path())), 100);
    csgi_server_free(server.server);
}
END_TEST

/* A small buffer: a write each time it fills, far fewer than the lines. */
START_TEST(written_when_the_buffer_fills)
{
    csgi_server_options options = log_options();
    options.access_log_flush_ms = 60000;
    options.access_log_buffer = 1000;
    options.access_log_format = "%r %>s %b"; /* "GET /filling HTTP/1.1 200 11\n": 29 bytes */
    app_server server;
    app_server_start(&server, test_app(), &options);
    for (int i = 0; i < 100; i++)
        get_path(server.port, "/filling");
    csgi_access_log *log = csgi_server__access_log(server.server);
    /* 2900 bytes: written at 35 lines (1015 bytes) and 70, the rest still
       buffered */
    ck_assert_uint_eq(csgi_access_log__writes(log), 2);
    ck_assert_uint_eq(count_lines(test_read_file(log_path())), 70);
    app_server_stop(&server);
    ck_assert_uint_eq(count_lines(test_read_file(log_path())), 100);
}
END_TEST

/* access_log_buffer 1: a write per line (the counter counts writes). */
START_TEST(unbuffered_writes_each_line)
{
    csgi_server_options options = log_options();
    options.access_log_buffer = 1;
    app_server server;
    app_server_start(&server, test_app(), &options);
    for (int i = 0; i < 20; i++)
        get_path(server.port, "/each");
    ck_assert_uint_eq(count_lines(test_read_file(log_path())), 20);
    ck_assert_uint_eq(csgi_access_log__writes(csgi_server__access_log(server.server)), 20);
    app_server_stop(&server);
}
END_TEST

/* The flush timer writes a line within access_log_flush_ms, idle or not. */
START_TEST(flush_timer)
{
    csgi_server_options options = log_options();
    options.access_log_flush_ms = 50;
    app_server server;
    app_server_start(&server, test_app(), &options);
    get_path(server.port, "/timer");
    long start = now_ms();
    while (count_lines(test_read_file(log_path())) == 0 && now_ms() - start < 3000)
        usleep(5000);
    ck_assert_uint_eq(count_lines(test_read_file(log_path())), 1);
    ck_assert_int_lt(now_ms() - start, 1000);
    get_path(server.port, "/timer");
    start = now_ms();
    while (count_lines(test_read_file(log_path())) == 1 && now_ms() - start < 3000)
        usleep(5000);
    ck_assert_uint_eq(count_lines(test_read_file(log_path())), 2);
    app_server_stop(&server);
}
END_TEST

/* Several loops write whole lines into one buffer. */
typedef struct client_job {
    int port;
    int requests;
} client_job;

static void *client_run(void *arg)
{
    client_job *job = arg;
    for (int i = 0; i < job->requests; i++)
        get_path(job->port,
                 "/threads/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    return NULL;
}

START_TEST(threads_write_whole_lines)
{
    csgi_server_options options = log_options();
    options.threads = 4;
    options.access_log_buffer = 4096;
    app_server server;
    app_server_start(&server, test_app(), &options);
    pthread_t threads[4];
    client_job job = {server.port, 100};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, client_run, &job), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    app_server_stop(&server);
    const char *text = test_read_file(log_path());
    ck_assert_uint_eq(count_lines(text), 400);
    char line[2048];
    for (size_t i = 0; i < 400; i++)
        assert_matches(nth_line(text, i, line, sizeof(line)),
                       "^127\\.0\\.0\\.1 - - \\[[^]]+\\] \"GET /threads/a{61} HTTP/1\\.1\" 200 11 "
                       "\"-\" \"-\"$");
}
END_TEST

/* ---- Escaping --------------------------------------------------------------------------- */

START_TEST(request_bytes_escaped)
{
    csgi_server_options options = log_options();
    options.access_log_format = "%h \"%r\" %>s \"%{User-Agent}i\" \"%{test.value}e\"";
    app_server server;
    app_server_start(&server, test_app(), &options);
    /* A tab, a quote, a backslash and obs-text in a header value (all
       allowed there), a percent-encoded CR LF in the target (stays as it
       is), an environ value with a newline. */
    static const char valid[] =
        "GET /newline/%0d%0a%22 HTTP/1.1\r\nHost: t\r\n"
        "User-Agent: a\tb\"c\\d\xff\xc3\xa9 \" 1.2.3.4 - - [forged]\r\nConnection: close\r\n\r\n";
    get(server.port, valid);
    /* The engine refuses these, and logs them as they came: ESC and a
       quote in the target, a bare CR in the request line. */
    static const char escape[] = "GET /\x1b[31mred\"x HTTP/1.1\r\nHost: t\r\n\r\n";
    get(server.port, escape);
    static const char bare_cr[] = "GET /a\rforged 200 HTTP/1.1\r\nHost: t\r\n\r\n";
    get(server.port, bare_cr);
    app_server_stop(&server);

    const char *text = test_read_file(log_path());
    ck_assert_uint_eq(count_lines(text), 3);
    char line[2048];
    ck_assert_str_eq(nth_line(text, 0, line, sizeof(line)),
                     "127.0.0.1 \"GET /newline/%0d%0a%22 HTTP/1.1\" 200 "
                     "\"a\\x09b\\x22c\\x5Cd\\xFF\\xC3\\xA9 \\x22 1.2.3.4 - - [forged]\" "
                     "\"x\\x0Ay\\x22z\"");
    ck_assert_str_eq(nth_line(text, 1, line, sizeof(line)),
                     "127.0.0.1 \"GET /\\x1B[31mred\\x22x HTTP/1.1\" 400 \"-\" \"-\"");
    ck_assert_str_eq(nth_line(text, 2, line, sizeof(line)), "127.0.0.1 \"GET /a\" 400 \"-\" \"-\"");
}
END_TEST

/* ---- Requests the engine refuses, responses cut short -------------------------------------- */

START_TEST(refused_requests_logged)
{
    csgi_server_options options = log_options();
    options.max_body = 1000;
    options.max_request_line = 100;
    options.max_header_line = 100;
    options.header_timeout_ms = 300;
    options.access_log_format = "\"%r\" %>s %b %B";
    app_server server;
    app_server_start(&server, test_app(), &options);
    char long_target[300];
    memset(long_target, 'l', sizeof(long_target));
    long_target[0] = '/';
    char request[1024];
    static const char *const refused[] = {
        "GET / HTTP/1.1\r\n\r\n",                                        /* no Host: 400 */
        "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", /* 413 */
        NULL,                                                            /* 414, below */
        "GET /h HTTP/1.1\r\nHost: t\r\nX-Long: "
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n",         /* 431 */
        "GET / HTTP/2.0\r\nHost: t\r\n\r\n",                          /* 505 */
        "GET /slow HTTP/1.1\r\nHost: t\r\n",                          /* 408: the head never ends */
        "GET /../x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", /* 400 */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *r = refused[i];
        if (!r) {
            snprintf(request, sizeof(request), "GET %.*s HTTP/1.1\r\nHost: t\r\n\r\n", 300,
                     long_target);
            r = request;
        }
        get(server.port, r);
    }
    app_server_stop(&server);
    const char *text = test_read_file(log_path());
    ck_assert_uint_eq(count_lines(text), 7);
    char line[2048];
    /* the pages are "400 Bad Request\n" and so on: their length is %b */
    ck_assert_str_eq(nth_line(text, 0, line, sizeof(line)), "\"GET / HTTP/1.1\" 400 16 16");
    ck_assert_str_eq(nth_line(text, 1, line, sizeof(line)), "\"POST /big HTTP/1.1\" 413 22 22");
    nth_line(text, 2, line, sizeof(line));
    assert_matches(line, "^\"GET /l{299} HTTP/1\\.1\" 414 17 17$"); /* "414 URI Too Long\n" */
    ck_assert_str_eq(nth_line(text, 3, line, sizeof(line)), "\"GET /h HTTP/1.1\" 431 36 36");
    ck_assert_str_eq(nth_line(text, 4, line, sizeof(line)), "\"GET / HTTP/2.0\" 505 31 31");
    ck_assert_str_eq(nth_line(text, 5, line, sizeof(line)), "\"GET /slow HTTP/1.1\" 408 20 20");
    ck_assert_str_eq(nth_line(text, 6, line, sizeof(line)), "\"GET /../x HTTP/1.1\" 400 16 16");
}
END_TEST

START_TEST(cut_and_abandoned_responses_logged)
{
    csgi_server_options options = log_options();
    options.access_log_format = "\"%r\" %>s %B %O";
    app_server server;
    app_server_start(&server, test_app(), &options);
    /* 256 KiB of a promised 1 MiB, then the body fails: the connection is
       cut; the log has the bytes the client got. */
    static char response[2 << 20];
    const char *request = "GET /cut HTTP/1.1\r\nHost: t\r\n\r\n";
    size_t received = exchange(server.port, request, strlen(request), response, sizeof(response));
    const char *body = strstr(response, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    size_t head_len = (size_t)(body + 4 - response);
    /* The client leaves before an answer: 499, as nginx logs it. */
    int fd = client_connect(server.port);
    client_send_str(fd, "GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(100000);
    close(fd);
    usleep(100000);
    /* The application fails: the server's 500. */
    get(server.port, "GET /fail HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    app_server_stop(&server);

    const char *text = test_read_file(log_path());
    ck_assert_uint_eq(count_lines(text), 3);
    char line[2048], expected[256];
    snprintf(expected, sizeof(expected), "\"GET /cut HTTP/1.1\" 200 %zu %zu", received - head_len,
             received);
    ck_assert_str_eq(nth_line(text, 0, line, sizeof(line)), expected);
    ck_assert_uint_lt(received - head_len, 1048576);
    ck_assert_uint_ge(received - head_len, 65536);
    /* The server may notice the client that left after the next request:
       the two lines in either order. */
    const char *never = "\"GET /never HTTP/1.1\" 499 0 0";
    int never_second = strcmp(nth_line(text, 1, line, sizeof(line)), never) == 0;
    ck_assert_str_eq(nth_line(text, never_second ? 1 : 2, line, sizeof(line)), never);
    nth_line(text, never_second ? 2 : 1, line, sizeof(line));
    assert_matches(line, "^\"GET /fail HTTP/1\\.1\" 500 26 [0-9]+$");
}
END_TEST

/* ---- The error log's levels ---------------------------------------------------------------- */

START_TEST(log_level_filters)
{
    static const struct {
        int log_level, verbose;
        int expect[4]; /* the application's line at level i is logged */
        int refused;   /* the engine's info line on a refused request */
    } cases[] = {
        {CSGI_LOG_ERROR, 0, {1, 0, 0, 0}, 0},   {CSGI_LOG_WARNING, 0, {1, 1, 0, 0}, 0},
        {CSGI_LOG_INFO, 0, {1, 1, 1, 0}, 1},    {CSGI_LOG_DEBUG, 0, {1, 1, 1, 1}, 1},
        {CSGI_LOG_WARNING, 1, {1, 1, 1, 0}, 1}, /* verbose: info at least */
        {CSGI_LOG_DEBUG, 1, {1, 1, 1, 1}, 1},   /* and not less than asked */
        {CSGI_LOG_ERROR, 1, {1, 1, 1, 0}, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
        ck_assert_int_eq(options.log_level, CSGI_LOG_WARNING);
        options.log = capture_log;
        options.log_level = cases[i].log_level;
        options.verbose = cases[i].verbose;
        captured_count = 0;
        app_server server;
        app_server_start(&server, test_app(), &options);
        get(server.port, "GET /levels HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        get(server.port, "GET / HTTP/1.1\r\n\r\n"); /* no Host: refused, an info line */
        app_server_stop(&server);
        for (int level = 0; level <= 3; level++) {
            char text[64];
            snprintf(text, sizeof(text), "line at level %d", level);
            ck_assert_msg((captured_level(text) == level) == cases[i].expect[level],
                          "case %zu, level %d: %d", i, level, captured_level(text));
        }
        ck_assert_msg((captured_level("400 Bad Request") == CSGI_LOG_INFO) == cases[i].refused,
                      "case %zu", i);
    }

    /* Only the four levels; a version 4 struct (the workers' fields, then
       its end) and a version 3 one have no log_level nor access log
       (whatever lies there is not read). */
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log = capture_log;
    csgi_server *server = NULL;
    options.log_level = 4;
    ck_assert_int_eq(csgi_server_new(&server, test_app(), &options, NULL), CSGI_EINVAL);
    options.log_level = -1;
    ck_assert_int_eq(csgi_server_new(&server, test_app(), &options, NULL), CSGI_EINVAL);
    options.access_log = "/nonexistent-csgi-dir/never-opened.log";
    options.access_log_format = "%Z";
    for (unsigned version = 3; version <= 4; version++) {
        options.version = version;
        ck_assert_int_eq(csgi_server_new(&server, test_app(), &options, NULL), 0);
        ck_assert_ptr_null(csgi_server__access_log(server));
        csgi_server_free(server);
    }
    options.version = 5;
    options.log_level = CSGI_LOG_WARNING;
    options.access_log_format = NULL;
    ck_assert_int_eq(csgi_server_new(&server, test_app(), &options, NULL), CSGI_ENOTFOUND);
}
END_TEST

/* The standard error line: time stamp, csgi[PID], level. */
START_TEST(stderr_line_names_the_pid)
{
    const char *path = test_tmp_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    dup2(fileno(f), 2);
    csgi_log__write(NULL, NULL, CSGI_LOG__WARN, CSGI_LOG__WARN, "a warning");
    csgi_log__write(NULL, NULL, CSGI_LOG__WARN, CSGI_LOG__INFO, "dropped");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    char pattern[128];
    snprintf(pattern, sizeof(pattern),
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z csgi\\[%ld\\] warning: a warning\n$",
             (long)getpid());
    assert_matches(test_read_file(path), pattern);
}
END_TEST

/* ---- The INI keys --------------------------------------------------------------------------- */

static const char server_ini[] = "[app:main]\n"
                                 "use = egg:Test#logged\n"
                                 "\n"
                                 "[server:main]\n"
                                 "use = egg:csgi#http\n"
                                 "log_level = debug\n"
                                 "access_log = %(here)s/ini-access.log\n"
                                 "access_log_format = %%h %%>s\n" /* %% is %: INI interpolation */
                                 "access_log_buffer = 4096\n"
                                 "access_log_flush = 2\n"
                                 "\n"
                                 "[server:level]\n"
                                 "use = egg:csgi#http\n"
                                 "log_level = loud\n"
                                 "\n"
                                 "[server:format]\n"
                                 "use = egg:csgi#http\n"
                                 "access_log = -\n"
                                 "access_log_format = %%h %%y\n"
                                 "\n"
                                 "[server:gunicorn]\n"
                                 "use = egg:csgi#http\n"
                                 "accesslog = -\n"
                                 "\n"
                                 "[server:facility]\n"
                                 "use = egg:csgi#http\n"
                                 "access_log = syslog:local9\n"
                                 "\n"
                                 "[server:flush]\n"
                                 "use = egg:csgi#http\n"
                                 "access_log_flush = 0\n"
                                 "\n"
                                 "[server:unopenable]\n"
                                 "use = egg:csgi#http\n"
                                 "port = 0\n"
                                 "access_log = /nonexistent-csgi-dir/access.log\n";

static int logged_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &test_type, NULL);
}

START_TEST(ini_keys_checked)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#logged", CSGI_FACTORY_APP, logged_factory), 0);
    const char *path = test_write_file("logs.ini", server_ini);
    csgi_load_error error;
    ck_assert_int_eq(csgi_loader_check_server(loader, path, &error), 0);
    static const struct {
        const char *name, *text;
    } bad[] = {
        {"level", "logs.ini:14: [server:level] log_level: 'loud' is not a log level (error, "
                  "warning, info, debug)"},
        {"format", "logs.ini:19: [server:format] access_log_format: unknown directive %y at "
                   "byte 3"},
        {"gunicorn", "logs.ini:23: [server:gunicorn] accesslog: unknown key for egg:csgi#http "
                     "(it is access_log)"},
        {"facility", "logs.ini:27: [server:facility] access_log: 'local9' is not a syslog "
                     "facility"},
        {"flush", "logs.ini:31: [server:flush] access_log_flush: 0 is out of range (1 to 3600)"},
    };
    char uri[4200], message[2048];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(uri, sizeof(uri), "%s#%s", path, bad[i].name);
        ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), CSGI_EINVAL);
        csgi_load_error_format(&error, message, sizeof(message));
        ck_assert_msg(strstr(message, bad[i].text) != NULL, "%s", message);
    }
    /* The file is opened when serving: its error is at the key. */
    snprintf(uri, sizeof(uri), "%s#unopenable", path);
    ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), 0);
    csgi_app *app = test_load(loader, path);
    ck_assert_int_eq(csgi_loader_serve(loader, uri, app, &error), CSGI_ENOTFOUND);
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_msg(strstr(message, "logs.ini:36: [server:unopenable] access_log: cannot open "
                                  "'/nonexistent-csgi-dir/access.log': No such file") != NULL,
                  "%s", message);
    csgi_loader_free(loader);
}
END_TEST

/* Serving the [server:main] above on a Unix socket: a request, then
   SIGTERM; the line is in the file the key names, in the key's format. */
START_TEST(ini_keys_serve)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#logged", CSGI_FACTORY_APP, logged_factory), 0);
    const char *path = test_write_file("logs.ini", server_ini);
    csgi_app *app = test_load(loader, path);
    char response[4096];
    csgi_load_error error;
    ck_assert_int_eq(test_serve_one_request(loader, path, app, test_tmp_path("logs.sock"),
                                            "GET /ini HTTP/1.1\r\nHost: t\r\n"
                                            "Connection: close\r\n\r\n",
                                            response, sizeof(response), &error),
                     0);
    csgi_loader_free(loader);
    ck_assert_ptr_nonnull(strstr(response, "HTTP/1.1 200 OK\r\n"));
    /* access_log_format = %h %>s; a Unix socket's client is "unix:" */
    ck_assert_str_eq(test_read_file(test_tmp_path("ini-access.log")), "unix: 200\n");
}
END_TEST

static Suite *accesslog_suite(void)
{
    Suite *suite = suite_create("accesslog");

    TCase *unit = tcase_create("unit");
    tcase_add_test(unit, every_byte_escaped_as_the_rule_says);
    tcase_add_test(unit, combined_writer_equals_its_directives);
    tcase_add_test(unit, other_destinations);
    tcase_add_test(unit, failed_reopen_keeps_the_old_file);
    tcase_add_test(unit, shared_log_writes_whole_lines_in_pieces);
    suite_add_tcase(suite, unit);

    TCase *format = tcase_create("format");
    tcase_set_timeout(format, 30);
    tcase_add_test(format, combined_line_field_by_field);
    tcase_add_test(format, named_formats);
    tcase_add_test(format, custom_format_tokens);
    tcase_add_test(format, bad_formats_refused);
    tcase_add_test(format, request_bytes_escaped);
    tcase_add_test(format, refused_requests_logged);
    tcase_add_test(format, cut_and_abandoned_responses_logged);
    suite_add_tcase(suite, format);

    TCase *output = tcase_create("output");
    tcase_set_timeout(output, 30);
    tcase_add_test(output, file_appended_and_reopened_after_rename);
    tcase_add_test(output, sigusr1_reopens);
    tcase_add_test(output, buffered_until_stop);
    tcase_add_test(output, written_when_the_buffer_fills);
    tcase_add_test(output, unbuffered_writes_each_line);
    tcase_add_test(output, flush_timer);
    tcase_add_test(output, threads_write_whole_lines);
    suite_add_tcase(suite, output);

    TCase *levels = tcase_create("levels");
    tcase_set_timeout(levels, 30);
    tcase_add_test(levels, log_level_filters);
    tcase_add_test(levels, stderr_line_names_the_pid);
    suite_add_tcase(suite, levels);

    TCase *ini = tcase_create("ini");
    tcase_set_timeout(ini, 30);
    tcase_add_test(ini, ini_keys_checked);
    tcase_add_test(ini, ini_keys_serve);
    suite_add_tcase(suite, ini);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(accesslog_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
