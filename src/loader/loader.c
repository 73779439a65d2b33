/*
 * The loader object (csgi/loader.h): a loading session holding the
 * registered factories, the caller's globals, listen addresses and server
 * options, the
 * module path and every file read. loader_private.h lists the files that
 * do the work.
 */
#include "common/alloc.h"
#include "loader/loader_private.h"

#include <string.h>

static void free_listen(csgi_loader *loader)
{
    for (size_t i = 0; i < loader->listen_count; i++)
        csgi__free(loader->listen[i]);
    csgi__free(loader->listen);
    loader->listen = NULL;
    loader->listen_count = 0;
}

int csgi_loader_new(csgi_loader **out)
{
    if (!out)
        return CSGI_EINVAL;
    *out = NULL;
    csgi_loader *loader = csgi__calloc(1, sizeof(*loader));
    if (!loader)
        return CSGI_ENOMEM;
    int rc = csgi_conf__loader_new(&loader->conf);
    if (rc != 0) {
        csgi__free(loader);
        return rc;
    }
    *out = loader;
    return 0;
}

void csgi_loader_free(csgi_loader *loader)
{
    if (!loader)
        return;
    csgi_loader__free_registrations(loader);
    csgi_loader__free_modules(loader);
    csgi_loader__free_allocations(loader);
    csgi_loader__free_description(loader);
    free_listen(loader);
    csgi_conf__loader_free(loader->conf);
    csgi__free(loader);
}

int csgi_loader_set_global(csgi_loader *loader, const char *name, const char *value)
{
    if (!loader || !name || !name[0] || !value)
        return CSGI_EINVAL;
    /* A name set twice keeps its last value (and its place). */
    return csgi_conf__list_add(loader->conf, &loader->globals, name, value);
}

int csgi_loader_set_listen(csgi_loader *loader, const char *const *addresses, size_t count)
{
    if (!loader || (count && !addresses))
        return CSGI_EINVAL;
    for (size_t i = 0; i < count; i++)
        if (!addresses[i] || !addresses[i][0])
            return CSGI_EINVAL;
    char **copy = count ? csgi__calloc(count, sizeof(*copy)) : NULL;
    if (count && !copy)
        return CSGI_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(addresses[i]);
        copy[i] = csgi__malloc(len + 1);
        if (!copy[i]) {
            for (size_t j = 0; j < i; j++)
                csgi__free(copy[j]);
            csgi__free(copy);
            return CSGI_ENOMEM;
        }
        memcpy(copy[i], addresses[i], len + 1);
    }
    free_listen(loader);
    loader->listen = copy;
    loader->listen_count = count;
    return 0;
}

int csgi_loader_set_server_option(csgi_loader *loader, const char *name, const char *value)
{
    if (!loader || !name || !name[0] || !value)
        return CSGI_EINVAL;
    return csgi_conf__list_add(loader->conf, &loader->server_options, name, value);
}

const char *const *csgi_loader__listen(const csgi_loader *loader, size_t *count)
{
    *count = loader->listen_count;
    return (const char *const *)loader->listen;
}
