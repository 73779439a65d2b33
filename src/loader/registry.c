/*
 * Which factory a reference names: the ones the host program registered
 * (csgi_loader_register_*), then the ones built into csgi, then a shared
 * object's (module.c).
 */
#include "common/alloc.h"
#include "common/chartab.h"
#include "composite/composite_private.h"
#include "gateway/server_private.h"
#include "loader/loader_private.h"
#include "middleware/middleware.h"

#include <stdbool.h>
#include <string.h>

/* The built-in factories; each lives beside what it builds. */
static const struct builtin {
    const char *reference;
    csgi_factory_kind kind;
    csgi_app_factory_fn app_factory;
    csgi_filter_factory_fn filter_factory;
    csgi_server_runner_fn server_runner;
    csgi_loader__server_check_fn server_check;
} builtins[] = {
    {"egg:csgi#urlmap", CSGI_FACTORY_COMPOSITE, csgi_urlmap__factory, NULL, NULL, NULL},
    {"egg:Paste#urlmap", CSGI_FACTORY_COMPOSITE, csgi_urlmap__factory, NULL, NULL, NULL},
    {"egg:csgi#cascade", CSGI_FACTORY_COMPOSITE, csgi_cascade__factory, NULL, NULL, NULL},
    {"egg:Paste#cascade", CSGI_FACTORY_COMPOSITE, csgi_cascade__factory, NULL, NULL, NULL},
    {"egg:csgi#router", CSGI_FACTORY_COMPOSITE, csgi_router__factory, NULL, NULL, NULL},
    {"egg:csgi#lint", CSGI_FACTORY_FILTER, NULL, csgi_lint__filter_factory, NULL, NULL},
    {"egg:Paste#lint", CSGI_FACTORY_FILTER, NULL, csgi_lint__filter_factory, NULL, NULL},
    {"egg:csgi#error_format", CSGI_FACTORY_FILTER, NULL, csgi_error_format__filter_factory, NULL,
     NULL},
    {"egg:csgi#threadpool", CSGI_FACTORY_FILTER, NULL, csgi_threadpool__filter_factory, NULL, NULL},
    {"egg:csgi#http", CSGI_FACTORY_SERVER, NULL, NULL, csgi_server__http_runner,
     csgi_server__http_check},
    {"egg:Paste#http", CSGI_FACTORY_SERVER, NULL, NULL, csgi_server__http_runner,
     csgi_server__http_check},
    /* oslo.middleware's request_id (request_id.c), under the names OpenStack's
       api-paste.ini files use: a `use = egg:...` or a paste.filter_factory value. */
    {"egg:oslo.middleware#request_id", CSGI_FACTORY_FILTER, NULL, csgi_request_id__filter_factory,
     NULL, NULL},
    {"oslo_middleware:RequestId.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_request_id__filter_factory, NULL, NULL},
    {"oslo_middleware.request_id:RequestId.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_request_id__filter_factory, NULL, NULL},
    /* oslo.middleware's sizelimit (sizelimit.c), under the same kinds of names. */
    {"egg:oslo.middleware#sizelimit", CSGI_FACTORY_FILTER, NULL, csgi_sizelimit__filter_factory,
     NULL, NULL},
    {"oslo_middleware:RequestBodySizeLimiter.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_sizelimit__filter_factory, NULL, NULL},
    {"oslo_middleware.sizelimit:RequestBodySizeLimiter.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_sizelimit__filter_factory, NULL, NULL},
    /* oslo.middleware's catch_errors (catch_errors.c), under the same kinds of names. */
    {"egg:oslo.middleware#catch_errors", CSGI_FACTORY_FILTER, NULL,
     csgi_catch_errors__filter_factory, NULL, NULL},
    {"oslo_middleware:CatchErrors.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_catch_errors__filter_factory, NULL, NULL},
    {"oslo_middleware.catch_errors:CatchErrors.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_catch_errors__filter_factory, NULL, NULL},
    /* healthcheck.c, oslo.middleware's Healthcheck under the names OpenStack
       api-paste.ini files give it (the text after paste.app_factory =,
       paste.filter_factory = or use =, matched as written). */
    {"egg:oslo.middleware#healthcheck", CSGI_FACTORY_APP, csgi_healthcheck__app_factory, NULL, NULL,
     NULL},
    {"oslo_middleware:Healthcheck.app_factory", CSGI_FACTORY_APP, csgi_healthcheck__app_factory,
     NULL, NULL, NULL},
    {"oslo_middleware.healthcheck:Healthcheck.app_factory", CSGI_FACTORY_APP,
     csgi_healthcheck__app_factory, NULL, NULL, NULL},
    {"oslo_middleware:Healthcheck.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_healthcheck__filter_factory, NULL, NULL},
    {"oslo_middleware.healthcheck:Healthcheck.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_healthcheck__filter_factory, NULL, NULL},
    /* http_proxy_to_wsgi.c, oslo.middleware's HTTPProxyToWSGI, likewise. */
    {"egg:oslo.middleware#http_proxy_to_wsgi", CSGI_FACTORY_FILTER, NULL,
     csgi_http_proxy_to_wsgi__filter_factory, NULL, NULL},
    {"oslo_middleware:HTTPProxyToWSGI.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_http_proxy_to_wsgi__filter_factory, NULL, NULL},
    {"oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory", CSGI_FACTORY_FILTER, NULL,
     csgi_http_proxy_to_wsgi__filter_factory, NULL, NULL},
    /* cors.c, oslo.middleware's CORS, likewise. */
    {"egg:oslo.middleware#cors", CSGI_FACTORY_FILTER, NULL, csgi_cors__filter_factory, NULL, NULL},
    {"oslo_middleware:CORS.factory", CSGI_FACTORY_FILTER, NULL, csgi_cors__filter_factory, NULL,
     NULL},
    {"oslo_middleware.cors:filter_factory", CSGI_FACTORY_FILTER, NULL, csgi_cors__filter_factory,
     NULL, NULL},
    /* auth_token.c, keystonemiddleware's auth_token. */
    {"egg:keystonemiddleware#auth_token", CSGI_FACTORY_FILTER, NULL,
     csgi_auth_token__filter_factory, NULL, NULL},
    {"keystonemiddleware.auth_token:filter_factory", CSGI_FACTORY_FILTER, NULL,
     csgi_auth_token__filter_factory, NULL, NULL},
    /* Spellings Python accepts for the objects above that the blocks above
       do not list: healthcheck's filter under its entry point name (the
       same name as the app, in oslo.middleware's paste.filter_factory
       group), and CORS's classmethod through its own module. call: forms,
       egg: name variants and the old oslo.middleware module match the
       entries as written (csgi_loader__same_reference). */
    {"egg:oslo.middleware#healthcheck", CSGI_FACTORY_FILTER, NULL, csgi_healthcheck__filter_factory,
     NULL, NULL},
    {"oslo_middleware.cors:CORS.factory", CSGI_FACTORY_FILTER, NULL, csgi_cors__filter_factory,
     NULL, NULL},
    /* debug.c, oslo.middleware's Debug, likewise. */
    {"egg:oslo.middleware#debug", CSGI_FACTORY_FILTER, NULL, csgi_debug__filter_factory, NULL,
     NULL},
    {"oslo_middleware:Debug.factory", CSGI_FACTORY_FILTER, NULL, csgi_debug__filter_factory, NULL,
     NULL},
    {"oslo_middleware.debug:Debug.factory", CSGI_FACTORY_FILTER, NULL, csgi_debug__filter_factory,
     NULL, NULL},
    /* translogger.c, Paste's TransLogger. */
    {"egg:Paste#translogger", CSGI_FACTORY_FILTER, NULL, csgi_translogger__filter_factory, NULL,
     NULL},
    {"paste.translogger:make_filter", CSGI_FACTORY_FILTER, NULL, csgi_translogger__filter_factory,
     NULL, NULL},
    {"egg:csgi#translogger", CSGI_FACTORY_FILTER, NULL, csgi_translogger__filter_factory, NULL,
     NULL},
    /* basic_auth.c: HTTP Basic authentication against an htpasswd file. */
    {"egg:csgi#basic_auth", CSGI_FACTORY_FILTER, NULL, csgi_basic_auth__filter_factory, NULL, NULL},
    /* ratelimit.c: a token bucket per client address or project. */
    {"egg:csgi#ratelimit", CSGI_FACTORY_FILTER, NULL, csgi_ratelimit__filter_factory, NULL, NULL},
    /* static.c, Paste's StaticURLParser (egg:Paste#static), an application. */
    {"egg:csgi#static", CSGI_FACTORY_APP, csgi_static__app_factory, NULL, NULL, NULL},
    {"egg:Paste#static", CSGI_FACTORY_APP, csgi_static__app_factory, NULL, NULL, NULL},
    {"paste.urlparser:make_static", CSGI_FACTORY_APP, csgi_static__app_factory, NULL, NULL, NULL},
    /* gzip.c, Paste's gzipper (egg:Paste#gzip), a filter. */
    {"egg:csgi#gzip", CSGI_FACTORY_FILTER, NULL, csgi_gzip__filter_factory, NULL, NULL},
    {"egg:Paste#gzip", CSGI_FACTORY_FILTER, NULL, csgi_gzip__filter_factory, NULL, NULL},
    {"paste.gzipper:make_gzip_middleware", CSGI_FACTORY_FILTER, NULL, csgi_gzip__filter_factory,
     NULL, NULL},
    /* proxy.c, Paste's proxy on the HTTP client. */
    {"egg:Paste#proxy", CSGI_FACTORY_APP, csgi_proxy__app_factory, NULL, NULL, NULL},
    {"egg:csgi#proxy", CSGI_FACTORY_APP, csgi_proxy__app_factory, NULL, NULL, NULL},
    {"paste.proxy:make_proxy", CSGI_FACTORY_APP, csgi_proxy__app_factory, NULL, NULL, NULL},
    /* audit.c, keystonemiddleware's audit (CADF events). */
    {"egg:keystonemiddleware#audit", CSGI_FACTORY_FILTER, NULL, csgi_audit__filter_factory, NULL,
     NULL},
    {"keystonemiddleware.audit:filter_factory", CSGI_FACTORY_FILTER, NULL,
     csgi_audit__filter_factory, NULL, NULL},
};

char *csgi_loader__normalise(const char *reference)
{
    /* URI schemes are case-insensitive, as in PasteDeploy. */
    size_t scheme = csgi_char__equal_nocase(reference, "egg:", 4)    ? 3
                    : csgi_char__equal_nocase(reference, "call:", 5) ? 4
                                                                     : 0;
    size_t len = strlen(reference);
    int add = scheme == 3 && !strchr(reference, '#');
    char *copy = csgi__malloc(len + (add ? 5 : 0) + 1);
    if (!copy)
        return NULL;
    memcpy(copy, reference, len + 1);
    for (size_t i = 0; i < scheme; i++)
        copy[i] = (char)csgi_char__lower((unsigned char)copy[i]);
    if (add)
        memcpy(copy + len, "#main", 6);
    return copy;
}

/*
 * Whether two normalised references name the same factory, as PasteDeploy
 * would resolve them (docs/config.md, "How a reference is matched"):
 *
 *   - egg:DIST#NAME: DIST is a distribution name, found the way
 *     importlib.metadata finds one (PasteDeploy 3): case-insensitive, and
 *     any run of '-', '_' and '.' is one separator (PEP 503), so
 *     egg:paste#urlmap is egg:Paste#urlmap and egg:oslo_middleware#cors is
 *     egg:oslo.middleware#cors. NAME, the entry point, is compared exactly.
 *   - call:MODULE:OBJECT is the object MODULE:OBJECT names (what a factory
 *     key's value names too): PasteDeploy looks both up the same way.
 *   - with oslo_alias (built-ins only), the module oslo.middleware (the
 *     namespace package oslo.middleware shipped before 2.0, which old
 *     api-paste.ini files name) is oslo_middleware.
 */
static const char *without_call(const char *reference)
{
    if (strncmp(reference, "call:", 5) == 0 && strchr(reference + 5, ':'))
        return reference + 5;
    return reference;
}

static int is_separator(char c)
{
    return c == '-' || c == '_' || c == '.';
}

/* DIST of a and b (each up to its '#'), compared as PEP 503 names. */
static int same_distribution(const char *a, const char *b)
{
    for (;;) {
        if (is_separator(*a) && is_separator(*b)) {
            while (is_separator(*a))
                a++;
            while (is_separator(*b))
                b++;
            continue;
        }
        if (*a == '#' || *b == '#' || !*a || !*b)
            return *a == *b;
        if (csgi_char__lower((unsigned char)*a) != csgi_char__lower((unsigned char)*b))
            return 0;
        a++;
        b++;
    }
}

static const char *oslo_module(const char *reference)
{
    static const char legacy[] = "oslo.middleware";
    size_t n = sizeof(legacy) - 1;
    if (strncmp(reference, legacy, n) == 0 && (reference[n] == ':' || reference[n] == '.'))
        return reference + n;
    return NULL;
}

int csgi_loader__same_reference(const char *written, const char *known, int oslo_alias)
{
    int egg = strncmp(written, "egg:", 4) == 0;
    if (egg || strncmp(known, "egg:", 4) == 0) {
        if (!egg || strncmp(known, "egg:", 4) != 0 || !same_distribution(written + 4, known + 4))
            return 0;
        const char *a = strchr(written, '#'), *b = strchr(known, '#');
        return a && b && strcmp(a, b) == 0;
    }
    written = without_call(written);
    known = without_call(known);
    const char *rest = oslo_alias ? oslo_module(written) : NULL;
    if (rest)
        return strncmp(known, "oslo_middleware", 15) == 0 && strcmp(known + 15, rest) == 0;
    return strcmp(written, known) == 0;
}

static csgi_loader__factory *find_registration(csgi_loader *loader, const char *normalised)
{
    for (csgi_loader__factory *r = loader->registrations; r; r = r->next)
        if (csgi_loader__same_reference(normalised, r->reference, 0))
            return r;
    return NULL;
}

/* Register a copy of factory under reference. usable: the caller's own
   arguments are present and fit; CSGI_EINVAL when not, or for a missing,
   empty or already registered reference. */
static int add_registration(csgi_loader *loader, const char *reference, bool usable,
                            const csgi_loader__factory *factory)
{
    if (!loader || !reference || !usable || !reference[0])
        return CSGI_EINVAL;
    char *normalised = csgi_loader__normalise(reference);
    if (!normalised)
        return CSGI_ENOMEM;
    if (find_registration(loader, normalised)) {
        csgi__free(normalised);
        return CSGI_EINVAL;
    }
    csgi_loader__factory *r = csgi__calloc(1, sizeof(*r));
    if (!r) {
        csgi__free(normalised);
        return CSGI_ENOMEM;
    }
    *r = *factory;
    r->reference = normalised;
    r->next = loader->registrations;
    loader->registrations = r;
    return 0;
}

int csgi_loader_register_app(csgi_loader *loader, const char *reference, csgi_factory_kind kind,
                             csgi_app_factory_fn factory)
{
    bool fits = kind == CSGI_FACTORY_APP || kind == CSGI_FACTORY_COMPOSITE;
    csgi_loader__factory r = {.kind = kind, .app_factory = factory};
    return add_registration(loader, reference, factory && fits, &r);
}

int csgi_loader_register_filter(csgi_loader *loader, const char *reference, csgi_factory_kind kind,
                                csgi_filter_factory_fn factory)
{
    bool fits = kind == CSGI_FACTORY_FILTER || kind == CSGI_FACTORY_FILTER_APP;
    csgi_loader__factory r = {.kind = kind, .filter_factory = factory};
    return add_registration(loader, reference, factory && fits, &r);
}

int csgi_loader_register_server(csgi_loader *loader, const char *reference,
                                csgi_server_runner_fn runner)
{
    csgi_loader__factory r = {.kind = CSGI_FACTORY_SERVER, .server_runner = runner};
    return add_registration(loader, reference, runner != NULL, &r);
}

void csgi_loader__free_registrations(csgi_loader *loader)
{
    for (csgi_loader__factory *r = loader->registrations, *next; r; r = next) {
        next = r->next;
        csgi__free(r->reference);
        csgi__free(r);
    }
    loader->registrations = NULL;
}

int csgi_loader__wants_composite(const csgi_conf__context *context)
{
    return context->kind == CSGI_CONF__KIND_COMPOSITE ||
           context->factory_kind == CSGI_CONF__KIND_COMPOSITE ||
           context->protocol == CSGI_CONF__PROTOCOL_COMPOSITE_FACTORY ||
           context->protocol == CSGI_CONF__PROTOCOL_COMPOSIT_FACTORY;
}

static int fits(csgi_factory_kind kind, csgi_loader__want want)
{
    switch (want) {
    case CSGI_LOADER__WANT_APP: return kind == CSGI_FACTORY_APP || kind == CSGI_FACTORY_COMPOSITE;
    case CSGI_LOADER__WANT_FILTER:
        return kind == CSGI_FACTORY_FILTER || kind == CSGI_FACTORY_FILTER_APP;
    case CSGI_LOADER__WANT_SERVER: return kind == CSGI_FACTORY_SERVER;
    }
    return 0;
}

/* The built-in the reference names. One name may have a factory of each
   kind, as an egg's entry point name may stand in several groups
   (egg:oslo.middleware#healthcheck is an app and a filter): the one that
   fits want, else the first (whose kind is then the error). */
static const struct builtin *find_builtin(const char *normalised, csgi_loader__want want)
{
    const struct builtin *first = NULL;
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        const struct builtin *b = &builtins[i];
        if (!csgi_loader__same_reference(normalised, b->reference, 1))
            continue;
        if (fits(b->kind, want))
            return b;
        if (!first)
            first = b;
    }
    return first;
}

const char *csgi_loader__builtin_reference(size_t i, csgi_factory_kind *kind)
{
    if (i >= sizeof(builtins) / sizeof(builtins[0]))
        return NULL;
    if (kind)
        *kind = builtins[i].kind;
    return builtins[i].reference;
}

int csgi_loader__lookup(csgi_loader *loader, const csgi_conf__context *context,
                        csgi_loader__want want, csgi_loader__factory *found,
                        const csgi_loader__factory **out, csgi_load_error *error)
{
    *out = NULL;
    char *normalised = csgi_loader__normalise(context->factory.text);
    if (!normalised) {
        csgi_load_error__code(error, CSGI_ENOMEM);
        return CSGI_ENOMEM;
    }
    int rc = 0;
    const csgi_loader__factory *r = find_registration(loader, normalised);
    const struct builtin *b = r ? NULL : find_builtin(normalised, want);
    if (b) {
        memset(found, 0, sizeof(*found));
        found->kind = b->kind;
        found->app_factory = b->app_factory;
        found->filter_factory = b->filter_factory;
        found->server_runner = b->server_runner;
        found->server_check = b->server_check;
        r = found;
    }
    if (!r)
        rc = csgi_loader__lookup_module(loader, context, normalised, want, found, &r, error);
    csgi__free(normalised);
    *out = r;
    return rc;
}
