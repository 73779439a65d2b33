/* host.c: serves a deploy file with the factories of greet.c linked in. */
#include "greet.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "host.ini";
    csgi_loader *loader = NULL;
    csgi_app *app = NULL;
    csgi_load_error error;
    char text[1200];
    if (csgi_loader_new(&loader) != 0)
        return 1;
    /* Registered under the exact text the INI file writes. */
    if (csgi_loader_register_app(loader, "egg:Greet#hello", CSGI_FACTORY_APP, hello_factory) ||
        csgi_loader_register_app(loader, "egg:Greet#strategy", CSGI_FACTORY_COMPOSITE,
                                 strategy_factory) ||
        csgi_loader_register_filter(loader, "greet.middleware:auth_factory", CSGI_FACTORY_FILTER,
                                    auth_factory)) {
        csgi_loader_free(loader);
        return 1;
    }
    int rc = csgi_loader_load_app(&app, loader, uri, &error);
    if (rc == 0)
        rc = csgi_loader_serve(loader, uri, app, &error); /* takes app; runs [server:main] */
    if (rc != 0) {
        csgi_load_error_format(&error, text, sizeof(text));
        fprintf(stderr, "%s\n", text);
    }
    csgi_loader_free(loader);
    return rc == 0 ? 0 : 1;
}
