/*
 * A program that uses the installed csgi as a service behind keystone-style
 * tokens would: it loads a pipeline from a deploy file (auth_token with a
 * signing key in front of its own handler), serves it on its own libevent
 * loop, issues a signed token (csgi/auth_token.h), and calls itself with
 * the asynchronous client (csgi/client.h) on the same loop: with the token
 * it gets 200 and the user the token names, without it 401.
 *
 *   gateway WORK_DIR
 */
#include <csgi.h>
#include <csgi/auth_token.h>
#include <csgi/client.h>

#include <event2/event.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char key[] = "a signing key of forty bytes, no less..";

static csgi_response *whoami(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *user = csgi_request_header(request, "X-User-Name", NULL);
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, user ? user : "nobody", "utf-8") != 0)
        return NULL;
    return response;
}

CSGI_HANDLER_APP_FACTORY(whoami_factory, whoami, NULL)

/* One exchange with the client: what came back. */
typedef struct exchange {
    struct event_base *base;
    int status, result, done;
    char body[256];
    size_t len;
} exchange;

static int on_head(csgi_client_request *request, const csgi_client_response *response,
                   void *userdata)
{
    (void)request;
    ((exchange *)userdata)->status = response->status;
    return 0;
}

static int on_data(csgi_client_request *request, const void *data, size_t len, void *userdata)
{
    exchange *x = userdata;
    (void)request;
    if (x->len + len >= sizeof(x->body))
        return 1;
    memcpy(x->body + x->len, data, len);
    x->len += len;
    return 0;
}

static void on_done(csgi_client_request *request, int result, void *userdata)
{
    exchange *x = userdata;
    (void)request;
    x->result = result;
    x->done = 1;
    event_base_loopbreak(x->base);
}

static const csgi_client_callbacks callbacks = {on_head, on_data, on_done, NULL};

/* GET / on port with the token (NULL: none). */
static int get(struct event_base *base, csgi_client *client, int port, const char *token,
               exchange *x)
{
    char url[64];
    csgi_client_request *request;
    memset(x, 0, sizeof(*x));
    x->base = base;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    if (csgi_client_request_new(&request, client, "GET", url) != 0 ||
        (token && csgi_client_request_add_header(request, "X-Auth-Token", token) != 0) ||
        csgi_client_request_send(request, &callbacks, x) != 0)
        return 1;
    while (!x->done)
        if (event_base_loop(base, EVLOOP_ONCE) != 0)
            return 1;
    return x->result;
}

int main(int argc, char **argv)
{
    char path[512], ini[1024];
    if (argc != 2)
        return 2;
    /* The key and the deploy file. */
    snprintf(path, sizeof(path), "%s/signing.key", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f || fputs(key, f) < 0 || fclose(f) != 0)
        return 1;
    snprintf(ini, sizeof(ini), "%s/gateway.ini", argv[1]);
    f = fopen(ini, "w");
    if (!f)
        return 1;
    fprintf(f,
            "[pipeline:main]\npipeline = authtoken whoami\n\n"
            "[filter:authtoken]\npaste.filter_factory = "
            "keystonemiddleware.auth_token:filter_factory\nsigning_key_file = %s\n"
            "www_authenticate_uri = http://keystone.example/v3\n\n"
            "[app:whoami]\nuse = egg:gateway#whoami\n",
            path);
    fclose(f);

    csgi_loader *loader;
    csgi_app *app = NULL;
    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    if (csgi_loader_new(&loader) != 0 ||
        csgi_loader_register_app(loader, "egg:gateway#whoami", CSGI_FACTORY_APP, whoami_factory) !=
            0 ||
        csgi_loader_load_app(&app, loader, ini, &error) != 0) {
        fprintf(stderr, "gateway: %s\n", error.text);
        return 1;
    }
    csgi_loader_free(loader);

    struct event_base *base = event_base_new();
    csgi_server *server;
    csgi_server_options options;
    csgi_server_options_init(&options);
    if (!base || csgi_server_new(&server, app, &options, base) != 0 ||
        csgi_server_listen(server, "127.0.0.1:0") != 0 || csgi_server_start(server) != 0)
        return 1;
    int port = csgi_server_port(server, 0);

    /* A token for "demo", valid for an hour. */
    char expires[32], token[2048];
    size_t len;
    time_t later = time(NULL) + 3600;
    strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", gmtime(&later));
    json_t *document = json_pack("{s:s, s:{s:s, s:s}, s:[{s:s}]}", "expires_at", expires, "user",
                                 "id", "u-demo", "name", "demo", "roles", "name", "member");
    int rc = csgi_auth_token_sign(token, sizeof(token), &len, key, sizeof(key) - 1, document);
    json_decref(document);
    if (rc != 0) {
        fprintf(stderr, "gateway: csgi_auth_token_sign: %s\n", csgi_strerror(rc));
        return 1;
    }

    csgi_client *client;
    exchange x;
    int failed = csgi_client_new(&client, base, NULL) != 0;
    if (!failed && (get(base, client, port, token, &x) != 0 || x.status != 200 || x.len != 4 ||
                    memcmp(x.body, "demo", 4) != 0)) {
        fprintf(stderr, "gateway: with the token: status %d, result %d\n", x.status, x.result);
        failed = 1;
    }
    if (!failed && (get(base, client, port, NULL, &x) != 0 || x.status != 401)) {
        fprintf(stderr, "gateway: without a token: status %d, result %d\n", x.status, x.result);
        failed = 1;
    }
    /* The server's figures, as a status page reads them: both requests. */
    csgi_server_stats stats = CSGI_SERVER_STATS_INIT;
    if (!failed && (csgi_server_stats_get(&stats) != 0 || stats.requests != 2 || stats.workers)) {
        fprintf(stderr, "gateway: csgi_server_stats_get: %llu requests, %u workers\n",
                (unsigned long long)stats.requests, stats.workers);
        failed = 1;
    }
    if (!failed)
        printf("gateway: signed token accepted, no token refused, %llu requests (port %d)\n",
               (unsigned long long)stats.requests, port);
    csgi_client_free(client);
    csgi_server_stop(server, 0);
    csgi_server_free(server);
    csgi_app_free(app);
    event_base_free(base);
    return failed;
}
