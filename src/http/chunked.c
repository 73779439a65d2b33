/*
 * The chunked transfer coding decoder (RFC 9112 7.1).
 *
 * A byte-at-a-time state machine for the framing (size lines, the CRLF after
 * each chunk's data, the trailer section) and a single step for the data:
 * the data bytes are never looked at, only counted. Each call consumes one
 * run of bytes of one kind, so the caller can hand the data on in place.
 */
#include "http/parser.h"

#include "common/chartab.h"

#include <string.h>

/* Chunk sizes above this are refused: no real body is that large, and the
   bound keeps the arithmetic far from overflow. */
#define MAX_CHUNK_SIZE ((uint64_t)1 << 60)

enum chunk_state {
    CHUNK_SIZE_START = 0, /* at the start of a chunk-size line */
    CHUNK_SIZE,           /* inside the chunk-size digits */
    CHUNK_EXT,            /* after the digits: chunk extensions, see ext_state */
    CHUNK_SIZE_LF,        /* after the CR ending a chunk-size line */
    CHUNK_DATA,           /* inside chunk data, remaining bytes to go */
    CHUNK_DATA_CR,        /* after chunk data, before its CR */
    CHUNK_DATA_LF,        /* after the CR following chunk data */
    CHUNK_TRAILER_START,  /* at the start of a trailer line or of the final empty line */
    CHUNK_TRAILER_NAME,   /* inside a trailer field name */
    CHUNK_TRAILER_VALUE,  /* after the colon of a trailer field */
    CHUNK_TRAILER_LF,     /* after the CR ending a trailer field line */
    CHUNK_END_LF,         /* after the CR of the final empty line */
    CHUNK_DONE,
    CHUNK_FAILED
};

/* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ) (RFC 9112 7.1.1) */
enum ext_state {
    EXT_REFUSED = 0,    /* not a state: ext_next's answer for a byte not allowed */
    EXT_AFTER_SIZE,     /* after the size digits: ';', BWS or CR */
    EXT_AFTER_VALUE,    /* after a complete extension: ';', BWS or CR */
    EXT_WS_BEFORE_SEMI, /* BWS that only a ';' may follow */
    EXT_NAME_START,     /* after ';': BWS, then the first tchar of a name */
    EXT_NAME,           /* inside a name: ';', '=', BWS or CR may follow */
    EXT_WS_AFTER_NAME,  /* BWS after a name: ';' or '=' */
    EXT_VALUE_START,    /* after '=': BWS, then a token or a quoted-string */
    EXT_TOKEN_VALUE,    /* inside a token value */
    EXT_QUOTED,         /* inside a quoted-string */
    EXT_QUOTED_PAIR     /* after a backslash in a quoted-string */
};

/* The kinds of byte the extension states outside quoted-strings tell apart. */
enum ext_byte { BYTE_SEMI, BYTE_EQUALS, BYTE_DQUOTE, BYTE_TCHAR, BYTE_WS, BYTE_OTHER, BYTE_KINDS };

/* Where each extension state outside quoted-strings goes on each kind of
   byte; a kind left out is refused (EXT_REFUSED). */
static const unsigned char ext_next[EXT_QUOTED][BYTE_KINDS] = {
    [EXT_AFTER_SIZE] = {[BYTE_SEMI] = EXT_NAME_START, [BYTE_WS] = EXT_WS_BEFORE_SEMI},
    [EXT_AFTER_VALUE] = {[BYTE_SEMI] = EXT_NAME_START, [BYTE_WS] = EXT_WS_BEFORE_SEMI},
    [EXT_WS_BEFORE_SEMI] = {[BYTE_SEMI] = EXT_NAME_START, [BYTE_WS] = EXT_WS_BEFORE_SEMI},
    [EXT_NAME_START] = {[BYTE_TCHAR] = EXT_NAME, [BYTE_WS] = EXT_NAME_START},
    [EXT_NAME] = {[BYTE_SEMI] = EXT_NAME_START,
                  [BYTE_EQUALS] = EXT_VALUE_START,
                  [BYTE_TCHAR] = EXT_NAME,
                  [BYTE_WS] = EXT_WS_AFTER_NAME},
    [EXT_WS_AFTER_NAME] = {[BYTE_SEMI] = EXT_NAME_START,
                           [BYTE_EQUALS] = EXT_VALUE_START,
                           [BYTE_WS] = EXT_WS_AFTER_NAME},
    [EXT_VALUE_START] =
        {[BYTE_DQUOTE] = EXT_QUOTED, [BYTE_TCHAR] = EXT_TOKEN_VALUE, [BYTE_WS] = EXT_VALUE_START},
    [EXT_TOKEN_VALUE] = {[BYTE_SEMI] = EXT_NAME_START,
                         [BYTE_TCHAR] = EXT_TOKEN_VALUE,
                         [BYTE_WS] = EXT_WS_BEFORE_SEMI},
};

static enum ext_byte ext_byte_kind(unsigned char c)
{
    if (c == ';')
        return BYTE_SEMI;
    if (c == '=')
        return BYTE_EQUALS;
    if (c == '"')
        return BYTE_DQUOTE;
    if (csgi_char__is_tchar(c))
        return BYTE_TCHAR;
    return csgi_char__is_ws(c) ? BYTE_WS : BYTE_OTHER;
}

/* The states that only take one given byte: that byte, the state it leads
   to, and why any other byte is refused. */
static const struct {
    unsigned char byte;
    unsigned char next;
    const char *reason;
} one_byte[] = {
    [CHUNK_DATA_CR] = {'\r', CHUNK_DATA_LF, "missing CRLF after chunk data"},
    [CHUNK_DATA_LF] = {'\n', CHUNK_SIZE_START, "missing CRLF after chunk data"},
    [CHUNK_TRAILER_LF] = {'\n', CHUNK_TRAILER_START, "CR not followed by LF in trailer"},
};

void csgi_http__chunked_init(csgi_http__chunked *decoder)
{
    memset(decoder, 0, sizeof(*decoder));
    decoder->max_line = 4096;
    decoder->max_trailer = 8192;
    decoder->state = CHUNK_SIZE_START;
    decoder->ext_state = EXT_AFTER_SIZE;
}

static csgi_http__chunk_result chunk_fail(csgi_http__chunked *decoder, csgi_http__error *error,
                                          int status, const char *reason)
{
    decoder->state = CHUNK_FAILED;
    error->status = status;
    error->reason = reason;
    return CSGI_HTTP__CHUNK_ERROR;
}

/* One byte of chunk extensions other than CR. Returns 0 if it is not allowed. */
static int ext_step(csgi_http__chunked *decoder, unsigned char c)
{
    int next;
    if (decoder->ext_state == EXT_QUOTED)
        next = c == '"'                  ? EXT_AFTER_VALUE
               : c == '\\'               ? EXT_QUOTED_PAIR
               : csgi_char__is_qdtext(c) ? EXT_QUOTED
                                         : EXT_REFUSED;
    else if (decoder->ext_state == EXT_QUOTED_PAIR)
        next = csgi_char__is_field(c) ? EXT_QUOTED : EXT_REFUSED;
    else
        next = ext_next[decoder->ext_state][ext_byte_kind(c)];
    if (next == EXT_REFUSED)
        return 0;
    decoder->ext_state = next;
    return 1;
}

/*
 * Bytes are framing except chunk data (handled before the loop, in one
 * step) and trailer field lines. A run of framing ends where data or a
 * trailer line begins; a run of trailer lines ends at the CR of the final
 * empty line. The decoder moves on byte by byte, so whatever the split of
 * the input it passes through the same states.
 */
csgi_http__chunk_result csgi_http__chunked_decode(csgi_http__chunked *decoder, const char *buf,
                                                  size_t len, size_t *consumed,
                                                  csgi_http__error *error)
{
    const unsigned char *p = (const unsigned char *)buf;
    int trailer = 0; /* the bytes consumed so far in this call are trailer bytes */

    *consumed = 0;
    if (decoder->state == CHUNK_DONE)
        return chunk_fail(decoder, error, 400, "chunked body already ended");
    if (decoder->state == CHUNK_FAILED)
        return chunk_fail(decoder, error, 400, "chunked decoder called after an error");
    if (len == 0)
        return chunk_fail(decoder, error, 400, "no input for the chunked decoder");

    if (decoder->state == CHUNK_DATA) {
        size_t n = decoder->remaining < len ? (size_t)decoder->remaining : len;
        decoder->remaining -= n;
        if (decoder->remaining == 0)
            decoder->state = CHUNK_DATA_CR;
        *consumed = n;
        return CSGI_HTTP__CHUNK_DATA;
    }
    if (decoder->state >= CHUNK_TRAILER_NAME && decoder->state <= CHUNK_TRAILER_LF)
        trailer = 1;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        int digit;

        switch (decoder->state) {
        case CHUNK_SIZE_START:
            digit = csgi_char__hex_value(c);
            if (digit < 0)
                return chunk_fail(decoder, error, 400, "invalid chunk size");
            decoder->remaining = (unsigned)digit;
            decoder->line_len = 1;
            decoder->state = CHUNK_SIZE;
            break;

        case CHUNK_SIZE:
            digit = csgi_char__hex_value(c);
            if (digit >= 0) {
                /* 16 * (2^56 + 1) already exceeds 2^60: check before shifting. */
                if (decoder->remaining > MAX_CHUNK_SIZE / 16)
                    return chunk_fail(decoder, error, 400, "chunk size too large");
                decoder->remaining = decoder->remaining * 16 + (unsigned)digit;
                if (decoder->remaining > MAX_CHUNK_SIZE)
                    return chunk_fail(decoder, error, 400, "chunk size too large");
                if (++decoder->line_len > decoder->max_line)
                    return chunk_fail(decoder, error, 400, "chunk size line too long");
                break;
            }
            /* The size is complete: a chunk the body limit cannot hold is
               refused now, before any of its data is waited for. */
            if (decoder->max_body) {
                if (decoder->remaining > decoder->max_body - decoder->declared)
                    return chunk_fail(decoder, error, 413, "chunk size above the body limit");
                decoder->declared += decoder->remaining;
            }
            decoder->state = CHUNK_EXT;
            decoder->ext_state = EXT_AFTER_SIZE;
            /* fall through */
        case CHUNK_EXT:
            if (c == '\r') {
                /* The line may end after the size, a name or a value, not
                   after whitespace, '=', ';' or inside a quoted-string. */
                if (decoder->ext_state != EXT_AFTER_SIZE && decoder->ext_state != EXT_AFTER_VALUE &&
                    decoder->ext_state != EXT_NAME && decoder->ext_state != EXT_TOKEN_VALUE)
                    return chunk_fail(decoder, error, 400, "malformed chunk extension");
                decoder->state = CHUNK_SIZE_LF;
                break;
            }
            if (c == '\n')
                return chunk_fail(decoder, error, 400, "bare LF in chunk size line");
            if (++decoder->line_len > decoder->max_line)
                return chunk_fail(decoder, error, 400, "chunk size line too long");
            if (!ext_step(decoder, c))
                return chunk_fail(decoder, error, 400,
                                  decoder->ext_state == EXT_AFTER_SIZE
                                      ? "invalid chunk size"
                                      : "malformed chunk extension");
            break;

        case CHUNK_SIZE_LF:
            if (c != '\n')
                return chunk_fail(decoder, error, 400, "CR not followed by LF in chunk size line");
            decoder->line_len = 0;
            if (decoder->remaining == 0) {
                /* the last-chunk: the trailer section follows */
                decoder->trailer_len = 0;
                decoder->state = CHUNK_TRAILER_START;
                break;
            }
            decoder->state = CHUNK_DATA;
            *consumed = i + 1;
            return CSGI_HTTP__CHUNK_FRAMING;

        case CHUNK_DATA_CR:
        case CHUNK_DATA_LF:
        case CHUNK_TRAILER_LF:
            if (c != one_byte[decoder->state].byte)
                return chunk_fail(decoder, error, 400, one_byte[decoder->state].reason);
            decoder->state = one_byte[decoder->state].next;
            break;

        case CHUNK_TRAILER_START:
            if (c == '\r') {
                /* The final empty line is framing: end the run of trailer
                   bytes first. */
                if (trailer) {
                    *consumed = i;
                    return CSGI_HTTP__CHUNK_TRAILER;
                }
                decoder->state = CHUNK_END_LF;
                break;
            }
            if (!trailer && i > 0) {
                *consumed = i;
                return CSGI_HTTP__CHUNK_FRAMING;
            }
            trailer = 1;
            if (c == '\n')
                return chunk_fail(decoder, error, 400, "bare LF in trailer");
            if (csgi_char__is_ws(c))
                return chunk_fail(decoder, error, 400, "obsolete line folding in trailer");
            if (!csgi_char__is_tchar(c))
                return chunk_fail(decoder, error, 400, "invalid byte in trailer field name");
            decoder->state = CHUNK_TRAILER_NAME;
            break;

        case CHUNK_TRAILER_NAME:
            if (c == ':')
                decoder->state = CHUNK_TRAILER_VALUE;
            else if (csgi_char__is_ws(c))
                return chunk_fail(decoder, error, 400, "whitespace before trailer colon");
            else if (!csgi_char__is_tchar(c))
                return chunk_fail(decoder, error, 400, "invalid byte in trailer field name");
            break;

        case CHUNK_TRAILER_VALUE:
            if (c == '\r')
                decoder->state = CHUNK_TRAILER_LF;
            else if (!csgi_char__is_field(c))
                return chunk_fail(decoder, error, 400, "control byte in trailer value");
            break;

        case CHUNK_END_LF:
            if (c != '\n')
                return chunk_fail(decoder, error, 400, "CR not followed by LF after trailer");
            decoder->state = CHUNK_DONE;
            *consumed = i + 1;
            return CSGI_HTTP__CHUNK_DONE;

        default: return chunk_fail(decoder, error, 400, "chunked decoder in an invalid state");
        }

        if (trailer && ++decoder->trailer_len > decoder->max_trailer)
            return chunk_fail(decoder, error, 431, "trailer section too large");
    }

    *consumed = len;
    return trailer ? CSGI_HTTP__CHUNK_TRAILER : CSGI_HTTP__CHUNK_FRAMING;
}
