/**
 * @file csgi/common.h
 * @brief Version, error codes, export macro and the replaceable allocator.
 *
 * Every other csgi header includes this one. It is C99-clean and includes
 * nothing but the standard library.
 */
#ifndef CSGI_COMMON_H
#define CSGI_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a declaration as part of the shared library's exported interface. */
#if defined(CSGI_STATIC)
#define CSGI_EXTERN
#elif defined(_WIN32)
#if defined(CSGI_BUILDING)
#define CSGI_EXTERN __declspec(dllexport)
#else
#define CSGI_EXTERN __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define CSGI_EXTERN __attribute__((visibility("default")))
#else
#define CSGI_EXTERN
#endif

/** Major version: changes when the ABI breaks (the shared library's SONAME). */
#define CSGI_VERSION_MAJOR 0
/** Minor version: new, compatible features. */
#define CSGI_VERSION_MINOR 1
/** Patch version: fixes only. */
#define CSGI_VERSION_PATCH 0
/** The version as one number: 0xMMmmpp. */
#define CSGI_VERSION_HEX \
    ((CSGI_VERSION_MAJOR << 16) | (CSGI_VERSION_MINOR << 8) | CSGI_VERSION_PATCH)

/**
 * The version of the library actually linked, as "MAJOR.MINOR.PATCH".
 *
 * @return a static string, never NULL.
 */
CSGI_EXTERN const char *csgi_version_string(void);

/**
 * The error table: one row per error, name and text.
 *
 * Expand it with your own macro to build tables; csgi itself generates the
 * #csgi_err enum, csgi_strerror() and csgi_err_name() from it.
 */
#define CSGI_ERR_MAP(X)                                        \
    X(NOMEM, -1, "out of memory")                              \
    X(INVAL, -2, "invalid argument")                           \
    X(IO, -3, "input/output error")                            \
    X(ADDRINUSE, -4, "address already in use")                 \
    X(ADDRNOTAVAIL, -5, "address not available")               \
    X(ACCESS, -6, "permission denied")                         \
    X(NOTFOUND, -7, "not found")                               \
    X(RANGE, -8, "value out of range")                         \
    X(STATE, -9, "operation not allowed in the current state") \
    X(AGAIN, -10, "resource temporarily unavailable")          \
    X(CLOSED, -11, "connection closed")                        \
    X(TIMEDOUT, -12, "timed out")                              \
    X(PARSE, -13, "malformed input")                           \
    X(TOOBIG, -14, "limit exceeded")                           \
    X(SYSTEM, -15, "system call failed")                       \
    X(REDIRECTS, -16, "too many redirects")                    \
    X(WORKERS, -17, "worker processes failed to start")        \
    X(CONNECT, -18, "cannot connect")

/** Error codes. Functions that can fail return 0 or one of these. */
typedef enum csgi_err {
    CSGI_OK = 0,
#define CSGI_ERR_ENUM(name, value, text) CSGI_E##name = value,
    CSGI_ERR_MAP(CSGI_ERR_ENUM)
#undef CSGI_ERR_ENUM
        CSGI_E_LAST_ = -18
} csgi_err;

/**
 * A human-readable description of an error code.
 *
 * @param err 0 or a #csgi_err value.
 * @return a static string, never NULL ("unknown error" for values not in the table).
 */
CSGI_EXTERN const char *csgi_strerror(int err);

/**
 * The symbolic name of an error code, such as "CSGI_ENOMEM".
 *
 * @param err 0 or a #csgi_err value.
 * @return a static string, never NULL ("CSGI_OK" for 0, "CSGI_EUNKNOWN" otherwise).
 */
CSGI_EXTERN const char *csgi_err_name(int err);

/** malloc-like function: returns NULL on failure. */
typedef void *(*csgi_malloc_fn)(size_t size);
/** realloc-like function: returns NULL on failure and leaves @p ptr intact. */
typedef void *(*csgi_realloc_fn)(void *ptr, size_t size);
/** free-like function: accepts NULL. */
typedef void (*csgi_free_fn)(void *ptr);

/**
 * Replace the allocator csgi uses for its own memory.
 *
 * Call before any other csgi function; memory allocated with one allocator
 * must not be released after switching to another. Tests use this to fail
 * the Nth allocation and prove every error path. Passing NULL for all three
 * restores the C library's functions.
 *
 * @param malloc_fn  replacement for malloc, or NULL
 * @param realloc_fn replacement for realloc, or NULL
 * @param free_fn    replacement for free, or NULL
 * @return 0, or CSGI_EINVAL when only some of the three are NULL.
 */
CSGI_EXTERN int csgi_set_allocator(csgi_malloc_fn malloc_fn, csgi_realloc_fn realloc_fn,
                                   csgi_free_fn free_fn);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_COMMON_H */
