/*
 * HTTP dates and log time stamps (internal): the one place csgi turns a
 * time_t into text and back. The engine's Date header, the public
 * csgi_date_format()/csgi_date_parse() and the log lines all use it.
 */
#ifndef CSGI_COMMON_DATE_H
#define CSGI_COMMON_DATE_H

#include <stddef.h>
#include <time.h>

/* Bytes of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", without a NUL. */
#define CSGI_DATE__LEN 29

/* Room for a log time stamp "1994-11-06T08:49:37Z" and its NUL. */
#define CSGI_DATE__STAMP_SIZE 32

/* Write when as an IMF-fixdate (RFC 9110 5.6.7): exactly CSGI_DATE__LEN
   bytes at out, no NUL. Returns 0, or CSGI_ERANGE for years outside
   0..9999 (out untouched). */
int csgi_date__format(time_t when, char *out);

/* Parse an HTTP date: the IMF-fixdate and the obsolete RFC 850 and asctime
   forms, with spaces around allowed (as csgi_date_parse() documents).
   Returns 0 with *out, or CSGI_EPARSE. */
int csgi_date__parse(const char *text, time_t *out);

/* The UTC time stamp of log lines, "1994-11-06T08:49:37Z", NUL-terminated. */
void csgi_date__stamp(time_t when, char out[CSGI_DATE__STAMP_SIZE]);

#endif
