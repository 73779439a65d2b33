/*
 * What an application answered (include/csgi/testing.h): the status, the
 * header fields, the whole body and the log lines of a run, kept in memory
 * by the test client's sink (client.c).
 */
#include "testing/testing_private.h"

#include "common/alloc.h"
#include "common/arena.h"
#include "common/status.h"
#include "common/vec.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

csgi_test_response *csgi_test__response_new(void)
{
    csgi_test_response *response = csgi__malloc(sizeof(*response));
    if (!response)
        return NULL;
    memset(response, 0, sizeof(*response));
    csgi_arena__init(&response->arena, NULL);
    return response;
}

void csgi_test_response_free(csgi_test_response *response)
{
    if (!response)
        return;
    csgi__free(response->body);
    csgi__free(response->logs);
    csgi_arena__clear(&response->arena);
    csgi__free(response);
}

/* Log lines a response keeps; later ones are dropped. */
#define LOG_LINES_MAX 65536

/* A line that does not fit (in memory, or beyond LOG_LINES_MAX) is dropped. */
void csgi_test__response_log(csgi_test_response *response, const char *line)
{
    void *logs = response->logs;
    if (csgi_vec__reserve(&logs, &response->log_capacity, sizeof(*response->logs),
                          response->log_count + 1, LOG_LINES_MAX) != 0)
        return;
    response->logs = logs;
    const char *copy = csgi_arena__strndup(&response->arena, line, strlen(line));
    if (copy)
        response->logs[response->log_count++] = copy;
}

int csgi_test__response_append(csgi_test_response *response, const void *data, size_t len)
{
    if (len > CSGI_TEST_BODY_MAX - response->body_len)
        return CSGI_ETOOBIG;
    /* The body and its NUL. */
    void *body = response->body;
    int rc = csgi_vec__reserve(&body, &response->body_capacity, 1, response->body_len + len + 1,
                               CSGI_TEST_BODY_MAX + 1);
    if (rc != 0)
        return rc;
    response->body = body;
    memcpy(response->body + response->body_len, data, len);
    response->body_len += len;
    response->body[response->body_len] = '\0';
    return 0;
}

int csgi_test__response_set_head(csgi_test_response *response, int code, const char *reason,
                                 size_t reason_len, const char *block, size_t block_len,
                                 int64_t length)
{
    csgi_arena *arena = &response->arena;
    size_t lines = length >= 0 ? 1 : 0;
    for (size_t i = 0; i < block_len; i++)
        lines += block[i] == '\n';
    char *status = csgi_arena__alloc(arena, reason_len + 5);
    csgi_test__field *fields = csgi_arena__alloc(arena, (lines ? lines : 1) * sizeof(*fields));
    char *text = csgi_arena__alloc(arena, block_len + 48);
    if (!status || !fields || !text)
        return CSGI_ENOMEM;
    snprintf(status, reason_len + 5, "%03d %.*s", code, (int)reason_len, reason);
    size_t count = 0;
    const char *p = block, *end = block + block_len;
    while (p < end) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!colon || !eol || colon > eol)
            break; /* cannot happen: head_build wrote the block */
        fields[count].name = text;
        memcpy(text, p, (size_t)(colon - p));
        text += colon - p;
        *text++ = '\0';
        const char *value = colon + 2;
        fields[count].value = text;
        memcpy(text, value, (size_t)(eol - value));
        text += eol - value;
        *text++ = '\0';
        count++;
        p = eol + 2;
    }
    if (length >= 0) {
        fields[count].name = "Content-Length";
        fields[count].value = text;
        snprintf(text, 24, "%lld", (long long)length);
        count++;
    }
    response->status = status;
    response->code = code;
    response->fields = fields;
    response->field_count = count;
    return 0;
}

int csgi_test__response_set_error(csgi_test_response *response, int code)
{
    static const char block[] = "Content-Type: text/plain; charset=utf-8\r\n";
    const char *reason = csgi_status__reason(code);
    char body[80];
    size_t body_len = csgi_status__error_text(body, sizeof(body), code, NULL);
    response->body_len = 0;
    if (response->body)
        response->body[0] = '\0';
    int rc = csgi_test__response_set_head(response, code, reason, strlen(reason), block,
                                          sizeof(block) - 1, (int64_t)body_len);
    return rc ? rc : csgi_test__response_append(response, body, body_len);
}

const char *csgi_test_response_status(const csgi_test_response *response)
{
    return response && response->status ? response->status : "";
}

int csgi_test_response_code(const csgi_test_response *response)
{
    return response ? response->code : 0;
}

const char *csgi_test_response_header_value(const csgi_test_response *response, const char *name,
                                            size_t n)
{
    if (!response || !name)
        return NULL;
    for (size_t i = 0; i < response->field_count; i++)
        if (strcasecmp(response->fields[i].name, name) == 0 && n-- == 0)
            return response->fields[i].value;
    return NULL;
}

const char *csgi_test_response_header(const csgi_test_response *response, const char *name)
{
    return csgi_test_response_header_value(response, name, 0);
}

size_t csgi_test_response_header_count(const csgi_test_response *response)
{
    return response ? response->field_count : 0;
}

int csgi_test_response_header_at(const csgi_test_response *response, size_t index,
                                 const char **name, const char **value)
{
    if (!response || index >= response->field_count)
        return 0;
    if (name)
        *name = response->fields[index].name;
    if (value)
        *value = response->fields[index].value;
    return 1;
}

const char *csgi_test_response_body(const csgi_test_response *response, size_t *len)
{
    if (len)
        *len = response ? response->body_len : 0;
    return response && response->body ? response->body : "";
}

int csgi_test_response_cut(const csgi_test_response *response)
{
    return response ? response->cut : 0;
}

int csgi_test_response_continued(const csgi_test_response *response)
{
    return response ? response->continued : 0;
}

const char *csgi_test_response_url(const csgi_test_response *response)
{
    return response && response->url ? response->url : "";
}

size_t csgi_test_response_redirects(const csgi_test_response *response)
{
    return response ? response->redirects : 0;
}

size_t csgi_test_response_log_count(const csgi_test_response *response)
{
    return response ? response->log_count : 0;
}

const char *csgi_test_response_log_at(const csgi_test_response *response, size_t index)
{
    return response && index < response->log_count ? response->logs[index] : NULL;
}

int csgi_test_response_log_contains(const csgi_test_response *response, const char *text)
{
    if (!response || !text)
        return 0;
    for (size_t i = 0; i < response->log_count; i++)
        if (strstr(response->logs[i], text))
            return 1;
    return 0;
}
