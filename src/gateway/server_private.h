/*
 * The built-in HTTP server runner (internal): egg:csgi#http and
 * egg:Paste#http, which the loader knows as built-ins
 * (src/loader/registry.c). It lives beside the server it runs.
 */
#ifndef CSGI_GATEWAY_SERVER_PRIVATE_H
#define CSGI_GATEWAY_SERVER_PRIVATE_H

#include "http/access_log.h"

#include <csgi/loader.h>
#include <csgi/server.h>

/* Serve app as the [server:] section's local conf says, until SIGINT or
   SIGTERM. Takes app. */
int csgi_server__http_runner(csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_app *app, csgi_load_error *error);

/* Check the section's local conf without serving: every key known, every
   value valid. */
int csgi_server__http_check(const csgi_conf *local_conf, csgi_load_error *error);

/* The server's access log, or NULL (for tests: csgi_access_log__writes). */
csgi_access_log *csgi_server__access_log(csgi_server *server);

#endif
