/* The body-kind spy of test_spy.h. */
#include "test_spy.h"

#include <check.h>

static csgi_body_kind seen_kind = CSGI_BODY_ITERATOR;

static csgi_body *spy_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    csgi_body *body = csgi_app_call(state, environ, sr);
    if (body)
        seen_kind = csgi_body_kind_of(body);
    return body;
}

static void spy_destroy(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type spy_type = {"spy", spy_call, spy_destroy};

csgi_app *test_spy_wrap(csgi_app *app)
{
    csgi_app *spy = NULL;
    ck_assert_int_eq(csgi_app_new(&spy, &spy_type, app), 0);
    return spy;
}

csgi_body_kind test_spy_kind(void)
{
    return seen_kind;
}

void test_spy_reset(void)
{
    seen_kind = CSGI_BODY_ITERATOR;
}
