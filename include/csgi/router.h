/**
 * @file csgi/router.h
 * @brief A router: applications by URL pattern and method, with URL generation.
 *
 * A router maps (methods, pattern, name) routes to applications and is
 * itself an application, like csgi/composite.h's urlmap. A pattern is a
 * path of "/"-separated segments, each one of:
 *
 * - literal text, matched exactly: "images";
 * - "{name}": any non-empty segment;
 * - "{name:int}": one or more decimal digits;
 * - "{name:hex}": one or more hexadecimal digits (either case);
 * - "{name:REGEX}": a POSIX extended regular expression (regcomp(3),
 *   REG_EXTENDED) that must match the whole segment: "{id:[0-9a-f]{8}}".
 *
 * A variable is a whole segment ("img{id}.png" is refused), names are
 * C identifiers, unique within a pattern, and a regular expression cannot
 * hold "/". The named classes int and hex are checked without the regex
 * engine and are the cheap choice; a regular expression is compiled once,
 * when the route is added.
 *
 * Matching is on PATH_INFO as the environ gives it (percent-decoded),
 * segment by segment, without collapsing "//" and with a trailing "/"
 * significant ("/images/" is not "/images"); an empty PATH_INFO is "/".
 * Where several patterns could match a segment, a literal wins over a
 * variable, and variables are tried in the order their routes were added.
 * The routes are kept in a tree of segments, so a request costs a few
 * comparisons per segment, not one per route.
 *
 * Methods: the first matching route that accepts the request's method is
 * called. HEAD goes to a GET route when no route lists HEAD (the server
 * drops the body). OPTIONS without a route that lists it is answered
 * "204 No Content" with Allow. A path matched by routes that do not accept
 * the method gets "405 Method Not Allowed" with Allow listing the methods
 * of all of them, HEAD (with GET) and OPTIONS included. No match: 404, or
 * the not-found application. Both errors are csgi_response_error() pages.
 *
 * On a match, SCRIPT_NAME and PATH_INFO are left as they are, and the
 * environ key "csgi.routing_args" (a pointer value, the counterpart of
 * wsgiorg.routing_args) records the match: csgi_router_arg() reads a
 * variable's value, csgi_router_route() the route's name, and
 * csgi_router_url() builds the URL of any named route of the router,
 * prefixed with SCRIPT_NAME, so that a router mounted under urlmap makes
 * URLs that lead back to it. One key whatever the number of variables
 * keeps the match cheap; a router nested behind another replaces the
 * outer one's record.
 *
 * @code
 * csgi_router *router = NULL;
 * csgi_app *app = NULL;
 * if (csgi_router_new(&router) != 0)
 *     return 1;
 * csgi_router_add(router, "list_images", "GET", "/images", list);          // takes list
 * csgi_router_add(router, "show_image", "GET", "/images/{image_id}", show);
 * csgi_router_add(router, "servers", "GET,POST", "/v2/{project_id:hex}/servers", servers);
 * if (csgi_router_app(&app, &router) != 0)                                  // takes router
 *     return 1;
 * @endcode
 */
#ifndef CSGI_ROUTER_H
#define CSGI_ROUTER_H

#include "app.h"
#include "common.h"
#include "environ.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A router being built (opaque). Filled with csgi_router_add(), then
 * turned into an application with csgi_router_app(). Building is not
 * thread-safe; the application is read-only and serves any number of
 * threads.
 */
typedef struct csgi_router csgi_router;

/**
 * Create an empty router (it answers 404 to everything).
 *
 * @param out where to store the router (owned by the caller: pass it to
 *            csgi_router_app() or csgi_router_free())
 * @return 0, CSGI_EINVAL (out is NULL), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_router_new(csgi_router **out);

/**
 * Add a route.
 *
 * @param router  the router (borrowed); not turned into an application yet
 * @param name    the route's name, for csgi_router_url() and
 *                csgi_router_route() (copied), unique in the router; NULL for an unnamed route
 * @param methods the methods, separated by commas or blanks ("GET",
 *                "GET,POST"), or "*" or NULL for any method (copied)
 * @param pattern the pattern, starting with "/" (copied; see the file's
 *                documentation)
 * @param app     the application; takes the reference: freed with the
 *                router, and at once when this call fails
 * @return 0; CSGI_EINVAL (router, pattern or app NULL, a malformed pattern
 *         or regular expression, an empty or malformed method list, a name
 *         already used, or the same pattern already routed for one of the
 *         methods); CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_router_add(csgi_router *router, const char *name, const char *methods,
                                const char *pattern, csgi_app *app);

/**
 * Set the application that answers paths no route matches, instead of
 * the built-in 404 (like csgi_urlmap_set_not_found()).
 *
 * @param router the router (borrowed)
 * @param app    the application; takes the reference (freed with the
 *               router, or at once when this call fails); NULL restores
 *               the built-in 404
 * @return 0, or CSGI_EINVAL when router is NULL.
 */
CSGI_EXTERN int csgi_router_set_not_found(csgi_router *router, csgi_app *app);

/**
 * Turn a router into an application, which owns the router and its
 * applications.
 *
 * @param out    where to store the application (reference count 1)
 * @param router where the router is (takes it: *router is set to NULL, on
 *               success and on failure, when it is then freed)
 * @return 0, CSGI_EINVAL (a NULL argument), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_router_app(csgi_app **out, csgi_router **router);

/**
 * Free a router that was not turned into an application, with one
 * reference of each of its applications.
 *
 * @param router the router; accepts NULL
 */
CSGI_EXTERN void csgi_router_free(csgi_router *router);

/**
 * The value of a route variable in a request a router matched.
 *
 * @param environ the request (borrowed)
 * @param name    the variable's name, as in the pattern (borrowed)
 * @return the decoded value, NUL-terminated, borrowed until the request
 *         ends; NULL when no router matched the request, its route has no
 *         such variable, or an argument is NULL.
 */
CSGI_EXTERN const char *csgi_router_arg(csgi_environ *environ, const char *name);

/**
 * The name of the route a router matched for the request.
 *
 * @param environ the request (borrowed); NULL allowed
 * @return the name, borrowed from the router (valid while the request
 *         runs); NULL when no router matched or the route has no name.
 */
CSGI_EXTERN const char *csgi_router_route(csgi_environ *environ);

/**
 * Build the URL path of a named route of the router that matched the
 * request: SCRIPT_NAME, then the route's pattern with the variables
 * replaced by the values given, percent-encoded.
 *
 * With routers nested, the innermost router that matched is used.
 *
 * @param environ a request a router matched (borrowed)
 * @param route   the route's name (borrowed)
 * @param args    name, value, name, value, ..., NULL (borrowed): one
 *                value for each variable of the pattern; NULL when the
 *                pattern has none. Each value must match its variable's
 *                type and be non-empty.
 * @param out     where to store the path (in the request's arena,
 *                borrowed until the request ends)
 * @return 0; CSGI_EINVAL (a NULL argument, no router matched the request,
 *         a variable missing, unknown or given twice, a value that does
 *         not match); CSGI_ENOTFOUND (no route of that name);
 *         CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_router_url(csgi_environ *environ, const char *route, const char *const *args,
                                const char **out);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_ROUTER_H */
