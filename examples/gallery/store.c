/*
 * The gallery's files: STATE/files/USER/ID.data holds the bytes and
 * ID.json the metadata ({"name", "type", "size", "time"}), where ID is 32
 * random hex digits. The name a browser sent is only metadata: it never
 * becomes a path. The metadata is written to a temporary file and renamed,
 * so a listing sees a file whole or not at all.
 */
#include "gallery.h"

#include <openssl/rand.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int gallery_store_valid_id(const char *id)
{
    size_t i = 0;
    for (; id && i < 32; i++)
        if (!strchr("0123456789abcdef", id[i]) || id[i] == '\0')
            return 0;
    return id && id[i] == '\0';
}

/* STATE/files/USER, or with id STATE/files/USER/ID.SUFFIX. */
static int path_of(char *out, size_t size, const gallery_config *config, const char *user,
                   const char *id, const char *suffix)
{
    int n = id ? snprintf(out, size, "%s/files/%s/%s.%s", config->state_dir, user, id, suffix)
               : snprintf(out, size, "%s/files/%s", config->state_dir, user);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* The name as metadata (it is never a path: a "/" stays a character of the
   name, and downloads replace it): no control characters, bytes that are
   not UTF-8 replaced, at most 200 bytes, never empty. */
static char *clean_name(const char *name, size_t len)
{
    const char *base = name;
    if (len > 200)
        len = 200;
    int utf8 = csgi_request_text_is_utf8(base, len);
    char *clean = malloc(len + 8);
    size_t n = 0;
    for (size_t i = 0; clean && i < len; i++) {
        unsigned char c = (unsigned char)base[i];
        if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80))
            clean[n++] = '_';
        else
            clean[n++] = (char)c;
    }
    if (clean && (n == 0 || strcmp(clean, "..") == 0 || (n == 1 && clean[0] == '.')))
        n = (size_t)snprintf(clean, 8, "unnamed");
    if (clean)
        clean[n] = '\0';
    return clean;
}

/* A media type as "type/subtype" of token characters, else the default. */
static const char *clean_type(const char *type)
{
    static const char token[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                "!#$&^_.+-";
    size_t len = type ? strcspn(type, ";") : 0, slashes = 0;
    while (len > 0 && type[len - 1] == ' ')
        len--;
    for (size_t i = 0; i < len; i++) {
        if (type[i] == '/')
            slashes++;
        else if (!strchr(token, type[i]))
            return "application/octet-stream";
    }
    if (slashes != 1 || len > 100 || type[0] == '/' || type[len - 1] == '/')
        return "application/octet-stream";
    return type;
}

int gallery_store_save(const gallery_config *config, const char *user, const csgi_form_file *file,
                       char id_out[33])
{
    char dir[4096], data[4096], meta[4096], temp[4200];
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    for (int i = 0; i < 16; i++)
        snprintf(id_out + 2 * i, 3, "%02x", raw[i]);
    snprintf(dir, sizeof(dir), "%s/files", config->state_dir);
    mkdir(dir, 0700);
    if (path_of(dir, sizeof(dir), config, user, NULL, NULL) != 0 ||
        (mkdir(dir, 0700) != 0 && errno != EEXIST) ||
        path_of(data, sizeof(data), config, user, id_out, "data") != 0 ||
        path_of(meta, sizeof(meta), config, user, id_out, "json") != 0)
        return -1;
    /* A file spooled to STATE/tmp is linked into place: no byte copied */
    int rc = csgi_form_file_save(file, AT_FDCWD, data) == 0 ? 0 : -1;
    char *name = clean_name(file->filename, file->filename_len);
    json_t *value =
        name ? json_pack("{sssssIsI}", "name", name, "type", clean_type(file->content_type), "size",
                         (json_int_t)file->size, "time", (json_int_t)time(NULL))
             : NULL;
    free(name);
    snprintf(temp, sizeof(temp), "%s.tmp", meta);
    if (rc != 0 || !value || json_dump_file(value, temp, JSON_COMPACT) != 0 ||
        rename(temp, meta) != 0) {
        unlink(temp);
        unlink(data);
        rc = -1;
    }
    json_decref(value);
    return rc;
}

static int newest_first(const void *a, const void *b)
{
    json_int_t ta = json_integer_value(json_object_get(*(json_t *const *)a, "time"));
    json_int_t tb = json_integer_value(json_object_get(*(json_t *const *)b, "time"));
    if (ta != tb)
        return ta < tb ? 1 : -1;
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "id")),
                  json_string_value(json_object_get(*(json_t *const *)b, "id")));
}

json_t *gallery_store_list(const gallery_config *config, const char *user)
{
    char dir[4096], path[4400];
    json_t *files = json_array();
    if (!files || path_of(dir, sizeof(dir), config, user, NULL, NULL) != 0)
        return files;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len != 37 || strcmp(e->d_name + 32, ".json") != 0)
            continue;
        char id[33];
        memcpy(id, e->d_name, 32);
        id[32] = '\0';
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        json_t *meta = gallery_store_valid_id(id) ? json_load_file(path, 0, NULL) : NULL;
        if (json_is_object(meta) && json_object_set_new(meta, "id", json_string(id)) == 0)
            json_array_append(files, meta);
        json_decref(meta);
    }
    if (d)
        closedir(d);
    size_t count = json_array_size(files);
    json_t **items = malloc((count ? count : 1) * sizeof(*items));
    if (!items)
        return files;
    for (size_t i = 0; i < count; i++)
        items[i] = json_incref(json_array_get(files, i));
    qsort(items, count, sizeof(*items), newest_first);
    json_array_clear(files);
    for (size_t i = 0; i < count; i++)
        json_array_append_new(files, items[i]);
    free(items);
    return files;
}

json_t *gallery_store_open(const gallery_config *config, const char *user, const char *id,
                           int *fd_out)
{
    char data[4096], meta[4096];
    if (!gallery_store_valid_id(id) || path_of(data, sizeof(data), config, user, id, "data") != 0 ||
        path_of(meta, sizeof(meta), config, user, id, "json") != 0)
        return NULL;
    json_t *value = json_load_file(meta, 0, NULL);
    int fd = value ? open(data, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        json_decref(value);
        return NULL;
    }
    *fd_out = fd;
    return value;
}

int gallery_store_delete(const gallery_config *config, const char *user, const char *id)
{
    char data[4096], meta[4096];
    if (!gallery_store_valid_id(id) || path_of(data, sizeof(data), config, user, id, "data") != 0 ||
        path_of(meta, sizeof(meta), config, user, id, "json") != 0 || unlink(meta) != 0)
        return -1;
    unlink(data);
    return 0;
}
