/*
 * Files for the suites that read deploy files: the project's directories,
 * the test data and a temporary directory to write files into.
 *
 * Each function fails the running test (Check) when a directory is missing;
 * the paths they return live in static buffers, valid until the next call
 * of the same function.
 */
#ifndef CSGI_TESTS_TEST_FILES_H
#define CSGI_TESTS_TEST_FILES_H

/* The project root (the directory above tests/), absolute. */
const char *test_project_dir(void);

/* The project's tests/data (pastedeploy/ and talk/, see tests/data/README.md),
   or CSGI_TEST_DATA when set: absolute, symbolic links resolved, so that paths
   built from it (and a deploy file's `here`) can be predicted. */
const char *test_testdata_dir(void);

/* The test process's temporary directory, made on first use and removed with
   everything in it when the process exits (forked tests: one per test). */
const char *test_tmp_dir(void);

/* test_tmp_dir()/name. */
const char *test_tmp_path(const char *name);

/* Write text to test_tmp_dir()/name, making the file's parent directory if it
   is missing (one level); returns the file's path. */
const char *test_write_file(const char *name, const char *text);

/* The whole of the file at path (its first MiB, in a static buffer valid
   until the next call), "" when it cannot be read. */
const char *test_read_file(const char *path);

#endif
