# Migrates C code and Markdown written for csgi 0.1 to the names of csgi 0.2
# (CHANGELOG.md, "Changed (breaking)"; the rules are in docs/conventions.md).
# Run it over your sources, then rebuild:
#
#   git ls-files '*.c' '*.h' '*.md' | xargs sed -E -i -f csgi-0.2-renames.sed
#
# Whole-word renames only. Changes of parameter order are not done here: the
# compiler points at each call (CHANGELOG.md lists the new orders).
# Lines that already list a rename ("`old` -> `new`", as in a changelog) are
# left alone.
/` -> `/b
s/\bcsgi_test_request_header\b/csgi_test_request_add_header/g
s/\bcsgi_test_request_body\b/csgi_test_request_set_body/g
s/\bcsgi_test_request_environ\b/csgi_test_request_set_environ/g
s/\bcsgi_test_request_remote\b/csgi_test_request_set_remote/g
s/\bcsgi_test_request_timeout\b/csgi_test_request_set_timeout/g
