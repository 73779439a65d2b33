/*
 * The request's negotiation and conditional headers (csgi/request.h), read
 * through the parsers of csgi/negotiate.h.
 */
#include <csgi/negotiate.h>
#include <csgi/request.h>

static const char *header(csgi_request *request, const char *key)
{
    return csgi_environ_get(csgi_request_environ(request), key);
}

int csgi_request_accept_best(csgi_request *request, const char *const *offers, size_t count)
{
    return request ? csgi_accept_best(header(request, "HTTP_ACCEPT"), offers, count) : -1;
}

int csgi_request_accept_language_best(csgi_request *request, const char *const *offers,
                                      size_t count)
{
    return request
               ? csgi_accept_language_best(header(request, "HTTP_ACCEPT_LANGUAGE"), offers, count)
               : -1;
}

int csgi_request_accept_encoding_best(csgi_request *request, const char *const *offers,
                                      size_t count)
{
    return request
               ? csgi_accept_encoding_best(header(request, "HTTP_ACCEPT_ENCODING"), offers, count)
               : -1;
}

int csgi_request_if_modified_since(csgi_request *request, time_t *out)
{
    if (!request || !out)
        return CSGI_EINVAL;
    const char *value = header(request, "HTTP_IF_MODIFIED_SINCE");
    if (!value)
        return CSGI_ENOTFOUND;
    return csgi_date_parse(value, out);
}

int csgi_request_if_none_match(csgi_request *request, const csgi_etag *etag)
{
    if (!request)
        return CSGI_EINVAL;
    const char *value = header(request, "HTTP_IF_NONE_MATCH");
    if (!value)
        return CSGI_ENOTFOUND;
    return csgi_etag_list_match(value, etag, 1, etag != NULL);
}

int csgi_request_range(csgi_request *request, int64_t length, csgi_range *out)
{
    if (!request || !out)
        return CSGI_EINVAL;
    const char *value = header(request, "HTTP_RANGE");
    if (!value)
        return CSGI_ENOTFOUND;
    return csgi_range_resolve(value, length, out);
}
