/*
 * What the parts of examples/imageapi share: JSON answers, atomic JSON
 * files, ids and timestamps.
 */
#include "imageapi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

csgi_response *imageapi_json(csgi_request *request, int status, json_t *value)
{
    csgi_response *response = value ? csgi_handler_response(request) : NULL;
    if (!response || csgi_response_set_status(response, status) != 0 ||
        csgi_response_set_json(response, value) != 0) {
        json_decref(value);
        return NULL;
    }
    return response;
}

static int fail(char *err, size_t err_size, int code, const char *what, const char *path)
{
    snprintf(err, err_size, "%s %s: %s", what, path, strerror(code));
    return -code;
}

int imageapi_write_json_atomic(const char *path, json_t *value, char *err, size_t err_size)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return fail(err, err_size, ENOMEM, "cannot encode", path);
    size_t len = strlen(text);

    char temp[4096];
    if (snprintf(temp, sizeof(temp), "%s.tmp.XXXXXX", path) >= (int)sizeof(temp)) {
        free(text);
        return fail(err, err_size, ENAMETOOLONG, "cannot write", path);
    }
    int fd = mkstemp(temp);
    if (fd < 0) {
        free(text);
        return fail(err, err_size, errno, "cannot create a temporary file for", path);
    }
    int code = 0;
    for (size_t done = 0; done < len && !code;) {
        ssize_t n = write(fd, text + done, len - done);
        if (n > 0)
            done += (size_t)n;
        else if (n < 0 && errno != EINTR)
            code = errno;
    }
    free(text);
    if (!code && (fchmod(fd, 0640) != 0 || fsync(fd) != 0))
        code = errno;
    if (close(fd) != 0 && !code)
        code = errno;
    if (!code && rename(temp, path) != 0)
        code = errno;
    if (code) {
        unlink(temp);
        return fail(err, err_size, code, "cannot write", path);
    }

    /* The rename is durable only once the directory is on disk. */
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync(dir_fd);
        close(dir_fd);
    }
    return 0;
}

json_t *imageapi_read_json(const char *path, int *missing, char *err, size_t err_size)
{
    *missing = 0;
    json_error_t error;
    json_t *value = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (!value) {
        if (access(path, F_OK) != 0 && errno == ENOENT)
            *missing = 1;
        snprintf(err, err_size, "%s:%d: %s", path, error.line, error.text);
    }
    return value;
}

int imageapi_mkdirs(const char *path)
{
    char copy[4096];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
        return -ENAMETOOLONG;
    for (char *p = copy + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char was = *p;
            *p = '\0';
            if (mkdir(copy, 0750) != 0 && errno != EEXIST)
                return -errno;
            if (!(*p = was))
                return 0;
        }
    }
}

static int random_bytes(unsigned char *out, size_t len)
{
    while (len) {
        ssize_t n = getrandom(out, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

int imageapi_uuid(char out[37])
{
    unsigned char b[16];
    int rc = random_bytes(b, sizeof(b));
    if (rc)
        return rc;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

int imageapi_hex_id(char out[33])
{
    unsigned char b[16];
    int rc = random_bytes(b, sizeof(b));
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

void imageapi_time(time_t when, int micro, char out[32])
{
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(out, 32, micro ? "%Y-%m-%dT%H:%M:%S.000000Z" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int imageapi_parse_time(const char *text, time_t *out)
{
    struct tm tm = {0};
    const char *rest = text ? strptime(text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!rest)
        return -1;
    if (*rest == '.')
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            ;
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "") != 0 && strcmp(rest, "+00:00") != 0)
        return -1;
    *out = timegm(&tm);
    return 0;
}
