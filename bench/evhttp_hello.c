/*
 * The baseline for bench/run.sh: libevent's own evhttp serving the same
 * "Hello World" response as examples/hello, on one loop.
 *
 *   evhttp_hello PORT
 *
 * PORT 0 picks a free port; the first line printed names the port bound.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/html");
    evbuffer_add_reference(evhttp_request_get_output_buffer(req), "Hello World", 11, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8081;
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    struct evhttp_bound_socket *bound =
        base && http ? evhttp_bind_socket_with_handle(http, "127.0.0.1", (unsigned short)port)
                     : NULL;
    if (!bound) {
        fprintf(stderr, "evhttp_hello: cannot serve on 127.0.0.1:%d\n", port);
        return 1;
    }
    struct sockaddr_in addr;
    socklen_t addr_len = sizeof(addr);
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&addr, &addr_len) == 0)
        port = ntohs(addr.sin_port);
    evhttp_set_gencb(http, on_request, NULL);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    printf("evhttp_hello: serving on http://127.0.0.1:%d/\n", port);
    fflush(stdout);
    event_base_dispatch(base);
    event_free(sigint);
    event_free(sigterm);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
