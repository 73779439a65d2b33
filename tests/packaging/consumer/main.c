/*
 * A program that uses the installed csgi: checks that the linked library
 * matches the installed headers and that the error table works.
 */
#include <csgi.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    char expected[32];
    const char *version = csgi_version_string();
    const char *text = csgi_strerror(CSGI_ENOMEM);

    snprintf(expected, sizeof(expected), "%d.%d.%d", CSGI_VERSION_MAJOR, CSGI_VERSION_MINOR,
             CSGI_VERSION_PATCH);
    if (version == NULL || strcmp(version, expected) != 0) {
        fprintf(stderr, "csgi_version_string() = \"%s\", headers say \"%s\"\n",
                version ? version : "(null)", expected);
        return 1;
    }
    if (text == NULL || strcmp(text, "out of memory") != 0) {
        fprintf(stderr, "csgi_strerror(CSGI_ENOMEM) = \"%s\"\n", text ? text : "(null)");
        return 1;
    }
    printf("csgi %s: csgi_strerror(CSGI_ENOMEM) = \"%s\"\n", version, text);
    return 0;
}
