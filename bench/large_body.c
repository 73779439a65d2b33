/*
 * Large answers (bench/peers.sh large): a csgi application that answers
 *
 *   GET /file  the file FILE, as a file body (sent with sendfile(2))
 *   GET /iter  as many bytes as FILE holds, from an iterator body that
 *              gives them in 64 KiB pieces (its length declared, so the
 *              answer has a Content-Length, as the file's has)
 *
 *   large_body FILE
 *
 * Serves on 127.0.0.1 on a free port (the first line printed names it)
 * until SIGINT or SIGTERM. Public API only.
 */
#define _GNU_SOURCE
#include <csgi.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIECE (64 * 1024)

static const char *file_path;
static int64_t file_size;
static char piece[PIECE]; /* the iterator's bytes: 'x' */

typedef struct pieces {
    int64_t left;
} pieces;

static int pieces_next(void *state, csgi_chunk *chunk)
{
    pieces *p = state;
    if (p->left == 0)
        return 0;
    chunk->data = piece;
    chunk->len = p->left < PIECE ? (size_t)p->left : PIECE;
    p->left -= (int64_t)chunk->len;
    return 1;
}

static void pieces_close(void *state)
{
    free(state);
}

static const csgi_body_type pieces_type = {"pieces", pieces_next, pieces_close};

static csgi_body *large_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "application/octet-stream")};
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    csgi_body *body = NULL;
    if (path && strcmp(path, "/file") == 0) {
        int fd = open(file_path, O_RDONLY | O_CLOEXEC);
        body = fd >= 0 ? csgi_body_file(environ, fd, 0, file_size) : NULL;
    } else if (path && strcmp(path, "/iter") == 0) {
        pieces *p = malloc(sizeof(*p));
        if (p) {
            p->left = file_size;
            body = csgi_body_new(environ, &pieces_type, p);
        }
        if (body && csgi_body_set_length(body, file_size) != 0) {
            csgi_body_close(body);
            body = NULL;
        }
    } else {
        static const csgi_header text[] = {CSGI_HEADER("Content-Type", "text/plain")};
        if (csgi_start_response_call(sr, "404 Not Found", text, 1, NULL) != 0)
            return NULL;
        return csgi_body_static(environ, "not found\n", 10);
    }
    if (!body || csgi_start_response_call(sr, "200 OK", headers, 1, NULL) != 0) {
        csgi_body_close(body);
        return NULL;
    }
    return body;
}

static const csgi_app_type large_type = {"large_body", large_call, NULL};

int main(int argc, char **argv)
{
    struct stat st;
    if (argc != 2 || stat(argv[1], &st) != 0) {
        fprintf(stderr, "usage: large_body FILE\n");
        return 2;
    }
    file_path = argv[1];
    file_size = (int64_t)st.st_size;
    memset(piece, 'x', sizeof(piece));
    csgi_app *app = NULL;
    if (csgi_app_new(&app, &large_type, NULL) != 0)
        return 1;
    return csgi_serve(app, "127.0.0.1", 0) == 0 ? 0 : 1;
}
