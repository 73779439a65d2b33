/*
 * A host program of the server API with worker processes, as a user
 * writes one: its application is built before the fork, it adopts the
 * sockets it is given (socket activation, or a master that upgrades)
 * and binds 127.0.0.1:0 otherwise. check_workers.c runs it to show that
 * USR2 works for such a program, not only for csgi-serve.
 *
 *   workers_host MESSAGE_FILE PID_FILE
 *
 * Answers "message=M pid=P built_by=B" with M the file's first word, P the
 * worker's pid and B the pid of the process that read the file.
 */
#include <csgi.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char text[128];
static size_t text_len;

static csgi_body *host_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    (void)state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    char answer[256];
    int len = snprintf(answer, sizeof(answer), "%.*s pid=%ld built_by=%s\n", (int)text_len, text,
                       (long)getpid(), text + text_len + 1);
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(environ, answer, (size_t)len);
}

static const csgi_app_type host_type = {"workers_host", host_call, NULL};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: workers_host MESSAGE_FILE PID_FILE\n");
        return 2;
    }
    char word[64] = "";
    FILE *file = fopen(argv[1], "r");
    if (!file || fscanf(file, "%63s", word) != 1) {
        fprintf(stderr, "workers_host: cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(file);
    /* "message=WORD" then, after its NUL, the reader's pid. */
    text_len = (size_t)snprintf(text, sizeof(text), "message=%s", word);
    snprintf(text + text_len + 1, sizeof(text) - text_len - 1, "%ld", (long)getpid());

    csgi_app *app = NULL;
    if (csgi_app_new(&app, &host_type, NULL) != 0)
        return 1;
    csgi_server_options options;
    csgi_server_options_init(&options);
    options.workers = 2;
    options.log_level = CSGI_LOG_INFO;
    options.pidfile = argv[2];
    csgi_server *server = NULL;
    if (csgi_server_new(&server, app, &options, NULL) != 0)
        return 1;
    size_t adopted = 0;
    int err = csgi_server_listen_systemd(server, &adopted);
    if (err == 0 && adopted == 0)
        err = csgi_server_listen(server, "127.0.0.1:0");
    if (err == 0)
        err = csgi_server_run_until_signal(server);
    if (err)
        fprintf(stderr, "workers_host: %s\n", csgi_strerror(err));
    csgi_server_free(server);
    return err ? 1 : 0;
}
