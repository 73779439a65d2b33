/* The INI model (src/loader/ini.h): syntax, long lines, errors, test data. */
#include "loader/ini.h"

#include "common/alloc.h"

#include <csgi.h>

#include "test_alloc.h"
#include "test_files.h"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------- */

static csgi_ini *load_text(const char *text)
{
    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_ini *ini = NULL;
    int rc = csgi_ini__load_buffer(&ini, "t.ini", text, strlen(text), &error);
    if (rc != 0) {
        char message[1024];
        csgi_load_error_format(&error, message, sizeof(message));
        ck_abort_msg("load failed (%d): %s", rc, message);
    }
    ck_assert_ptr_nonnull(ini);
    return ini;
}

/* Loading text must fail with CSGI_EPARSE and exactly this formatted error. */
static void expect_error(const char *text, const char *expected)
{
    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_ini *ini = (csgi_ini *)1;
    int rc = csgi_ini__load_buffer(&ini, "t.ini", text, strlen(text), &error);
    ck_assert_int_eq(rc, CSGI_EPARSE);
    ck_assert_ptr_null(ini);
    char message[1024];
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_str_eq(message, expected);
}

static const char *value_of(const csgi_ini *ini, const char *section, const char *key)
{
    const csgi_ini__section *s = csgi_ini__find_section(ini, section);
    ck_assert_msg(s != NULL, "no section [%s]", section);
    const char *value = csgi_ini__get(s, key);
    ck_assert_msg(value != NULL, "no key '%s' in [%s]", key, section);
    return value;
}

/* The section headers, in order, joined with "|". */
static void expect_sections(const csgi_ini *ini, const char *expected)
{
    char joined[2048] = "";
    size_t count = 0;
    for (const csgi_ini__section *s = ini->sections; s; s = s->next) {
        if (count++)
            strcat(joined, "|");
        strncat(joined, s->name, sizeof(joined) - strlen(joined) - 2);
    }
    ck_assert_str_eq(joined, expected);
    ck_assert_uint_eq(count, ini->section_count);
}

/* The keys of one section, in order, joined with "|". */
static void expect_keys(const csgi_ini *ini, const char *section, const char *expected)
{
    const csgi_ini__section *s = csgi_ini__find_section(ini, section);
    ck_assert_msg(s != NULL, "no section [%s]", section);
    char joined[2048] = "";
    size_t count = 0;
    for (const csgi_ini__key *k = s->keys; k; k = k->next) {
        if (count++)
            strcat(joined, "|");
        strncat(joined, k->name, sizeof(joined) - strlen(joined) - 2);
    }
    ck_assert_str_eq(joined, expected);
    ck_assert_uint_eq(count, s->key_count);
}

static csgi_ini *load_testdata(const char *relative)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", test_testdata_dir(), relative);
    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_ini *ini = NULL;
    int rc = csgi_ini__load(&ini, path, &error);
    if (rc != 0) {
        char message[1024];
        csgi_load_error_format(&error, message, sizeof(message));
        ck_abort_msg("load %s failed (%d): %s", path, rc, message);
    }
    ck_assert_str_eq(ini->path, path);
    return ini;
}

/* A string of n bytes repeating pattern, caller frees. */
static char *repeat(const char *pattern, size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    size_t plen = strlen(pattern);
    for (size_t i = 0; i < n; i++)
        s[i] = pattern[i % plen];
    s[n] = '\0';
    return s;
}

/* ---- syntax --------------------------------------------------------------- */

START_TEST(sections_and_keys_in_order)
{
    csgi_ini *ini = load_text("[DEFAULT]\n"
                              "a = 1\n"
                              "\n"
                              "[app:main]\n"
                              "use = egg:FakeApp#basic_app\n"
                              "zeta = last\n"
                              "alpha = first\n"
                              "[filter:auth]\n"
                              "[server:main]\n"
                              "port = 8080\n");
    expect_sections(ini, "DEFAULT|app:main|filter:auth|server:main");
    expect_keys(ini, "app:main", "use|zeta|alpha");
    expect_keys(ini, "filter:auth", "");
    const csgi_ini__section *s = csgi_ini__find_section(ini, "app:main");
    ck_assert_int_eq(s->line, 4);
    ck_assert_int_eq(csgi_ini__find_key(s, "use")->line, 5);
    ck_assert_int_eq(csgi_ini__find_key(s, "alpha")->line, 7);
    ck_assert_int_eq(csgi_ini__find_section(ini, "server:main")->line, 9);
    ck_assert_str_eq(value_of(ini, "DEFAULT", "a"), "1");
    ck_assert_str_eq(value_of(ini, "server:main", "port"), "8080");
    ck_assert_ptr_null(csgi_ini__find_section(ini, "app:MAIN"));
    ck_assert_ptr_null(csgi_ini__find_section(ini, "app"));
    ck_assert_ptr_null(csgi_ini__get(s, "missing"));
    csgi_ini__free(ini);
}
END_TEST

START_TEST(colon_delimiter)
{
    csgi_ini *ini = load_text("[s]\nkey: value\nother:v2\nspaced :  v3  \n");
    ck_assert_str_eq(value_of(ini, "s", "key"), "value");
    ck_assert_str_eq(value_of(ini, "s", "other"), "v2");
    ck_assert_str_eq(value_of(ini, "s", "spaced"), "v3");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(first_delimiter_wins)
{
    csgi_ini *ini = load_text("[s]\n"
                              "a:b = c\n"
                              "d = e:f\n"
                              "use = config:other.ini#main\n"
                              "domain example.com port 80 /x = app\n"
                              "url: http://host:80/x=1\n"
                              "empty =\n"
                              "eq = = =\n");
    expect_keys(ini, "s", "a|d|use|domain example.com port 80 /x|url|empty|eq");
    ck_assert_str_eq(value_of(ini, "s", "a"), "b = c");
    ck_assert_str_eq(value_of(ini, "s", "d"), "e:f");
    ck_assert_str_eq(value_of(ini, "s", "use"), "config:other.ini#main");
    ck_assert_str_eq(value_of(ini, "s", "domain example.com port 80 /x"), "app");
    ck_assert_str_eq(value_of(ini, "s", "url"), "http://host:80/x=1");
    ck_assert_str_eq(value_of(ini, "s", "empty"), "");
    ck_assert_str_eq(value_of(ini, "s", "eq"), "= =");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(keys_are_case_sensitive_and_keep_spaces)
{
    csgi_ini *ini = load_text("[s]\n"
                              "Key = upper\n"
                              "key = lower\n"
                              "set foo = bar\n"
                              "get  two   spaces = x\n"
                              "\tindented = continuation, not a key\n");
    expect_keys(ini, "s", "Key|key|set foo|get  two   spaces");
    ck_assert_str_eq(value_of(ini, "s", "Key"), "upper");
    ck_assert_str_eq(value_of(ini, "s", "key"), "lower");
    ck_assert_str_eq(value_of(ini, "s", "set foo"), "bar");
    ck_assert_str_eq(value_of(ini, "s", "get  two   spaces"),
                     "x\nindented = continuation, not a key");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(inline_comments_are_kept)
{
    csgi_ini *ini = load_text("[s]\n"
                              "a = value ; not a comment\n"
                              "b = value # nor this\n"
                              "c = x;y#z\n"
                              "d = ; only\n"
                              "e =   padded ; text   \n");
    ck_assert_str_eq(value_of(ini, "s", "a"), "value ; not a comment");
    ck_assert_str_eq(value_of(ini, "s", "b"), "value # nor this");
    ck_assert_str_eq(value_of(ini, "s", "c"), "x;y#z");
    ck_assert_str_eq(value_of(ini, "s", "d"), "; only");
    ck_assert_str_eq(value_of(ini, "s", "e"), "padded ; text");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(continuation_lines)
{
    csgi_ini *ini = load_text("[s]\n"
                              "pipeline = a\n"
                              "    b   \n"
                              "\tc ; kept\n"
                              "next = 1\n"
                              "comment = x\n"
                              "# a comment line does not end the value\n"
                              "    ; nor does an indented one, which is dropped\n"
                              "  y\n"
                              "[t]\n"
                              "k = v\n");
    ck_assert_str_eq(value_of(ini, "s", "pipeline"), "a\nb\nc ; kept");
    ck_assert_str_eq(value_of(ini, "s", "next"), "1");
    ck_assert_str_eq(value_of(ini, "s", "comment"), "x\ny");
    ck_assert_int_eq(csgi_ini__find_key(csgi_ini__find_section(ini, "s"), "next")->line, 5);
    ck_assert_int_eq(csgi_ini__find_section(ini, "t")->line, 10);
    ck_assert_int_eq(csgi_ini__find_key(csgi_ini__find_section(ini, "t"), "k")->line, 11);
    csgi_ini__free(ini);
}
END_TEST

/* ConfigParser's empty_lines_in_values: kept inside, dropped at the end. */
START_TEST(empty_lines_in_values)
{
    csgi_ini *ini = load_text("[s]\n"
                              "a = one\n"
                              "\n"
                              "   \n"
                              "  two\n"
                              "\n"
                              "\n"
                              "b = alone\n"
                              "\n"
                              "c =\n"
                              "  starts on the next line\n"
                              "d =\n"
                              "\n"
                              "  after an empty line\n");
    ck_assert_str_eq(value_of(ini, "s", "a"), "one\n\n\ntwo");
    ck_assert_str_eq(value_of(ini, "s", "b"), "alone");
    ck_assert_str_eq(value_of(ini, "s", "c"), "\nstarts on the next line");
    ck_assert_str_eq(value_of(ini, "s", "d"), "\n\nafter an empty line");
    csgi_ini__free(ini);
}
END_TEST

/* Continuation is relative to the key's own indentation. */
START_TEST(continuation_relative_to_key_indent)
{
    csgi_ini *ini = load_text("[s]\n"
                              "  a = 1\n"
                              "  b = 2\n"
                              "    more\n"
                              " c = 3\n"
                              "[t]\n"
                              "  x = [not a section]\n"
                              "    [neither]\n");
    expect_keys(ini, "s", "a|b|c");
    ck_assert_str_eq(value_of(ini, "s", "a"), "1");
    ck_assert_str_eq(value_of(ini, "s", "b"), "2\nmore");
    ck_assert_str_eq(value_of(ini, "s", "c"), "3");
    expect_sections(ini, "s|t");
    ck_assert_str_eq(value_of(ini, "t", "x"), "[not a section]\n[neither]");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(comments_shebang_and_bom)
{
    csgi_ini *ini = load_text("#!/usr/bin/env paster\n"
                              "; semicolon comment\n"
                              "# hash comment\n"
                              "   # indented comment\n"
                              "[s]\n"
                              "#commented = out\n"
                              "k = v\n");
    expect_sections(ini, "s");
    expect_keys(ini, "s", "k");
    ck_assert_int_eq(csgi_ini__find_section(ini, "s")->line, 5);
    csgi_ini__free(ini);

    ini = load_text("\xEF\xBB\xBF[app:main]\nk = v\n");
    expect_sections(ini, "app:main");
    ck_assert_int_eq(ini->sections->line, 1);
    csgi_ini__free(ini);

    ini = load_text("\xEF\xBB\xBF#!/bin/sh\n[a]\n");
    expect_sections(ini, "a");
    ck_assert_int_eq(ini->sections->line, 2);
    csgi_ini__free(ini);
}
END_TEST

START_TEST(line_endings)
{
    csgi_ini *ini = load_text("[a]\r\nk = v\r\n  w\r\n[b]\rx = 1\r  2\rlast = no newline");
    ck_assert_str_eq(value_of(ini, "a", "k"), "v\nw");
    ck_assert_str_eq(value_of(ini, "b", "x"), "1\n2");
    ck_assert_str_eq(value_of(ini, "b", "last"), "no newline");
    ck_assert_int_eq(csgi_ini__find_key(csgi_ini__find_section(ini, "b"), "last")->line, 7);
    csgi_ini__free(ini);
}
END_TEST

START_TEST(section_headers)
{
    csgi_ini *ini = load_text("[ spaced ]\n"
                              "[a] trailing text\n"
                              "[ b ]]\n"
                              "  [indented]\n"
                              "[app:main#x;y]\n"
                              "[]]\n");
    expect_sections(ini, " spaced |a| b ]|indented|app:main#x;y|]");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(empty_inputs)
{
    csgi_ini *ini = load_text("");
    ck_assert_ptr_null(ini->sections);
    ck_assert_uint_eq(ini->section_count, 0);
    csgi_ini__free(ini);
    ini = load_text("\n\n# only comments\n; here\n   \n");
    ck_assert_uint_eq(ini->section_count, 0);
    csgi_ini__free(ini);
    ini = NULL;
    ck_assert_int_eq(csgi_ini__load_buffer(&ini, "empty", NULL, 0, NULL), 0);
    ck_assert_uint_eq(ini->section_count, 0);
    ck_assert_str_eq(ini->path, "empty");
    csgi_ini__free(ini);
}
END_TEST

/* ---- long lines ----------------------------------------------------------- */

START_TEST(long_value)
{
    char *value = repeat("abcdefghij ; # = : ", 5000);
    value[0] = 'x';
    value[4999] = 'y'; /* no trailing space to strip */
    size_t size = 5000 + 64;
    char *text = malloc(size);
    snprintf(text, size, "[s]\nbefore = 1\nlong = %s\nafter = 2\n", value);
    csgi_ini *ini = load_text(text);
    ck_assert_uint_eq(strlen(value_of(ini, "s", "long")), 5000);
    ck_assert_str_eq(value_of(ini, "s", "long"), value);
    ck_assert_str_eq(value_of(ini, "s", "after"), "2");
    ck_assert_int_eq(csgi_ini__find_key(ini->sections, "after")->line, 4);
    csgi_ini__free(ini);
    free(text);
    free(value);
}
END_TEST

START_TEST(long_pipeline)
{
    /* A 5000-character pipeline on one line, then the same over several. */
    char *items = malloc(6000);
    size_t len = 0;
    int n = 0;
    while (len < 5000 - 12) {
        len += (size_t)sprintf(items + len, "%sfilter%04d", n ? " " : "", n);
        n++;
    }
    while (len < 5000)
        items[len++] = 'z';
    items[len] = '\0';
    ck_assert_uint_eq(strlen(items), 5000);
    char *text = malloc(12000);
    snprintf(text, 12000,
             "[pipeline:main]\npipeline = %s\n[pipeline:split]\npipeline = %.2500s\n"
             "  %s\n",
             items, items, items + 2500);
    csgi_ini *ini = load_text(text);
    ck_assert_str_eq(value_of(ini, "pipeline:main", "pipeline"), items);
    const char *split = value_of(ini, "pipeline:split", "pipeline");
    ck_assert_uint_eq(strlen(split), 5001);
    ck_assert_int_eq(strncmp(split, items, 2500), 0);
    ck_assert_int_eq(split[2500], '\n');
    ck_assert_str_eq(split + 2501, items + 2500);
    ck_assert_int_eq(csgi_ini__find_section(ini, "pipeline:split")->line, 3);
    csgi_ini__free(ini);
    free(text);
    free(items);
}
END_TEST

START_TEST(long_key_and_header)
{
    char *key = repeat("set long key ", 300);
    key[299] = 'k';
    char *header = repeat("app:", 300);
    char text[1024];
    snprintf(text, sizeof(text), "[%s]\n%s = v ; c\n", header, key);
    csgi_ini *ini = load_text(text);
    expect_sections(ini, header);
    ck_assert_str_eq(ini->sections->keys->name, key);
    ck_assert_str_eq(value_of(ini, header, key), "v ; c");
    csgi_ini__free(ini);
    free(key);
    free(header);
}
END_TEST

START_TEST(long_lines_from_a_file)
{
    /* Through csgi_ini__load: a file bigger than the first read buffer. */
    char path[] = "/tmp/check_ini_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    char *value = repeat("0123456789", 20000);
    fprintf(f, "[s]\nk = %s\nnext = 1\n", value);
    fclose(f);
    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_ini *ini = NULL;
    ck_assert_int_eq(csgi_ini__load(&ini, path, &error), 0);
    ck_assert_str_eq(value_of(ini, "s", "k"), value);
    ck_assert_int_eq(csgi_ini__find_key(ini->sections, "next")->line, 3);
    csgi_ini__free(ini);
    unlink(path);
    free(value);
}
END_TEST

/* ---- errors --------------------------------------------------------------- */

START_TEST(error_duplicate_key)
{
    expect_error("[app:main]\nx = 1\ny = 2\nx = 3\n",
                 "t.ini:4: [app:main] x: duplicate key 'x' (first at line 2)");
    /* Keys differing in case or spacing are not duplicates; same after stripping are. */
    expect_error("[s]\nset  a = 1\nSet  a = 1\nset  a\t= 2\n",
                 "t.ini:4: [s] set  a: duplicate key 'set  a' (first at line 2)");
}
END_TEST

START_TEST(error_duplicate_section)
{
    expect_error("[app:main]\nx = 1\n\n[filter:a]\n[app:main]\n",
                 "t.ini:5: [app:main] duplicate section [app:main] (first at line 1)");
    expect_error("[DEFAULT]\na = 1\n[DEFAULT]\nb = 2\n",
                 "t.ini:3: [DEFAULT] duplicate section [DEFAULT] (first at line 1)");
}
END_TEST

START_TEST(error_key_before_section)
{
    expect_error("# comment\n\nkey = value\n[s]\n",
                 "t.ini:3: key: key 'key' before any section header");
}
END_TEST

START_TEST(error_malformed_line)
{
    expect_error("[s]\na = 1\njust words\n",
                 "t.ini:3: [s] malformed line (expected 'key = value', 'key: value' or "
                 "'[section]')");
    expect_error("words first\n", "t.ini:1: malformed line (expected 'key = value', "
                                  "'key: value' or '[section]')");
    expect_error("[s]\n = value\n", "t.ini:2: [s] empty key");
    expect_error("[s]\n: value\n", "t.ini:2: [s] empty key");
}
END_TEST

START_TEST(error_section_header)
{
    expect_error("[s]\nk = v\n[app:main\n", "t.ini:3: unterminated section header (missing ']')");
    expect_error("[s]\n[]\n", "t.ini:2: empty section name '[]'");
    expect_error("[\n", "t.ini:1: unterminated section header (missing ']')");
}
END_TEST

START_TEST(error_nul_byte)
{
    const char text[] = "[s]\nk = v\0w\n";
    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_ini *ini = NULL;
    ck_assert_int_eq(csgi_ini__load_buffer(&ini, "t.ini", text, sizeof(text) - 1, &error),
                     CSGI_EPARSE);
    char message[256];
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_str_eq(message, "t.ini:2: NUL byte in file");
}
END_TEST

START_TEST(error_unreadable_file)
{
    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_ini *ini = (csgi_ini *)1;
    ck_assert_int_eq(csgi_ini__load(&ini, "/nonexistent/dir/app.ini", &error), CSGI_ENOTFOUND);
    ck_assert_ptr_null(ini);
    char message[512];
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_str_eq(message, "/nonexistent/dir/app.ini: cannot open: No such file or directory");
    ck_assert_int_eq(error.line, 0);

    csgi_load_error__clear(&error);
    ck_assert_int_eq(csgi_ini__load(&ini, "/tmp", &error), CSGI_EIO);
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_str_eq(message, "/tmp: cannot read: Is a directory");

    if (geteuid() != 0) {
        char path[] = "/tmp/check_ini_XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        close(fd);
        chmod(path, 0);
        csgi_load_error__clear(&error);
        ck_assert_int_eq(csgi_ini__load(&ini, path, &error), CSGI_EACCESS);
        ck_assert_str_eq(error.text, "cannot open: Permission denied");
        unlink(path);
    }
}
END_TEST

START_TEST(error_file_too_large)
{
    /* A file exactly at the limit is read (one comment line); one byte
       more is refused before it is parsed. */
    char path[] = "/tmp/check_ini_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("#", f);
    for (size_t i = 1; i < CSGI_INI__MAX_FILE_SIZE; i++)
        fputc('x', f);
    fclose(f);
    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_ini *ini = NULL;
    ck_assert_int_eq(csgi_ini__load(&ini, path, &error), 0);
    ck_assert_uint_eq(ini->section_count, 0);
    csgi_ini__free(ini);

    f = fopen(path, "a");
    fputc('x', f);
    fclose(f);
    ini = (csgi_ini *)1;
    ck_assert_int_eq(csgi_ini__load(&ini, path, &error), CSGI_ETOOBIG);
    ck_assert_ptr_null(ini);
    ck_assert_ptr_nonnull(strstr(error.text, "file larger than 16777216 bytes"));
    unlink(path);
}
END_TEST

START_TEST(error_first_wins)
{
    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_load_error__set(&error, "earlier.ini", 7, "app:x", "k", "first %s", "problem");
    csgi_ini *ini = NULL;
    ck_assert_int_eq(csgi_ini__load_buffer(&ini, "t.ini", "junk\n", 5, &error), CSGI_EPARSE);
    char message[256];
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_str_eq(message, "earlier.ini:7: [app:x] k: first problem");
    /* Inside one file, the first bad line is reported, not the later ones. */
    expect_error("[s]\na = 1\na = 2\nbad line\n[s]\n",
                 "t.ini:3: [s] a: duplicate key 'a' (first at line 2)");
    /* NULL error is allowed. */
    ck_assert_int_eq(csgi_ini__load_buffer(&ini, "t.ini", "junk\n", 5, NULL), CSGI_EPARSE);
    ck_assert_int_eq(csgi_ini__load(NULL, "x", NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_ini__load_buffer(&ini, NULL, "", 0, NULL), CSGI_EINVAL);
}
END_TEST

START_TEST(error_format_omits_missing_parts)
{
    csgi_load_error error;
    char buf[256];
    csgi_load_error__clear(&error);
    csgi_load_error__set(&error, "a.ini", 3, "app:main", "use", "missing");
    ck_assert_int_eq(csgi_load_error_format(&error, buf, sizeof(buf)),
                     (int)strlen("a.ini:3: [app:main] use: missing"));
    ck_assert_str_eq(buf, "a.ini:3: [app:main] use: missing");
    csgi_load_error__clear(&error);
    csgi_load_error__set(&error, "a.ini", 0, "app:main", NULL, "no such section");
    csgi_load_error_format(&error, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a.ini: [app:main] no such section");
    csgi_load_error__clear(&error);
    csgi_load_error__set(&error, NULL, 0, NULL, "k", "bad");
    csgi_load_error_format(&error, buf, sizeof(buf));
    ck_assert_str_eq(buf, "k: bad");
    csgi_load_error__clear(&error);
    csgi_load_error__set(&error, NULL, 0, NULL, NULL, "plain");
    csgi_load_error_format(&error, buf, sizeof(buf));
    ck_assert_str_eq(buf, "plain");
    /* Truncation keeps the buffer terminated and reports the full length. */
    char small[8];
    csgi_load_error__clear(&error);
    csgi_load_error__set(&error, "long-name.ini", 12, NULL, NULL, "text");
    ck_assert_int_eq(csgi_load_error_format(&error, small, sizeof(small)),
                     (int)strlen("long-name.ini:12: text"));
    ck_assert_str_eq(small, "long-na");
    csgi_load_error__set(NULL, "x", 1, NULL, NULL, "ignored");
}
END_TEST

START_TEST(query_helpers_accept_null)
{
    ck_assert_ptr_null(csgi_ini__find_section(NULL, "x"));
    ck_assert_ptr_null(csgi_ini__find_key(NULL, "x"));
    ck_assert_ptr_null(csgi_ini__get(NULL, "x"));
    csgi_ini__free(NULL);
}
END_TEST

/* Fail the Nth allocation for every N: each failure is ENOMEM, nothing leaks. */
START_TEST(out_of_memory_every_allocation)
{
    char *big = repeat("long value ", 3000);
    char *text = malloc(8000);
    snprintf(text, 8000, "[DEFAULT]\na = 1\n[app:main]\nuse = x\nlong = %s\nmulti = 1\n  2\n", big);
    ck_assert_int_eq(test_alloc_install(), 0);
    int successes = 0;
    for (long budget = 0; budget < 200 && !successes; budget++) {
        test_alloc_fail_after(budget);
        csgi_load_error error;
        csgi_load_error__clear(&error);
        csgi_ini *ini = NULL;
        int rc = csgi_ini__load_buffer(&ini, "t.ini", text, strlen(text), &error);
        if (rc == 0) {
            successes++;
            test_alloc_fail_never();
            ck_assert_str_eq(value_of(ini, "app:main", "multi"), "1\n2");
            csgi_ini__free(ini);
        } else {
            ck_assert_int_eq(rc, CSGI_ENOMEM);
            ck_assert_ptr_null(ini);
            ck_assert_str_eq(error.text, "out of memory");
        }
    }
    test_alloc_fail_never();
    ck_assert_int_eq(successes, 1);
    test_alloc_restore();
    free(text);
    free(big);
}
END_TEST

/* ---- the shared test data --------------------------------------------------- */

START_TEST(testdata_basic_app)
{
    csgi_ini *ini = load_testdata("pastedeploy/basic_app.ini");
    expect_sections(ini, "application:main|application:other|composit:remote_addr");
    expect_keys(ini, "composit:remote_addr", "use|app.1|addr.1|app.2|addr.2");
    ck_assert_str_eq(value_of(ini, "application:main", "use"), "egg:FakeApp#basic_app");
    ck_assert_str_eq(value_of(ini, "composit:remote_addr", "addr.2"), "0.0.0.0");
    ck_assert_int_eq(
        csgi_ini__find_key(csgi_ini__find_section(ini, "composit:remote_addr"), "app.2")->line, 12);
    csgi_ini__free(ini);
}
END_TEST

START_TEST(testdata_test_func_without_final_newline)
{
    csgi_ini *ini = load_testdata("pastedeploy/test_func.ini");
    expect_sections(ini, "application:main|application:other|composit:remote_addr");
    ck_assert_str_eq(value_of(ini, "application:other", "use"),
                     "call:fakeapp.apps:make_basic_app2");
    ck_assert_str_eq(value_of(ini, "composit:remote_addr", "addr.2"), "0.0.0.0");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(testdata_test_filter)
{
    csgi_ini *ini = load_testdata("pastedeploy/test_filter.ini");
    expect_sections(ini, "app:normal|pipeline:piped|filter-app:filt|pipeline:piped2|"
                         "filter-app:filt2|app:inv|pipeline:piped3");
    ck_assert_str_eq(value_of(ini, "pipeline:piped", "pipeline"), "egg:FakeApp#caps normal");
    expect_keys(ini, "filter-app:filt", "use|method_to_call|next");
    ck_assert_str_eq(value_of(ini, "app:inv", "filter-with"), "egg:FakeApp#caps");
    /* piped3's extra key is an error for the next layer, not for this one. */
    expect_keys(ini, "pipeline:piped3", "pipeline|extra_config_option");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(testdata_test_filter_with)
{
    csgi_ini *ini = load_testdata("pastedeploy/test_filter_with.ini");
    expect_sections(ini, "app:main|filter:filter1|filter:filter2");
    expect_keys(ini, "app:main", "use|example|filter-with");
    ck_assert_str_eq(value_of(ini, "app:main", "example"), "test");
    ck_assert_str_eq(value_of(ini, "filter:filter1", "filter-with"), "filter2");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(testdata_test_config)
{
    csgi_ini *ini = load_testdata("pastedeploy/test_config.ini");
    expect_sections(ini, "DEFAULT|app:test1|app:test2|app:test3|app:test_foreign_config|"
                         "app:test_get|app:test_global_conf");
    expect_keys(ini, "DEFAULT", "def1|def2|basepath");
    ck_assert_str_eq(value_of(ini, "DEFAULT", "basepath"), "%(here)s");
    ck_assert_str_eq(value_of(ini, "app:test1", "apppath"), "%(basepath)s/app");
    expect_keys(ini, "app:test2", "use|set def1|set another|local conf");
    ck_assert_str_eq(value_of(ini, "app:test2", "local conf"), "something");
    expect_keys(ini, "app:test3", "use|set def1|another");
    ck_assert_str_eq(value_of(ini, "app:test3", "another"),
                     "something more\nacross several\nlines");
    ck_assert_int_eq(csgi_ini__find_key(csgi_ini__find_section(ini, "app:test3"), "another")->line,
                     21);
    expect_keys(ini, "app:test_get", "use|set def2|get def1|get foo");
    ck_assert_str_eq(value_of(ini, "app:test_get", "get foo"), "def2");
    ck_assert_str_eq(value_of(ini, "app:test_global_conf", "test_interp"), "this:%(inherit)s");
    csgi_ini__free(ini);

    ini = load_testdata("pastedeploy/test_config_included.ini");
    expect_sections(ini, "DEFAULT|app:main");
    expect_keys(ini, "app:main", "paste.app_factory|set glob|bob|another");
    ck_assert_str_eq(value_of(ini, "app:main", "paste.app_factory"),
                     "fakeapp.configapps:SimpleApp.make_app");
    ck_assert_str_eq(value_of(ini, "DEFAULT", "def2"), "from include");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(testdata_test_error_loads_at_this_layer)
{
    csgi_ini *ini = load_testdata("pastedeploy/test_error.ini");
    expect_sections(ini, "DEFAULT|app:main");
    ck_assert_str_eq(value_of(ini, "app:main", "setting2"), "%(does_not_exist)s/bar");
    ck_assert_int_eq(csgi_ini__find_key(csgi_ini__find_section(ini, "app:main"), "setting2")->line,
                     8);
    csgi_ini__free(ini);
}
END_TEST

START_TEST(testdata_executable)
{
    csgi_ini *ini = load_testdata("pastedeploy/executable.ini");
    expect_sections(ini, "exe|server|app");
    ck_assert_int_eq(ini->sections->line, 2);
    ck_assert_str_eq(value_of(ini, "exe", "sys.path"),
                     "/fake/path/\n/another/fake/path ../fake_packages/");
    ck_assert_str_eq(value_of(ini, "server", "use"), "egg:PasteScript#cgi");
    ck_assert_str_eq(value_of(ini, "app", "use"), "egg:FakeApp#basic_app");
    csgi_ini__free(ini);
}
END_TEST

START_TEST(testdata_talk)
{
    csgi_ini *ini = load_testdata("talk/wsgi_webob.ini");
    expect_sections(ini, "app:main");
    ck_assert_str_eq(value_of(ini, "app:main", "paste.app_factory"), "wsgi_webob:app_factory");
    csgi_ini__free(ini);

    ini = load_testdata("talk/wsgi_webob_mid.ini");
    expect_sections(ini, "pipeline:main|app:hello|filter:auth");
    ck_assert_str_eq(value_of(ini, "pipeline:main", "pipeline"), "auth hello");
    ck_assert_str_eq(value_of(ini, "app:hello", "paste.app_factory"), "wsgi_webob_mid:app_factory");
    ck_assert_str_eq(value_of(ini, "filter:auth", "paste.filter_factory"),
                     "wsgi_webob_mid:filter_factory");
    csgi_ini__free(ini);
}
END_TEST

/* Every .ini file in both directories loads (so new samples are covered too). */
START_TEST(testdata_every_file_loads)
{
    const char *dirs[] = {"pastedeploy", "talk"};
    int loaded = 0;
    for (size_t d = 0; d < 2; d++) {
        char dir_path[PATH_MAX];
        snprintf(dir_path, sizeof(dir_path), "%s/%s", test_testdata_dir(), dirs[d]);
        DIR *dir = opendir(dir_path);
        ck_assert_msg(dir != NULL, "cannot open %s", dir_path);
        struct dirent *entry;
        while ((entry = readdir(dir))) {
            size_t n = strlen(entry->d_name);
            if (n < 4 || strcmp(entry->d_name + n - 4, ".ini") != 0)
                continue;
            char relative[PATH_MAX];
            snprintf(relative, sizeof(relative), "%s/%s", dirs[d], entry->d_name);
            csgi_ini *ini = load_testdata(relative);
            ck_assert_uint_gt(ini->section_count, 0);
            csgi_ini__free(ini);
            loaded++;
        }
        closedir(dir);
    }
    ck_assert_int_ge(loaded, 10);
}
END_TEST

/* ---- size ----------------------------------------------------------------- */

/* A file of n keys in one section (and n sections of one key), the last
   line repeating the key (section) written at line dup_line, or none. */
static char *many(size_t n, int sections, int with_duplicate)
{
    size_t size = n * 40 + 64;
    char *text = malloc(size);
    ck_assert_ptr_nonnull(text);
    size_t len = 0;
    if (!sections)
        len += (size_t)snprintf(text + len, size - len, "[app:main]\n");
    for (size_t i = 0; i < n; i++) {
        if (sections)
            len += (size_t)snprintf(text + len, size - len, "[s%zu]\nk = %zu\n", i, i);
        else
            len += (size_t)snprintf(text + len, size - len, "key%zu = value %zu\n", i, i);
    }
    if (with_duplicate)
        len += (size_t)snprintf(text + len, size - len, sections ? "[s%zu]\n" : "key%zu = again\n",
                                n / 2);
    return text;
}

/* 100,000 keys (and sections) load, and a repeated one is still found:
   duplicates are found through an index, not by scanning (PasteDeploy
   takes 1.6 s for this; a scan per key took 49 s). */
START_TEST(hundred_thousand_keys)
{
    enum { N = 100000 };
    for (int sections = 0; sections < 2; sections++) {
        char *text = many(N, sections, 0);
        csgi_ini *ini = load_text(text);
        if (sections) {
            ck_assert_uint_eq(ini->section_count, N);
            ck_assert_str_eq(value_of(ini, "s77777", "k"), "77777");
        } else {
            ck_assert_uint_eq(ini->sections->key_count, N);
            ck_assert_str_eq(value_of(ini, "app:main", "key99999"), "value 99999");
            ck_assert_ptr_null(csgi_ini__find_key(ini->sections, "key100000"));
        }
        csgi_ini__free(ini);
        free(text);

        text = many(N, sections, 1);
        char expected[256];
        if (sections)
            snprintf(expected, sizeof(expected),
                     "t.ini:%d: [s%d] duplicate section [s%d] (first at line %d)", 2 * N + 1, N / 2,
                     N / 2, N + 1);
        else
            snprintf(expected, sizeof(expected),
                     "t.ini:%d: [app:main] key%d: duplicate key 'key%d' (first at line %d)", N + 2,
                     N / 2, N / 2, N / 2 + 2);
        expect_error(text, expected);
        free(text);
    }
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("ini");
    TCase *syntax = tcase_create("syntax");
    tcase_add_test(syntax, sections_and_keys_in_order);
    tcase_add_test(syntax, colon_delimiter);
    tcase_add_test(syntax, first_delimiter_wins);
    tcase_add_test(syntax, keys_are_case_sensitive_and_keep_spaces);
    tcase_add_test(syntax, inline_comments_are_kept);
    tcase_add_test(syntax, continuation_lines);
    tcase_add_test(syntax, empty_lines_in_values);
    tcase_add_test(syntax, continuation_relative_to_key_indent);
    tcase_add_test(syntax, comments_shebang_and_bom);
    tcase_add_test(syntax, line_endings);
    tcase_add_test(syntax, section_headers);
    tcase_add_test(syntax, empty_inputs);
    suite_add_tcase(suite, syntax);

    TCase *long_lines = tcase_create("long_lines");
    tcase_add_test(long_lines, long_value);
    tcase_add_test(long_lines, long_pipeline);
    tcase_add_test(long_lines, long_key_and_header);
    tcase_add_test(long_lines, long_lines_from_a_file);
    tcase_add_test(long_lines, hundred_thousand_keys);
    suite_add_tcase(suite, long_lines);

    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, error_duplicate_key);
    tcase_add_test(errors, error_duplicate_section);
    tcase_add_test(errors, error_key_before_section);
    tcase_add_test(errors, error_malformed_line);
    tcase_add_test(errors, error_section_header);
    tcase_add_test(errors, error_nul_byte);
    tcase_add_test(errors, error_unreadable_file);
    tcase_add_test(errors, error_file_too_large);
    tcase_add_test(errors, error_first_wins);
    tcase_add_test(errors, error_format_omits_missing_parts);
    tcase_add_test(errors, query_helpers_accept_null);
    tcase_add_test(errors, out_of_memory_every_allocation);
    suite_add_tcase(suite, errors);

    TCase *testdata = tcase_create("testdata");
    tcase_add_test(testdata, testdata_basic_app);
    tcase_add_test(testdata, testdata_test_func_without_final_newline);
    tcase_add_test(testdata, testdata_test_filter);
    tcase_add_test(testdata, testdata_test_filter_with);
    tcase_add_test(testdata, testdata_test_config);
    tcase_add_test(testdata, testdata_test_error_loads_at_this_layer);
    tcase_add_test(testdata, testdata_executable);
    tcase_add_test(testdata, testdata_talk);
    tcase_add_test(testdata, testdata_every_file_loads);
    suite_add_tcase(suite, testdata);

    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
