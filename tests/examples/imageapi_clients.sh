#!/usr/bin/env bash
# examples/imageapi used by the real OpenStack clients (Debian's
# python3-openstackclient, -glanceclient and -novaclient, installed by
# scripts/setup.sh), and by the talk's own urllib client, against the
# example's deploy file served by csgi-serve with two workers:
#
#   openstack token issue; image create --file (random bytes), image list,
#   image show (active, size, checksum), image save (identical bytes),
#   image set --property, image delete; token revoke;
#   glance image-create --file, image-list, image-download;
#   openstack flavor list, nova flavor-list;
#   a wrong password fails with the clients' usual message;
#   talk_client.py gets a v2.0 token, finds the image service in the
#   catalog and prints /images/detail;
#   identity on a port of its own: token issue, catalog list, image list;
#   a revoked token is refused by image and compute.
#
#   imageapi_clients.sh CSGI_SERVE MODULE_DIR EXAMPLE_DIR
set -euo pipefail
serve=$1
modules=$2
example=$3

for client in openstack glance nova python3; do
    command -v "$client" >/dev/null || {
        echo "imageapi_clients: $client is not installed: run scripts/setup.sh" >&2
        exit 1
    }
done

work=$(mktemp -d)
state=$work/state
mkdir -p "$state" "$work/home"
head -c 48 /dev/urandom >"$state/signing.key"
# glanceclient caches the image schema under $HOME: a fresh one per run
export HOME=$work/home

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_serving "$serve" --allow-root --module-path "$modules" --listen 127.0.0.1:0 --workers 2 \
    "$example/imageapi-paste.ini" "state_dir=$state"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work" "$out"' EXIT

fail() {
    echo "imageapi_clients: $*" >&2
    echo "---- csgi-serve's output" >&2
    tail -n 40 "$out" >&2
    exit 1
}

# run WHAT COMMAND...: run a client command, show it and its output; fail with both
run() {
    local what=$1
    shift
    echo "+ $*" >&2
    local output
    output=$(timeout 120 "$@" 2>&1) || fail "$what failed: $output"
    printf '%s\n' "$output"
}

# json_get JSON EXPRESSION: a value from the clients' -f json output
json_get() {
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2], {"d": d}))' "$1" "$2"
}

base=http://127.0.0.1:$port
export OS_AUTH_URL=$base/identity/v3 OS_IDENTITY_API_VERSION=3 OS_IMAGE_API_VERSION=2
export OS_USERNAME=admin OS_PASSWORD=admin-secret OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_INTERFACE=public

# ---- identity
token=$(run "token issue" openstack token issue -f json)
token_id=$(json_get "$token" 'd["id"]')
[ "${#token_id}" -gt 40 ] || fail "token issue gave no token: $token"
[ -n "$(json_get "$token" 'd["project_id"]')" ] || fail "the token has no project: $token"

wrong=$(OS_PASSWORD=not-the-password timeout 120 openstack token issue 2>&1) &&
    fail "a wrong password was accepted: $wrong"
grep -q 'The request you have made requires authentication. (HTTP 401)' <<<"$wrong" ||
    fail "a wrong password did not give the clients' usual message: $wrong"

# ---- image, through openstack
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$work/one.raw"
size=$(stat -c %s "$work/one.raw")
md5=$(md5sum "$work/one.raw" | cut -d' ' -f1)
created=$(run "image create" openstack image create --file "$work/one.raw" --disk-format raw \
    --container-format bare -f json e2e-one)
id=$(json_get "$created" 'd["id"]')

listed=$(run "image list" openstack image list -f json)
[ "$(json_get "$listed" '[i["Name"] for i in d if i["ID"] == "'"$id"'"]')" = "['e2e-one']" ] ||
    fail "image list does not list e2e-one: $listed"

shown=$(run "image show" openstack image show -f json "$id")
[ "$(json_get "$shown" 'd["status"]')" = active ] || fail "the image is not active: $shown"
[ "$(json_get "$shown" 'd["size"]')" = "$size" ] || fail "the size is wrong: $shown"
[ "$(json_get "$shown" 'd["checksum"]')" = "$md5" ] || fail "the checksum is wrong: $shown"

run "image save" openstack image save --file "$work/one.saved" "$id" >/dev/null
cmp "$work/one.raw" "$work/one.saved" || fail "image save's bytes differ"

run "image set" openstack image set --property colour=blue --property purpose=e2e "$id" >/dev/null
shown=$(run "image show" openstack image show -f json "$id")
[ "$(json_get "$shown" 'd["properties"]["colour"]')" = blue ] ||
    fail "image set --property did not stick: $shown"

run "image delete" openstack image delete "$id" >/dev/null
gone=$(timeout 120 openstack image show "$id" 2>&1) && fail "a deleted image is still shown: $gone"
grep -qi 'no image\|not found\|404' <<<"$gone" || fail "a deleted image: $gone"

# ---- image, through glance
head -c $((2 * 1024 * 1024 + 7)) /dev/urandom >"$work/two.raw"
created=$(run "glance image-create" glance image-create --name g-two --disk-format raw \
    --container-format bare --file "$work/two.raw")
gid=$(awk '$2 == "id" { print $4 }' <<<"$created")
[ -n "$gid" ] || fail "glance image-create printed no id: $created"
grep -q "| status .*| active" <<<"$created" || fail "glance's image is not active: $created"
# (outputs are captured before grep: with pipefail, grep -q leaving early
# would make the writer's SIGPIPE fail the pipeline)
listed=$(run "glance image-list" glance image-list)
grep -q "$gid.*g-two" <<<"$listed" || fail "glance image-list: no g-two: $listed"
run "glance image-download" glance image-download --file "$work/two.saved" "$gid" >/dev/null
cmp "$work/two.raw" "$work/two.saved" || fail "glance image-download's bytes differ"

# ---- compute
flavors=$(run "flavor list" openstack flavor list -f json)
[ "$(json_get "$flavors" 'sorted(f["Name"] for f in d)[0]')" = m1.large ] ||
    fail "flavor list: $flavors"
flavors=$(run "nova flavor-list" nova flavor-list)
grep -q 'm1.tiny' <<<"$flavors" || fail "nova flavor-list: no m1.tiny: $flavors"

# ---- the talk's client: a v2.0 token, the catalog, /images/detail
talk=$(run "talk_client.py" python3 "$example/talk_client.py" "$base/v2.0" admin admin-secret admin)
grep -q '"g-two"' <<<"$talk" || fail "the talk's client did not list g-two: $talk"

# ---- revocation: a revoked token is refused by the image and compute services
status_with_token() {
    curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $token_id" "$base$1"
}
[ "$(status_with_token /image/v2/images)" = 200 ] || fail "the issued token is refused by image"
run "token revoke" openstack token revoke "$token_id" >/dev/null
[ "$(status_with_token /image/v2/images)" = 401 ] || fail "image accepts a revoked token"
[ "$(status_with_token /compute/v2.1/flavors)" = 401 ] || fail "compute accepts a revoked token"

# ---- identity on a port of its own (README.md): a second csgi-serve serves
# the identity pipeline alone, and its catalog names where image and compute are
main_pid=$pid main_out=$out
start_serving "$serve" --allow-root --module-path "$modules" --listen 127.0.0.1:0 --workers 1 \
    --app-name identity "$example/imageapi-paste.ini" "state_dir=$state" \
    "image_url=$base/image" "compute_url=$base/compute/v2.1"
identity_pid=$pid identity_out=$out pid=$main_pid out=$main_out
trap 'kill "$pid" "$identity_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work" "$out" "$identity_out"' EXIT
export OS_AUTH_URL=http://127.0.0.1:$port/v3
run "token issue, identity alone" openstack token issue -f json >/dev/null
catalog=$(run "catalog list, identity alone" openstack catalog list -f json)
grep -q "$base/image" <<<"$catalog" || fail "the catalog does not name $base/image: $catalog"
listed=$(run "image list, identity alone" openstack image list -f json)
grep -q g-two <<<"$listed" || fail "image list through identity on its own port: no g-two: $listed"
kill -TERM "$identity_pid"
wait "$identity_pid" || fail "csgi-serve (identity alone) exited with $?"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || fail "csgi-serve exited with $status"
echo "imageapi_clients: every client command worked"
