/* The test data, project and temporary directories of the suites (test_files.h). */
#include "test_files.h"

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *test_project_dir(void)
{
    static char dir[PATH_MAX];
    /* __FILE__ is ROOT/tests/test_files.c (or tests/test_files.c when built
       from the repository root): the root is two levels up. */
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s", __FILE__);
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(root, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(root, sizeof(root), ".");
    }
    ck_assert_msg(realpath(root[0] ? root : ".", dir) != NULL, "no project at %s", root);
    return dir;
}

const char *test_testdata_dir(void)
{
    static char dir[PATH_MAX];
    char candidate[PATH_MAX];
    const char *env = getenv("CSGI_TEST_DATA");
    if (env && *env)
        snprintf(candidate, sizeof(candidate), "%s", env);
    else
        snprintf(candidate, sizeof(candidate), "%s/tests/data", test_project_dir());
    ck_assert_msg(realpath(candidate, dir) != NULL, "no test data at %s", candidate);
    return dir;
}

static char tmp_dir[PATH_MAX];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tmp_dir(void)
{
    if (tmp_dir[0])
        nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *test_tmp_dir(void)
{
    if (!tmp_dir[0]) {
        char pattern[] = "/tmp/csgi_test_XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(pattern));
        ck_assert_ptr_nonnull(realpath(pattern, tmp_dir));
        static bool registered;
        if (!registered)
            atexit(remove_tmp_dir);
        registered = true;
    }
    return tmp_dir;
}

const char *test_tmp_path(const char *name)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", test_tmp_dir(), name);
    return path;
}

const char *test_write_file(const char *name, const char *text)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s", test_tmp_path(name));
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700); /* the parent of a name like "sub/x.ini"; EEXIST otherwise */
    *slash = '/';
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

const char *test_read_file(const char *path)
{
    static char text[1 << 20];
    text[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return text;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}
