#include "test_alphabet.h"

#include <csgi/handler.h>

#include <check.h>

#include <stdlib.h>
#include <string.h>

csgi_response *test_alphabet_response(csgi_request *request, size_t len)
{
    csgi_response *response = csgi_handler_response(request);
    char *body = malloc(len);
    if (!response || !body) {
        free(body);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + i % 26);
    int rc = csgi_response_set_body(response, body, len);
    free(body);
    return rc == 0 ? response : NULL;
}

void test_alphabet_check(const char *body, size_t len, size_t expected_len)
{
    ck_assert_uint_eq(len, expected_len);
    for (size_t i = 0; i < len; i += 4099)
        ck_assert_int_eq(body[i], 'a' + (int)(i % 26));
}

int test_backend_begin(csgi_request *request, const char *big_path, csgi_response **out,
                       const char **body, size_t *len)
{
    const char *path = csgi_environ_get(csgi_request_environ(request), "PATH_INFO");
    if (strcmp(path, big_path) == 0) {
        *out = test_alphabet_response(request, 1 << 20);
        return 1;
    }
    *out = csgi_handler_response(request);
    if (!*out || csgi_request_body(request, 8u << 20, body, len) != 0)
        return -1;
    return 0;
}
