/*
 * The one logger (internal). Everything csgi logs — the engine's refused
 * requests, the gateway's application failures, an application's own lines
 * (csgi_environ_log), the server stopping on a signal — goes to the
 * csgi_log_fn of csgi_server_options, or, without one, to standard error
 * as one line:
 *
 *     2025-01-31T12:00:00Z csgi[4242] warning: the message
 */
#ifndef CSGI_GATEWAY_LOG_H
#define CSGI_GATEWAY_LOG_H

#include <csgi/server.h>

#include <stdarg.h>

/* The default csgi_log_fn: the line above on standard error. */
void csgi_log__stderr(int level, const char *message, void *userdata);

/* Format a message and hand it to log (NULL: csgi_log__stderr) when level
   is at most threshold (CSGI_LOG_ERROR is the most severe, 0). */
void csgi_log__vwrite(csgi_log_fn log, void *userdata, int threshold, int level, const char *format,
                      va_list args) __attribute__((format(printf, 5, 0)));

void csgi_log__write(csgi_log_fn log, void *userdata, int threshold, int level, const char *format,
                     ...) __attribute__((format(printf, 5, 6)));

#endif
