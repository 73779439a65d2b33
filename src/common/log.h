/*
 * The one logger (internal). Everything csgi logs — the engine's refused
 * requests and failed accepts, the gateway's application failures, an
 * application's own lines (csgi_environ_log), the server stopping on a
 * signal — goes to the log function of the options (the public
 * csgi_log_fn of csgi_server_options, the engine's csgi_http__options.log),
 * or, without one, to standard error as one line:
 *
 *     2025-01-31T12:00:00Z csgi[4242] warning: the message
 *
 * It lives below the engine so that the engine and the gateway cannot
 * write two formats.
 */
#ifndef CSGI_COMMON_LOG_H
#define CSGI_COMMON_LOG_H

#include <stdarg.h>

/* Log levels, most severe first: the numbers of the public CSGI_LOG_*. */
enum { CSGI_LOG__ERROR = 0, CSGI_LOG__WARN = 1, CSGI_LOG__INFO = 2, CSGI_LOG__DEBUG = 3 };

/* Where a log line goes: the type of the public csgi_log_fn. message is
   borrowed for the call. */
typedef void (*csgi_log__fn)(int level, const char *message, void *userdata);

/* The default log function: the line above on standard error. */
void csgi_log__stderr(int level, const char *message, void *userdata);

/* Format a message and hand it to log (NULL: csgi_log__stderr) when level
   is at most threshold (CSGI_LOG__ERROR is the most severe, 0). Messages
   longer than 1023 bytes are cut. */
void csgi_log__vwrite(csgi_log__fn log, void *userdata, int threshold, int level,
                      const char *format, va_list args) __attribute__((format(printf, 5, 0)));

void csgi_log__write(csgi_log__fn log, void *userdata, int threshold, int level, const char *format,
                     ...) __attribute__((format(printf, 5, 6)));

#endif
