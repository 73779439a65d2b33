/**
 * @file csgi/negotiate.h
 * @brief Content negotiation, HTTP dates, entity tags and byte ranges.
 *
 * Plain functions on header values, as the environ holds them
 * (csgi_environ_get(environ, "HTTP_ACCEPT")): nothing is allocated and
 * every pointer is borrowed for the call only.
 *
 * The parsers are lenient where RFC 9110 lets a recipient be: a malformed
 * element of a list (a media range without a slash, a q-value such as
 * "q=1.5" or "q=0.1234") is skipped, never fatal. A header whose every
 * element is malformed counts as absent.
 *
 * @code
 * static const char *const offers[] = {"application/json", "text/html"};
 * int best = csgi_accept_best(csgi_environ_get(environ, "HTTP_ACCEPT"), offers, 2);
 * if (best < 0)
 *     return not_acceptable(environ, start_response);
 * @endcode
 */
#ifndef CSGI_NEGOTIATE_H
#define CSGI_NEGOTIATE_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Accept, Accept-Language, Accept-Encoding ---------------------------- */

/**
 * How much an Accept header (RFC 9110 12.5.1) wants one media type.
 *
 * The most specific media range matching the offer gives its quality:
 * "text/html;level=1" before "text/html" before "text/&#42;" before "*&#47;*".
 * A range with parameters matches an offer carrying the same parameters.
 *
 * @param header the Accept value, or NULL when the request had none
 *               (everything is acceptable then); borrowed
 * @param offer  a media type such as "text/html" or "text/html;level=1";
 *               borrowed
 * @return the quality in thousandths: 0 (not acceptable) to 1000.
 */
CSGI_EXTERN int csgi_accept_quality(const char *header, const char *offer);

/**
 * The offer an Accept header prefers.
 *
 * @param header the Accept value, or NULL (then the first offer wins)
 * @param offers media types in the server's order of preference (borrowed);
 *               of two offers with the same quality the earlier wins
 * @param count  the number of offers
 * @return the index of the best offer, or -1 when none is acceptable
 *         (every offer has quality 0, or count is 0).
 */
CSGI_EXTERN int csgi_accept_best(const char *header, const char *const *offers, size_t count);

/**
 * How much an Accept-Language header wants one language tag, by the basic
 * filtering of RFC 4647 3.3.1: the range "en" matches "en" and "en-GB",
 * "*" matches every tag; the longest matching range gives the quality.
 *
 * @param header the Accept-Language value, or NULL (everything acceptable)
 * @param offer  a language tag such as "en-GB" (compared without case)
 * @return the quality in thousandths, 0 to 1000.
 */
CSGI_EXTERN int csgi_accept_language_quality(const char *header, const char *offer);

/**
 * The language tag an Accept-Language header prefers.
 *
 * @return the index of the best offer, or -1 (as csgi_accept_best()).
 */
CSGI_EXTERN int csgi_accept_language_best(const char *header, const char *const *offers,
                                          size_t count);

/**
 * How much an Accept-Encoding header (RFC 9110 12.5.3) wants one content
 * coding. "identity" is acceptable unless the header refuses it
 * ("identity;q=0", or "*;q=0" without an "identity" element); "x-gzip" is
 * taken as "gzip".
 *
 * @param header the Accept-Encoding value, or NULL (everything acceptable)
 * @param offer  a coding such as "gzip" or "identity"
 * @return the quality in thousandths, 0 to 1000.
 */
CSGI_EXTERN int csgi_accept_encoding_quality(const char *header, const char *offer);

/**
 * The content coding an Accept-Encoding header prefers.
 *
 * @return the index of the best offer, or -1 (as csgi_accept_best()).
 */
CSGI_EXTERN int csgi_accept_encoding_best(const char *header, const char *const *offers,
                                          size_t count);

/* ---- HTTP dates ------------------------------------------------------------ */

/** Bytes csgi_date_format() writes, with the terminating NUL. */
#define CSGI_DATE_SIZE 30

/**
 * Parse an HTTP date (RFC 9110 5.6.7): the IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994"
 * forms. A two-digit year more than 50 years in the future is taken in the
 * past century. The weekday is checked for spelling, not against the date.
 *
 * @param text the date (borrowed); surrounding spaces are allowed
 * @param out  where to store the time; not changed on error
 * @return 0, or CSGI_EPARSE (malformed, or fields out of range).
 */
CSGI_EXTERN int csgi_date_parse(const char *text, time_t *out);

/**
 * Format a time as an IMF-fixdate.
 *
 * @param when the time; years 0 to 9999 only
 * @param out  where to write CSGI_DATE_SIZE bytes, NUL-terminated
 * @return 0, or CSGI_ERANGE (then out holds "").
 */
CSGI_EXTERN int csgi_date_format(time_t when, char out[CSGI_DATE_SIZE]);

/* ---- Entity tags ------------------------------------------------------------ */

/** An entity tag (RFC 9110 8.8.3): its opaque part, without the quotes. */
typedef struct csgi_etag {
    const char *opaque; /**< borrowed from the parsed text; not NUL-terminated */
    size_t len;         /**< bytes of opaque */
    int weak;           /**< 1 for W/"..." */
} csgi_etag;

/**
 * Parse one entity tag: "xyz" or W/"xyz".
 *
 * @param text the tag (borrowed; out->opaque points into it)
 * @param len  its length
 * @param out  where to store it; not changed on error
 * @return 0, or CSGI_EPARSE.
 */
CSGI_EXTERN int csgi_etag_parse(const char *text, size_t len, csgi_etag *out);

/**
 * Compare two entity tags (RFC 9110 8.8.3.2); both borrowed for the call.
 *
 * @param weak 1 for the weak comparison (the opaque parts are equal), 0 for
 *             the strong one (also neither is weak)
 * @return 1 when they match, else 0.
 */
CSGI_EXTERN int csgi_etag_compare(const csgi_etag *a, const csgi_etag *b, int weak);

/**
 * Whether an If-None-Match or If-Match list matches an entity tag.
 *
 * The list is "*" (matches any current representation) or entity tags
 * separated by commas; malformed elements are skipped.
 *
 * @param header the header value (borrowed), not NULL
 * @param etag   the representation's tag, or NULL when it has none (only
 *               "*" can match then, and only when has_representation)
 * @param weak   1 for the weak comparison (If-None-Match), 0 for the strong
 *               one (If-Match)
 * @param has_representation whether the resource currently exists, for "*"
 * @return 1 when it matches, else 0.
 */
CSGI_EXTERN int csgi_etag_list_match(const char *header, const csgi_etag *etag, int weak,
                                     int has_representation);

/* ---- Ranges ------------------------------------------------------------------- */

/** At most this many ranges of one Range header are looked at; more makes it malformed. */
#define CSGI_RANGE_MAX 32

/**
 * One byte range of a Range header (RFC 9110 14.1.2).
 *
 * As parsed: "first-last" has both, "first-" has last -1, the suffix
 * "-count" has first -1 and last = count. As resolved against a length:
 * first and last are the inclusive offsets of the bytes to send.
 */
typedef struct csgi_range {
    int64_t first;
    int64_t last;
} csgi_range;

/**
 * Parse a Range header ("bytes=0-99, -500").
 *
 * @param header the Range value (borrowed)
 * @param ranges where to store the ranges, in the header's order
 * @param max    room in ranges
 * @param count  where to store how many were stored
 * @return 0; CSGI_EPARSE (not "bytes=", a malformed range, "last" below
 *         "first", or no range at all: RFC 9110 says to ignore the header
 *         then); CSGI_ETOOBIG (more than max ranges).
 */
CSGI_EXTERN int csgi_range_parse(const char *header, csgi_range *ranges, size_t max, size_t *count);

/**
 * What to send for a Range header and a representation of length bytes.
 *
 * csgi serves a single range (as WebOb does): a header asking for several
 * satisfiable ranges gets the whole representation, which RFC 9110 allows
 * and which protects the server from many small or overlapping ranges.
 * Ranges beyond the end are cut to it.
 *
 * @param header the Range value (borrowed)
 * @param length the representation's length in bytes (>= 0)
 * @param out    where to store the resolved range on success
 * @return 0 with *out the one range to send (answer 206); CSGI_ERANGE when
 *         no range is satisfiable (answer 416 with "Content-Range:
 *         bytes *&#47;length"); CSGI_EPARSE (malformed: ignore the header)
 *         or CSGI_ETOOBIG (several ranges: send everything).
 */
CSGI_EXTERN int csgi_range_resolve(const char *header, int64_t length, csgi_range *out);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_NEGOTIATE_H */
