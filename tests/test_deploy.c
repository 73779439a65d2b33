/* Load a deploy file and run a request through it (test_deploy.h). */
#include "test_deploy.h"

#include <csgi.h>

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

csgi_app *test_load(csgi_loader *loader, const char *uri)
{
    csgi_app *app = NULL;
    csgi_load_error error;
    int rc = csgi_loader_load_app(&app, loader, uri, &error);
    char message[2048];
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_msg(rc == 0, "loading %s: %s (%s)", uri, message, csgi_err_name(rc));
    ck_assert_ptr_nonnull(app);
    return app;
}

int test_load_fails(csgi_loader *loader, const char *uri, char *message, size_t size)
{
    csgi_app *app = (csgi_app *)&app; /* must be reset */
    csgi_load_error error;
    int rc = csgi_loader_load_app(&app, loader, uri, &error);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_null(app);
    csgi_load_error_format(&error, message, size);
    return rc;
}

void test_run_request(csgi_app *app, const char *path, const char *remote, const char *header,
                      test_client_response *out)
{
    char url[512];
    snprintf(url, sizeof(url), "http://example.com%s", path);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", url), 0);
    ck_assert_int_eq(csgi_test_request_set_remote(request, remote ? remote : "192.0.2.7", 40000),
                     0);
    if (header) {
        char name[128];
        const char *colon = strchr(header, ':');
        ck_assert_ptr_nonnull(colon);
        snprintf(name, sizeof(name), "%.*s", (int)(colon - header), header);
        ck_assert_int_eq(csgi_test_request_add_header(request, name, colon + 1 + (colon[1] == ' ')),
                         0);
    }
    csgi_test_response *got = NULL;
    ck_assert_int_eq(csgi_test_request_run(&got, request, app), 0);
    memset(out, 0, sizeof(*out));
    snprintf(out->status, sizeof(out->status), "%s", csgi_test_response_status(got));
    const char *type = csgi_test_response_header(got, "Content-Type");
    snprintf(out->content_type, sizeof(out->content_type), "%s", type ? type : "");
    size_t len = 0;
    const char *body = csgi_test_response_body(got, &len);
    ck_assert_uint_lt(len, sizeof(out->body));
    memcpy(out->body, body, len);
    csgi_test_response_free(got);
    csgi_test_request_free(request);
}

/* test_serve_one_request's client. */
typedef struct serve_client {
    pthread_t thread;
    const char *socket_path;
    const char *request;
    char *response;
    size_t cap;
    volatile int stopped;
} serve_client;

static void ignore_signal(int signal_number)
{
    (void)signal_number;
}

static void *serve_client_run(void *arg)
{
    serve_client *c = arg;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof(address.sun_path), "%s", c->socket_path);
    size_t request_len = strlen(c->request);
    for (int attempt = 0; attempt < 500; attempt++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0) {
            if (write(fd, c->request, request_len) == (ssize_t)request_len) {
                size_t len = 0;
                ssize_t n;
                while (len + 1 < c->cap && (n = read(fd, c->response + len, c->cap - 1 - len)) > 0)
                    len += (size_t)n;
                c->response[len] = '\0';
            }
            close(fd);
            break;
        }
        if (fd >= 0)
            close(fd);
        usleep(10000);
    }
    while (!c->stopped) {
        kill(getpid(), SIGTERM);
        usleep(20000);
    }
    return NULL;
}

int test_serve_one_request(csgi_loader *loader, const char *uri, csgi_app *app,
                           const char *socket_path, const char *request, char *response, size_t cap,
                           csgi_load_error *error)
{
    serve_client c = {
        .socket_path = socket_path, .request = request, .response = response, .cap = cap};
    response[0] = '\0';
    char listen_address[256];
    snprintf(listen_address, sizeof(listen_address), "unix:%s", socket_path);
    const char *listen[] = {listen_address};
    ck_assert_int_eq(csgi_loader_set_listen(loader, listen, 1), 0);
    /* Tests run as root in CI: as csgi-serve --allow-root. */
    ck_assert_int_eq(csgi_loader_set_server_option(loader, "allow_root", "true"), 0);
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = ignore_signal; /* a signal before the server listens for it */
    sigemptyset(&action.sa_mask);
    ck_assert_int_eq(sigaction(SIGTERM, &action, NULL), 0);
    ck_assert_int_eq(pthread_create(&c.thread, NULL, serve_client_run, &c), 0);
    int rc = csgi_loader_serve(loader, uri, app, error);
    c.stopped = 1;
    pthread_join(c.thread, NULL);
    return rc;
}

/* ---- a request with headers and a body, an app to load ------------------------------ */

csgi_test_response *test_client_run(csgi_app *app, const char *method, const char *url,
                                    const char *name, const char *value, const char *body)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    if (name)
        ck_assert_int_eq(csgi_test_request_add_header(request, name, value), 0);
    if (body)
        ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    ck_assert_ptr_nonnull(response);
    return response;
}

static csgi_response *hello(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, "hello", NULL) != 0)
        return NULL;
    return response;
}

int test_hello_app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                           const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_app_factory(out, global_conf, local_conf, "hello", hello, NULL, error);
}
