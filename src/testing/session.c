/*
 * Test sessions (include/csgi/testing.h): an application and a cookie jar
 * that requests share, as WebTest's TestApp keeps cookies between
 * requests. Each request through a session carries the jar's cookies for
 * its URL in a Cookie field, and the Set-Cookie fields of its response go
 * into the jar (cookies.c holds RFC 6265's rules).
 */
#include "testing/testing_private.h"

#include "common/alloc.h"

#include <string.h>
#include <time.h>

struct csgi_test_session {
    csgi_app *app; /* a reference of the session's own */
    csgi_test__jar jar;
};

/* The request's host and path as the jar sees them: 0, or CSGI_EINVAL for
   a host too long to hold a cookie. */
static int cookie_scope(const csgi_test_request *request, char *host, size_t size, size_t *path_len)
{
    *path_len = csgi_test__request_path_len(request);
    return csgi_test__cookie_host(csgi_test__request_authority(request), host, size) ? 0
                                                                                     : CSGI_EINVAL;
}

int csgi_test__exchange(csgi_test_response **out, csgi_test_request *request, csgi_app *app,
                        csgi_test__jar *jar)
{
    if (!jar)
        return csgi_test__run_once(out, request, app, NULL);
    char host[256];
    size_t path_len = 0;
    char *cookie = NULL;
    int secure = strcmp(request->scheme, "https") == 0;
    time_t now = time(NULL);
    /* A host the jar cannot hold gets no cookies and keeps none. */
    int scoped = cookie_scope(request, host, sizeof(host), &path_len) == 0;
    int rc = scoped
                 ? csgi_test__jar_header(jar, secure, host, request->target, path_len, now, &cookie)
                 : 0;
    if (rc == 0)
        rc = csgi_test__run_once(out, request, app, cookie);
    csgi__free(cookie);
    if (rc != 0 || !scoped)
        return rc;
    const char *set_cookie;
    for (size_t i = 0; (set_cookie = csgi_test_response_header_value(*out, "Set-Cookie", i)); i++) {
        /* A cookie RFC 6265 ignores is ignored; running out of room is
           the run's failure. */
        rc = csgi_test__jar_store(jar, set_cookie, host, request->target, path_len, now);
        if (rc != 0 && rc != CSGI_EINVAL) {
            csgi_test_response_free(*out);
            *out = NULL;
            return rc;
        }
    }
    return 0;
}

int csgi_test_session_new(csgi_test_session **out, csgi_app *app)
{
    if (out)
        *out = NULL;
    if (!out || !app)
        return CSGI_EINVAL;
    csgi_test_session *session = csgi__malloc(sizeof(*session));
    if (!session)
        return CSGI_ENOMEM;
    session->app = csgi_app_ref(app);
    csgi_test__jar_init(&session->jar);
    *out = session;
    return 0;
}

void csgi_test_session_free(csgi_test_session *session)
{
    if (!session)
        return;
    csgi_test__jar_clear(&session->jar);
    csgi_app_free(session->app);
    csgi__free(session);
}

int csgi_test_session_run(csgi_test_response **out, csgi_test_session *session,
                          csgi_test_request *request)
{
    if (out)
        *out = NULL;
    if (!out || !session || !request)
        return CSGI_EINVAL;
    return csgi_test__follow(out, request, session->app, &session->jar);
}

int csgi_test_session_get(csgi_test_response **out, csgi_test_session *session, const char *url)
{
    if (out)
        *out = NULL;
    if (!out || !session)
        return CSGI_EINVAL;
    return csgi_test__get(out, url, session->app, &session->jar);
}

const char *csgi_test_session_cookie(const csgi_test_session *session, const char *name)
{
    return session && name ? csgi_test__jar_get(&session->jar, name, time(NULL)) : NULL;
}

size_t csgi_test_session_cookie_count(const csgi_test_session *session)
{
    return session ? csgi_test__jar_count(&session->jar, time(NULL)) : 0;
}

int csgi_test_session_set_cookie(csgi_test_session *session, const char *url,
                                 const char *set_cookie)
{
    if (!session || !set_cookie)
        return CSGI_EINVAL;
    csgi_test_request *request = NULL;
    int rc = csgi_test_request_new(&request, "GET", url ? url : "/");
    char host[256];
    size_t path_len = 0;
    if (rc == 0)
        rc = cookie_scope(request, host, sizeof(host), &path_len);
    if (rc == 0)
        rc = csgi_test__jar_store(&session->jar, set_cookie, host, request->target, path_len,
                                  time(NULL));
    csgi_test_request_free(request);
    return rc;
}

void csgi_test_session_clear_cookies(csgi_test_session *session)
{
    if (session)
        csgi_test__jar_clear(&session->jar);
}
