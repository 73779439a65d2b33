/*
 * The bundled middleware (internal): the INI factories the loader knows as
 * built-ins. Each middleware is one file under src/middleware/ holding the
 * filter and its factory.
 */
#ifndef CSGI_MIDDLEWARE_MIDDLEWARE_H
#define CSGI_MIDDLEWARE_MIDDLEWARE_H

#include <csgi/loader.h>

#include <stdbool.h>
#include <stddef.h>

/* known_keys.c: CSGI_EINVAL, with error at the key, when conf has a key not
   in known (NULL-terminated) nor oslo_config_project, oslo_config_file or
   oslo_config_program (accepted and ignored); middleware names it in the text. */
int csgi_middleware__known_keys(const csgi_conf *conf, const char *middleware,
                                const char *const *known, csgi_load_error *error);

/* lint.c: egg:csgi#lint and egg:Paste#lint, conf key strict (boolean). */
int csgi_lint__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                              const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);

/* error_format.c: egg:csgi#error_format, conf key format (text, json or
   html). */
int csgi_error_format__filter_factory(csgi_app **out, csgi_loader *loader,
                                      const csgi_conf *global_conf, const csgi_conf *local_conf,
                                      csgi_app *next, csgi_load_error *error);

/* threadpool.c: egg:csgi#threadpool, conf keys threads, queue,
   retry_after, client_max_body_size, client_body_buffer_size and
   client_body_temp_path. */
int csgi_threadpool__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error);

/* request_id.c: oslo.middleware's RequestId (egg:oslo.middleware#request_id,
   oslo_middleware:RequestId.factory,
   oslo_middleware.request_id:RequestId.factory). */
int csgi_request_id__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error);

/* sizelimit.c: oslo.middleware's RequestBodySizeLimiter
   (egg:oslo.middleware#sizelimit, oslo_middleware:RequestBodySizeLimiter.factory,
   oslo_middleware.sizelimit:RequestBodySizeLimiter.factory), conf key
   max_request_body_size. */
int csgi_sizelimit__filter_factory(csgi_app **out, csgi_loader *loader,
                                   const csgi_conf *global_conf, const csgi_conf *local_conf,
                                   csgi_app *next, csgi_load_error *error);

/* catch_errors.c: oslo.middleware's CatchErrors (egg:oslo.middleware#catch_errors,
   oslo_middleware:CatchErrors.factory,
   oslo_middleware.catch_errors:CatchErrors.factory). */
int csgi_catch_errors__filter_factory(csgi_app **out, csgi_loader *loader,
                                      const csgi_conf *global_conf, const csgi_conf *local_conf,
                                      csgi_app *next, csgi_load_error *error);

/* healthcheck.c: oslo_middleware's Healthcheck, as an application and as
   a filter; conf keys path, detailed, backends, disable_by_file_path,
   disable_by_file_paths, enable_by_file_paths, allowed_source_ranges and
   ignore_proxied_requests (backends in healthcheck_backends.c). */
int csgi_healthcheck__app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                                  const csgi_conf *local_conf, csgi_load_error *error);
int csgi_healthcheck__filter_factory(csgi_app **out, csgi_loader *loader,
                                     const csgi_conf *global_conf, const csgi_conf *local_conf,
                                     csgi_app *next, csgi_load_error *error);

/* http_proxy_to_wsgi.c: oslo_middleware's HTTPProxyToWSGI; conf keys
   enable_proxy_headers_parsing and trusted_proxies. */
int csgi_http_proxy_to_wsgi__filter_factory(csgi_app **out, csgi_loader *loader,
                                            const csgi_conf *global_conf,
                                            const csgi_conf *local_conf, csgi_app *next,
                                            csgi_load_error *error);

/* cors.c: oslo_middleware's CORS; conf keys allowed_origin,
   allow_credentials, expose_headers, max_age, allow_methods and
   allow_headers. */
int csgi_cors__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                              const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);

/* auth_token.c: keystonemiddleware's auth_token
   (egg:keystonemiddleware#auth_token,
   keystonemiddleware.auth_token:filter_factory). */
int csgi_auth_token__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error);

/* escape.c: bytes (len) into out (size bytes, NUL-terminated) for a log
   line: control bytes, bytes above 0x7e, '"' and backslash as \xHH; cut with
   "..." when out is too small. Returns the length written. */
size_t csgi_middleware__escape(char *out, size_t size, const char *bytes, size_t len);

/* debug.c: oslo.middleware's Debug (egg:oslo.middleware#debug,
   oslo_middleware:Debug.factory, oslo_middleware.debug:Debug.factory). */
int csgi_debug__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                               const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);

/* translogger.c: Paste's TransLogger (egg:Paste#translogger,
   paste.translogger:make_filter, egg:csgi#translogger); conf keys
   logger_name, logging_level, setup_console_handler, set_logger_level and
   file. */
int csgi_translogger__filter_factory(csgi_app **out, csgi_loader *loader,
                                     const csgi_conf *global_conf, const csgi_conf *local_conf,
                                     csgi_app *next, csgi_load_error *error);

/* basic_auth.c: HTTP Basic authentication against an htpasswd file
   (egg:csgi#basic_auth); conf keys htpasswd and realm. */
int csgi_basic_auth__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error);

/* ratelimit.c: a token bucket per client address or project
   (egg:csgi#ratelimit); conf keys rate, burst, max_clients and by. */
int csgi_ratelimit__filter_factory(csgi_app **out, csgi_loader *loader,
                                   const csgi_conf *global_conf, const csgi_conf *local_conf,
                                   csgi_app *next, csgi_load_error *error);
/* static.c: Paste's StaticURLParser, an application (egg:csgi#static,
   egg:Paste#static, paste.urlparser:make_static); conf keys document_root,
   index, cache_max_age, mime_types and follow_symlinks_outside. */
int csgi_static__app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_load_error *error);

/* gzip.c: Paste's gzipper, a filter (egg:csgi#gzip, egg:Paste#gzip,
   paste.gzipper:make_gzip_middleware); conf keys compress_level,
   min_length and compress_types. */
int csgi_gzip__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                              const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);

/* proxy.c: Paste's proxy (egg:Paste#proxy, egg:csgi#proxy), an application
   that forwards each request to a backend with the HTTP client; conf keys
   address, allowed_request_methods, suppress_http_headers, and csgi's
   timeout and connect_timeout (seconds) and ca_file. */
int csgi_proxy__app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                            const csgi_conf *local_conf, csgi_load_error *error);
/* networks.c: address lists (http_proxy_to_wsgi's trusted_proxies,
   healthcheck's allowed_source_ranges). One entry: an address or a CIDR
   block. */
typedef struct csgi_middleware__network {
    int family; /* AF_INET or AF_INET6 */
    unsigned char address[16];
    unsigned bits;
} csgi_middleware__network;

/* text (len bytes) as an IPv4 or IPv6 address into out: AF_INET, AF_INET6,
   or 0 when it is none. */
int csgi_middleware__parse_address(const char *text, size_t len, unsigned char out[16]);

/* conf's key as a list of ADDRESS or ADDRESS/BITS separated by commas or
   blanks: *out (owned: csgi__free; NULL when the list is empty or absent)
   and *count. CSGI_EINVAL, with error at the key, for an entry that is
   neither; CSGI_ENOMEM. */
int csgi_middleware__networks_parse(const csgi_conf *conf, const char *key,
                                    csgi_middleware__network **out, size_t *count,
                                    csgi_load_error *error);

/* Whether address (text, NULL allowed) is in one of networks. */
bool csgi_middleware__networks_match(const csgi_middleware__network *networks, size_t count,
                                     const char *address);
/* csgi_middleware__networks_match() for the client of a request
   (REMOTE_ADDR), from the connection's address while no middleware
   changed it. */
bool csgi_middleware__networks_match_client(const csgi_middleware__network *networks, size_t count,
                                            csgi_environ *environ);

/* audit.c: keystonemiddleware's audit (egg:keystonemiddleware#audit,
   keystonemiddleware.audit:filter_factory); conf keys audit_map_file,
   ignore_req_list and file (service_name and log_name accepted). */
int csgi_audit__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                               const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);

/* line_file.c: the csgi key `file` of the logging filters. Open file
   (not empty: else CSGI_EINVAL at the key) for appending, created with
   mode, into *out; errors at the key "file" of conf. */
int csgi_middleware__open_file(const csgi_conf *conf, const char *file, int mode, int *out,
                               csgi_load_error *error);

/* line_file.c: line (len bytes, its '\n' included) to fd in one write(2);
   a failure is logged as "could not write <what>: reason". */
void csgi_middleware__write_line(csgi_environ *environ, int fd, const char *line, size_t len,
                                 const char *what);

#endif
