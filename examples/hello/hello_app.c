/*
 * The talk's "Simple WSGI Application" in C:
 *
 *     def application(environ, start_response):
 *         start_response('200 OK', [('Content-type', 'text/html')])
 *         return ['Hello World']
 */
#include "hello_app.h"

static csgi_body *application(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/html")};
    (void)state;
    csgi_start_response_call(start_response, "200 OK", headers, 1, NULL);
    return csgi_body_static(environ, "Hello World", 11);
}

static const csgi_app_type hello = {"hello", application, NULL};

int hello_app_new(csgi_app **out)
{
    return csgi_app_new(out, &hello, NULL);
}
