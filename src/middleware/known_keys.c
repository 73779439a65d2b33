/*
 * The check every bundled middleware's factory makes first: each key of
 * its local conf is one it knows, else the load fails at that key's line.
 */
#include "middleware/middleware.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Keys OpenStack api-paste.ini files give oslo.middleware to find the
   project's oslo.config files, which csgi does not read. */
static const char *const oslo_config[] = {"oslo_config_project", "oslo_config_file",
                                          "oslo_config_program", NULL};

static bool listed(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

int csgi_middleware__known_keys(const csgi_conf *conf, const char *middleware,
                                const char *const *known, csgi_load_error *error)
{
    const char *name, *value;
    for (size_t i = 0; csgi_conf_entry(conf, i, &name, &value); i++) {
        if (listed(known, name) || listed(oslo_config, name))
            continue;
        char names[512];
        size_t used = 0;
        for (const char *const *k = known; *k && used < sizeof(names); k++)
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                     k == known ? "" : ", ", *k);
        csgi_conf_error(conf, name, error, "unknown key for %s (known: %s)", middleware, names);
        return CSGI_EINVAL;
    }
    return 0;
}
