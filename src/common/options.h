/*
 * Versioned option structs (internal). Each public options struct starts
 * with a version (CSGI_X_OPTIONS_VERSION); a program built against an
 * older csgi passes a smaller one, and stays valid, so the check accepts a
 * range, never one value (libgit2's GIT_ERROR_CHECK_VERSION does the same).
 */
#ifndef CSGI_COMMON_OPTIONS_H
#define CSGI_COMMON_OPTIONS_H

/* 1 when version is one this csgi reads: 1 up to current. */
static inline int csgi_options__version_ok(unsigned version, unsigned current)
{
    return version >= 1 && version <= current;
}

#endif
