#!/usr/bin/env bash
# docs/server.md and docs/csgi-serve.1 describe every key of egg:csgi#http
# and every option of csgi-serve, and the manual page renders without
# warnings. The keys are the rows of the server's key table in
# src/gateway/server.c; the options are the ones csgi-serve's --help lists.
#   server_reference.sh CSGI_SERVE SOURCE_DIR
set -euo pipefail
serve=$1
source_dir=$2
reference=$source_dir/docs/server.md
manual=$source_dir/docs/csgi-serve.1

# The keys: the rows of egg:csgi#http's key table in src/gateway/server.c.
keys=$(sed -n 's/^    {"\([a-z_]*\)", KEY_[A-Z_]*,.*/\1/p' "$source_dir/src/gateway/server.c")
[ -n "$keys" ] || { echo "no key found in src/gateway/server.c's key table"; exit 1; }
options=$("$serve" --help | sed -n 's/^  \(--[a-z-]*\).*/\1/p')
[ -n "$options" ] || { echo "csgi-serve --help lists no options"; exit 1; }

# The headings of the manual's entries: the .B/.BR/.BI line after each .TP.
entries=$(awk 'prev == ".TP" { print } { prev = $1 }' "$manual" | sed 's/\\-/-/g')
missing=0
# documented KIND NAME ROW_PATTERN ENTRY_PATTERN: NAME has a table row in
# docs/server.md and an entry in the manual.
documented() {
    grep -Eq "$3" "$reference" || { echo "docs/server.md: no table row for the $1 $2"; missing=1; }
    grep -Eq "$4" <<<"$entries" || { echo "docs/csgi-serve.1: no entry for the $1 $2"; missing=1; }
}
for key in $keys; do
    # A row whose first cell names the key (alone or with others).
    documented key "$key" "^\| ([^|]*, )?\`$key\`" "^\.BR? (.*\" )?$key( |\$)"
done
for option in $options; do
    documented option "$option" "^\| \`${option}[ \`]" "^\.B[IR]? $option( |\$)"
done
[ "$missing" = 0 ] || exit 1
echo "$(wc -w <<<"$keys") keys and $(wc -w <<<"$options") options documented in both"

if command -v groff >/dev/null 2>&1; then
    warnings=$(groff -man -Tutf8 -ww -z "$manual" 2>&1)
    [ -z "$warnings" ] || { printf 'groff warns about docs/csgi-serve.1:\n%s\n' "$warnings"; exit 1; }
    echo "docs/csgi-serve.1 renders without warnings"
else
    echo "groff not found: the manual's rendering is not checked"
fi
