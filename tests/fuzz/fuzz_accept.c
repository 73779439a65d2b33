/*
 * libFuzzer target for the header parsers of csgi/negotiate.h: Accept,
 * Accept-Language, Accept-Encoding, Range, If-None-Match lists, entity
 * tags and HTTP dates.
 *
 * The input is "HEADER\nOFFER": the header value is given to every parser
 * (as a heap copy of its exact size, so AddressSanitizer sees any read past
 * the NUL), the offer (or a fixed list) to the negotiation functions.
 *
 * Invariants: qualities stay in 0..1000; the best offer has the highest
 * quality, the first of equals, and -1 means every quality is 0; parsed
 * ranges are well-formed and resolved ones lie inside the length; a parsed
 * entity tag lies inside the input; a parsed date formats and parses back to
 * the same time. A violation aborts.
 */
#include "fuzz_common.h"

#include <csgi/negotiate.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*quality_fn)(const char *header, const char *offer);
typedef int (*best_fn)(const char *header, const char *const *offers, size_t count);

static void check_list(const char *header, const char *const *offers, size_t count,
                       quality_fn quality, best_fn best)
{
    int top = 0, top_index = -1;
    for (size_t i = 0; i < count; i++) {
        int q = quality(header, offers[i]);
        CHECK(q >= 0 && q <= 1000);
        if (q > top) {
            top = q;
            top_index = (int)i;
        }
    }
    CHECK(best(header, offers, count) == top_index);
}

static void check_ranges(const char *header, uint64_t length)
{
    csgi_range ranges[CSGI_RANGE_MAX];
    size_t count = 99;
    int rc = csgi_range_parse(header, ranges, CSGI_RANGE_MAX, &count);
    if (rc == 0) {
        CHECK(count >= 1 && count <= CSGI_RANGE_MAX);
        for (size_t i = 0; i < count; i++) {
            if (ranges[i].first < 0)
                CHECK(ranges[i].first == -1 && ranges[i].last >= 0);
            else
                CHECK(ranges[i].last == -1 || ranges[i].last >= ranges[i].first);
        }
    } else {
        CHECK(rc == CSGI_EPARSE || rc == CSGI_ETOOBIG);
        CHECK(count == 0);
    }
    csgi_range chosen = {-7, -7};
    rc = csgi_range_resolve(header, (int64_t)length, &chosen);
    if (rc == 0)
        CHECK(chosen.first >= 0 && chosen.first <= chosen.last && (uint64_t)chosen.last < length);
    else
        CHECK(rc == CSGI_ERANGE || rc == CSGI_EPARSE || rc == CSGI_ETOOBIG);
}

static void check_date(const char *header)
{
    time_t when = 0;
    if (csgi_date_parse(header, &when) != 0)
        return;
    char text[CSGI_DATE_SIZE];
    if (csgi_date_format(when, text) != 0)
        return;
    time_t back = 1;
    CHECK(csgi_date_parse(text, &back) == 0);
    CHECK(back == when);
}

static void check_etags(const char *header, size_t len, const char *offer)
{
    csgi_etag tag;
    if (csgi_etag_parse(header, len, &tag) == 0) {
        CHECK(tag.opaque >= header && tag.opaque + tag.len <= header + len);
        CHECK(csgi_etag_compare(&tag, &tag, 1) == 1);
        CHECK(csgi_etag_list_match(header, &tag, 1, 1) == 1);
    }
    csgi_etag mine;
    const csgi_etag *etag = NULL;
    if (csgi_etag_parse(offer, strlen(offer), &mine) == 0)
        etag = &mine;
    int weak = csgi_etag_list_match(header, etag, 1, 1);
    int strong = csgi_etag_list_match(header, etag, 0, 1);
    CHECK(weak == 0 || weak == 1);
    CHECK(strong == 0 || strong == 1);
    CHECK(!strong || weak); /* a strong match is also a weak one */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *newline = memchr(data, '\n', size);
    size_t header_len = newline ? (size_t)(newline - data) : size;
    size_t offer_len = newline ? size - header_len - 1 : 0;
    char *header = malloc(header_len + 1);
    char *offer = malloc(offer_len + 1);
    CHECK(header && offer);
    memcpy(header, data, header_len);
    header[header_len] = '\0';
    if (offer_len)
        memcpy(offer, newline + 1, offer_len);
    offer[offer_len] = '\0';

    const char *media[] = {offer, "text/html", "application/json", "text/plain;format=flowed",
                           "*/*"};
    const char *languages[] = {offer, "en", "en-GB", "fr", "zh-Hant-TW"};
    const char *codings[] = {offer, "gzip", "br", "identity", "x-compress"};
    check_list(header, media, 5, csgi_accept_quality, csgi_accept_best);
    check_list(header, languages, 5, csgi_accept_language_quality, csgi_accept_language_best);
    check_list(header, codings, 5, csgi_accept_encoding_quality, csgi_accept_encoding_best);
    check_list(NULL, media, 5, csgi_accept_quality, csgi_accept_best);

    uint64_t length = 0;
    for (size_t i = 0; i < offer_len && i < 12; i++)
        length = length * 10 + (uint64_t)(offer[i] & 7);
    check_ranges(header, length);
    check_date(header);
    check_etags(header, header_len, offer);

    free(header);
    free(offer);
    return 0;
}
