/*
 * imageapi-passwd: print the password hash the users file
 * (examples/imageapi/accounts.json) keeps for a password read from
 * standard input, made with libxcrypt:
 *
 *   printf '%s' 'admin-secret' | imageapi-passwd
 *   $y$j9T$...
 *
 * The first line of the input is the password (without its newline).
 * Options: --prefix '$6$' picks another method than libxcrypt's default
 * (yescrypt, "$y$"), --rounds N its cost (0: the method's default).
 */
#include <crypt.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_MAX 4096

static int usage(FILE *out, int status)
{
    fprintf(out, "usage: imageapi-passwd [--prefix PREFIX] [--rounds N] < password\n"
                 "Prints a libxcrypt hash (yescrypt unless PREFIX says) of the first line of\n"
                 "standard input, for the password_hash of examples/imageapi's users file.\n");
    return status;
}

int main(int argc, char **argv)
{
    const char *prefix = NULL;
    unsigned long rounds = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout, 0);
        if (i + 1 < argc && strcmp(argv[i], "--prefix") == 0) {
            prefix = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) {
            char *end;
            errno = 0;
            rounds = strtoul(argv[++i], &end, 10);
            if (errno || *end || end == argv[i])
                return usage(stderr, 2);
        } else {
            return usage(stderr, 2);
        }
    }

    static char password[PASSWORD_MAX + 2];
    if (!fgets(password, sizeof(password), stdin)) {
        fprintf(stderr, "imageapi-passwd: no password on standard input\n");
        return 1;
    }
    size_t len = strcspn(password, "\r\n");
    if (len > PASSWORD_MAX) {
        fprintf(stderr, "imageapi-passwd: a password has at most %d bytes\n", PASSWORD_MAX);
        return 1;
    }
    password[len] = '\0';
    if (!len) {
        fprintf(stderr, "imageapi-passwd: the password is empty\n");
        return 1;
    }

    char *setting = crypt_gensalt_ra(prefix, rounds, NULL, 0);
    if (!setting) {
        fprintf(stderr, "imageapi-passwd: cannot make a salt for %s: %s\n",
                prefix ? prefix : "the default method", strerror(errno));
        return 1;
    }
    struct crypt_data *data = calloc(1, sizeof(*data));
    const char *hash = data ? crypt_rn(password, setting, data, sizeof(*data)) : NULL;
    free(setting);
    explicit_bzero(password, sizeof(password));
    if (!hash || hash[0] == '*') {
        fprintf(stderr, "imageapi-passwd: cannot hash: %s\n", strerror(errno));
        free(data);
        return 1;
    }
    printf("%s\n", hash);
    explicit_bzero(data, sizeof(*data));
    free(data);
    return ferror(stdout) || fflush(stdout) != 0;
}
