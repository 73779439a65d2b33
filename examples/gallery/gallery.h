/*
 * The gallery example (examples/gallery): what its files share. gallery.c
 * holds the handlers and factories, page.c the HTML pages and the one
 * escape function, session.c the users file, the signed session cookie and
 * the CSRF token, store.c the files on disk.
 */
#ifndef GALLERY_H
#define GALLERY_H

#include <csgi.h>

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

/* The settings every handler reads, from [DEFAULT] of the deploy file. */
typedef struct gallery_config {
    char *state_dir;            /* files/, tmp/ and session.key live here */
    char *users_file;           /* {"users": [{"name", "password_hash"}]} */
    long long max_file_size;    /* bytes of one uploaded file */
    long long max_request_size; /* bytes of one upload request */
    long long page_size;        /* files per listing page */
    unsigned char key[32];      /* the session key, from state_dir/session.key */
} gallery_config;

/* ---- page.c: HTML ------------------------------------------------------------- */

/* A page being written: a growing buffer capped at 4 MiB. */
typedef struct gallery_page {
    char *text;
    size_t len, capacity;
    int failed;
} gallery_page;

void gallery_page_raw(gallery_page *page, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* text with & < > " ' escaped: every user-supplied string goes through it. */
void gallery_page_escape(gallery_page *page, const char *text);
/* The head of every page, up to the opening of <main>; user may be NULL. */
void gallery_page_begin(gallery_page *page, const char *title, const char *user, const char *csrf);
/* The response for a finished page (freed here), or NULL. */
csgi_response *gallery_page_end(csgi_request *request, gallery_page *page, int status);
/* An HTML error page: 403, 404, 413, 500. */
csgi_response *gallery_error_page(csgi_request *request, int status, const char *detail);

/* ---- session.c: users, the session cookie, CSRF ------------------------------------- */

#define GALLERY_COOKIE "gallery_session"

/* 0 when the users file names user with this password. */
int gallery_check_password(const gallery_config *config, const char *user, const char *password);
/* The signed cookie value for user (in the request's arena), or NULL. */
const char *gallery_session_new(csgi_request *request, const gallery_config *config,
                                const char *user);
/* The user of a valid session cookie (arena), or NULL. */
const char *gallery_session_user(csgi_request *request, const gallery_config *config);
/* The CSRF token of this request's session (arena), or NULL without one. */
const char *gallery_csrf_token(csgi_request *request, const gallery_config *config);
/* The token for a secret (a session cookie, or the sign-in form's cookie). */
const char *gallery_token_for(csgi_request *request, const gallery_config *config,
                              const char *secret);
/* 1 when the form's "csrf" field is expected (which may be NULL: 0). */
int gallery_token_ok(const char *expected, const csgi_params *form);
/* 1 when the form's "csrf" field is this session's token. */
int gallery_csrf_ok(csgi_request *request, const gallery_config *config, const csgi_params *form);
/* Read state_dir/session.key, creating it first when missing. */
int gallery_load_key(gallery_config *config);

/* ---- store.c: the files ---------------------------------------------------------------- */

/* Copy an uploaded file into user's directory, with its name and type as
   metadata; the new id (32 hex digits) goes to id_out. 0 or -1. */
int gallery_store_save(const gallery_config *config, const char *user, const csgi_form_file *file,
                       char id_out[33]);
/* The user's files, newest first: an array of {"id","name","type","size","time"}. */
json_t *gallery_store_list(const gallery_config *config, const char *user);
/* The metadata of one file (new reference) and its data opened in fd_out, or NULL. */
json_t *gallery_store_open(const gallery_config *config, const char *user, const char *id,
                           int *fd_out);
/* 0 when the file was removed, -1 when there was none. */
int gallery_store_delete(const gallery_config *config, const char *user, const char *id);
/* 1 when id is exactly 32 lowercase hex digits. */
int gallery_store_valid_id(const char *id);

#endif /* GALLERY_H */
