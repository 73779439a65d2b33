/**
 * @file csgi/composite.h
 * @brief Built-in composite applications: urlmap and cascade.
 *
 * A composite application holds several applications and picks, per
 * request, the one that answers: Paste's urlmap (by URL prefix, host and
 * port) and cascade (the first one that does not answer 404). Both are
 * ordinary applications built on the public protocol of csgi/app.h, and
 * both take the applications given to them: freeing the composite frees
 * them. An application reached by several routes is shared with
 * csgi_app_ref(), one reference per route.
 *
 * @code
 * csgi_urlmap *map = NULL;
 * csgi_app *app = NULL;
 * if (csgi_urlmap_new(&map) != 0)
 *     return 1;
 * csgi_urlmap_add(map, "/v2", api_v2);                 // takes api_v2
 * csgi_urlmap_add(map, "/", csgi_app_ref(files));      // files is shared
 * csgi_urlmap_add(map, "domain admin.example.com /", files);
 * if (csgi_urlmap_app(&app, &map) != 0)                // takes map
 *     return 1;
 * return csgi_serve(app, "127.0.0.1", 8080);           // takes app
 * @endcode
 */
#ifndef CSGI_COMPOSITE_H
#define CSGI_COMPOSITE_H

#include "app.h"
#include "common.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- urlmap ------------------------------------------------------------------ */

/**
 * A URL map being built (opaque): routes from URL prefixes to applications.
 *
 * A map is filled with csgi_urlmap_add() and then turned into an
 * application with csgi_urlmap_app(). Building a map is not thread-safe;
 * the application it becomes is read-only and serves any number of threads.
 */
typedef struct csgi_urlmap csgi_urlmap;

/**
 * Create an empty URL map.
 *
 * An empty map answers 404 to every request.
 *
 * @param out where to store the map (owned by the caller: pass it to
 *            csgi_urlmap_app() or csgi_urlmap_free())
 * @return 0, CSGI_EINVAL (out is NULL), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_urlmap_new(csgi_urlmap **out);

/**
 * Route a URL prefix, optionally restricted to a host and port, to an
 * application.
 *
 * The key has one of the forms of Paste's urlmap:
 *
 * - a path prefix: "/v2", "/" (every path);
 * - words: "domain HOST", "port N" and a path, in any order, each at most
 *   once, separated by blanks: "domain example.com port 8080 /x". "port"
 *   needs "domain"; the path may be left out (then it is "/"). HOST is a
 *   name, an IPv4 address or an IPv6 address in brackets, and may carry
 *   ":PORT" instead of the "port" word;
 * - a URL: "http://HOST[:PORT]/path" or "https://HOST[:PORT]/path".
 *
 * The path is normalised: runs of "/" become one and a trailing "/" is
 * removed, so "/a//b/" is the prefix "/a/b" and "/" is the empty prefix.
 * Host names are compared without regard to case.
 *
 * How a request is matched:
 *
 * - Keys with a host come first, then keys without; within each group the
 *   longest path comes first. (Paste orders keys with a host by the host's
 *   text, so that "domain a.com /" may win over "domain a.com port 80 /x";
 *   csgi prefers the longer path, and on equal paths the key with a port.)
 * - A prefix matches whole path segments only: "/v2" matches the paths
 *   "/v2" and "/v2/..." but never "/v21" or "/v2.1". Runs of "/" in the
 *   request's PATH_INFO are collapsed before matching.
 * - The request's host and port come from HTTP_HOST, or from SERVER_NAME
 *   and SERVER_PORT when there is no Host header. A key without a port
 *   matches any port; a key with a port only that port (a Host header
 *   without a port means 80 for http and 443 for https).
 * - On a match, the prefix is appended to SCRIPT_NAME and PATH_INFO becomes
 *   the rest of the (collapsed) path, "" or starting with "/", before the
 *   application is called. Without a match, SCRIPT_NAME and PATH_INFO are
 *   left as they were and the not-found application answers
 *   (csgi_urlmap_set_not_found()).
 *
 * @param map the map (borrowed); must not have been turned into an
 *            application yet
 * @param key the key, NUL-terminated (borrowed; copied)
 * @param app the application; takes the reference: it is freed with the
 *            map, and freed at once when this call fails
 * @return 0; CSGI_EINVAL for a NULL argument, a malformed key (a path not
 *         starting with "/", an unknown word, "domain" or "port" given
 *         twice or without a value, "port" without "domain", a port that
 *         is not a number from 1 to 65535, a path given twice), or a key
 *         equal after normalisation to one already in the map (Paste
 *         replaces the older route silently; csgi refuses it); CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_urlmap_add(csgi_urlmap *map, const char *key, csgi_app *app);

/**
 * Set the application that answers requests no key matches (Paste's
 * not_found_app), replacing the built-in 404.
 *
 * It is called with SCRIPT_NAME and PATH_INFO unchanged.
 *
 * @param map the map (borrowed)
 * @param app the application; takes the reference (freed with the map, or
 *            at once when this call fails); NULL restores the built-in 404
 * @return 0, or CSGI_EINVAL when map is NULL.
 */
CSGI_EXTERN int csgi_urlmap_set_not_found(csgi_urlmap *map, csgi_app *app);

/**
 * Let the built-in 404 describe the map.
 *
 * Off by default: the 404 is a short text/plain "Not Found" that reveals
 * nothing about the routes. On, its body also lists the keys of the map (in
 * matching order) and the request's SCRIPT_NAME, PATH_INFO and HTTP_HOST,
 * as Paste's does. Meant for development only. No effect when a not-found
 * application is set.
 *
 * @param map   the map (borrowed); NULL is ignored
 * @param debug non-zero to list the map
 */
CSGI_EXTERN void csgi_urlmap_set_debug(csgi_urlmap *map, int debug);

/**
 * Turn a map into an application.
 *
 * The application owns the map and its applications: freeing it (its last
 * reference) frees them all.
 *
 * @param out where to store the application (reference count 1, owned by
 *            the caller)
 * @param map where the map is (takes it: *map is set to NULL, on success
 *            and on failure; on failure the map and its applications are
 *            freed)
 * @return 0, CSGI_EINVAL (a NULL argument), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_urlmap_app(csgi_app **out, csgi_urlmap **map);

/**
 * Free a map that was not turned into an application, with its
 * applications and its not-found application (one reference each).
 *
 * @param map the map; accepts NULL
 */
CSGI_EXTERN void csgi_urlmap_free(csgi_urlmap *map);

/* ---- cascade ----------------------------------------------------------------- */

/**
 * Create a cascade: an application that tries several applications in turn
 * until one answers with a status not in a catch list (Paste's cascade).
 *
 * For each request, every application but the last is called with a
 * start-response of the cascade's own (csgi_start_response_new()). When it
 * starts its response with a status in the catch list, the cascade closes
 * the body it returned, without reading it, and tries the next
 * application; SCRIPT_NAME and PATH_INFO are restored first, so that
 * routing done by the failed application does not leak. Any other status
 * is passed on at once and its body returned as it is: a streaming body
 * streams through untouched. The last application is called with the
 * start-response the cascade was given, so its answer (404 included) is
 * passed through whatever it is.
 *
 * An application may call start-response after it returned (answering
 * later): the cascade then returns a body of its own that waits for the
 * status, and goes on to the next application from there if the status is
 * caught. An application that fails (returns NULL) ends the cascade: the
 * server answers 500.
 *
 * Limits, compared with Paste:
 *
 * - The request body (csgi.input) can be read only once, and the cascade
 *   does not buffer it: an application that reads it and then answers a
 *   caught status leaves the next one the unread rest (none). Paste copies
 *   wsgi.input to memory or a temporary file first; the public API has no
 *   way to give the next application a fresh stream. Put the applications
 *   that read the body last, or let only the last one read it.
 * - Each application sees the same environ, not a copy: keys other than
 *   SCRIPT_NAME and PATH_INFO that a failed application set stay set.
 * - Bytes a caught application writes with csgi_start_response_write() are
 *   refused (CSGI_ESTATE), since its response was never started; Paste
 *   silently discards them.
 *
 * @param out           where to store the cascade (reference count 1)
 * @param apps          count applications, tried in this order; the array
 *                      is borrowed, each application taken (freed with the
 *                      cascade, or at once when this call fails). NULL
 *                      entries are not allowed.
 * @param count         the number of applications, at least 1
 * @param catch_statuses status codes (100 to 999) that mean "try the next
 *                      one" (borrowed; copied), or NULL for {404}
 * @param catch_count   the number of catch_statuses; 0 with NULL
 * @return 0; CSGI_EINVAL (out or apps NULL, count 0, a NULL application, a
 *         status out of range, catch_count without catch_statuses);
 *         CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_cascade_new(csgi_app **out, csgi_app **apps, size_t count,
                                 const int *catch_statuses, size_t catch_count);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_COMPOSITE_H */
