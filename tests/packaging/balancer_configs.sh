#!/usr/bin/env bash
# contrib/nginx-csgi.conf and contrib/haproxy-csgi.cfg, the balancer
# configurations docs/deploy.md explains, are accepted by Debian's nginx
# (nginx -t) and haproxy (haproxy -c), with a self-signed certificate in
# place of theirs; and docs/deploy.md shows each of them exactly as it is.
# Exits 77 (skipped) when nginx, haproxy or openssl is not installed
# (scripts/setup.sh installs them).
#   balancer_configs.sh CONTRIB_DIR DEPLOY_MD
set -euo pipefail
contrib=$1
doc=$2

# The page's ```nginx and ```haproxy blocks are the files, word for word.
python3 - "$doc" "$contrib/nginx-csgi.conf" "$contrib/haproxy-csgi.cfg" <<'PY'
import re
import sys

doc = open(sys.argv[1]).read()
for path, language in ((sys.argv[2], "nginx"), (sys.argv[3], "haproxy")):
    blocks = re.findall(r"```" + language + r"\n(.*?)```", doc, re.S)
    if open(path).read() not in blocks:
        sys.exit("%s: no ```%s block is %s as it is" % (sys.argv[1], language, path))
PY

for tool in nginx haproxy openssl; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "$tool not found (scripts/setup.sh installs it): skipped"
        exit 77
    }
done

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=cloud.test -days 1 \
    -keyout "$dir/cloud.key" -out "$dir/cloud.pem" 2>/dev/null
cat "$dir/cloud.pem" "$dir/cloud.key" >"$dir/haproxy.pem"

# nginx: the file inside a minimal main configuration of our own
sed "s|/etc/nginx/cloud|$dir/cloud|" "$contrib/nginx-csgi.conf" >"$dir/csgi.conf"
cat >"$dir/nginx.conf" <<NGINX
pid $dir/nginx.pid;
error_log $dir/error.log;
events {}
http {
    access_log off;
    include $dir/csgi.conf;
}
NGINX
nginx -t -p "$dir" -c "$dir/nginx.conf" || { echo "nginx -t refused contrib/nginx-csgi.conf"; exit 1; }

sed "s|/etc/haproxy/cloud.pem|$dir/haproxy.pem|" "$contrib/haproxy-csgi.cfg" >"$dir/haproxy.cfg"
haproxy -c -f "$dir/haproxy.cfg" || { echo "haproxy -c refused contrib/haproxy-csgi.cfg"; exit 1; }
echo "contrib/nginx-csgi.conf and contrib/haproxy-csgi.cfg: accepted, and shown as they are in docs/deploy.md"
