#!/usr/bin/env bash
# The OpenStack api-paste.ini shapes of tests/data/openstack load with csgi's
# middleware: `csgi-serve --check --stub-unknown` builds every section of
# each file, and the references it had to stub must be exactly the
# service's own factories. Every oslo.middleware, Paste (and, once merged,
# keystonemiddleware) reference must resolve to csgi's C middleware.
#   openstack_paste.sh PATH_TO_CSGI_SERVE DATA_DIR
# DATA_DIR is tests/data/openstack.
#
# How every section gets built: an [app:], [pipeline:] or [composite:]
# section is checked as the application FILE#NAME; the [filter:] sections
# go into one probe pipeline of a file written here, each as
# `use = config:FILE#NAME`, ending in a csgi healthcheck app. A composite
# whose factory is the service's (nova's urlmap_factory, cinder's
# pipeline_factory, ...) is a stub, so what it would build is reached only
# this way. The test then also checks that every factory reference the file
# writes showed up in some check's output.
set -euo pipefail
serve=$1
data=$(cd "$2" && pwd) # absolute: the probe files name the files in it

# SERVICE: the services' own factories (Python code csgi cannot run), which
# must be stubbed. osprofiler.web:WsgiMiddleware.factory counts as one: it
# is the osprofiler library's tracing middleware, which reports to the
# service's profiler backend, and csgi does not ship it (nova names its own
# wrapper, nova.profiler:WsgiMiddleware.factory).
declare -A SERVICE
SERVICE[glance-api-paste.ini]='
glance.api:root_app_factory
glance.api.versions:create_resource
glance.api.v2.router:API.factory
glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory
glance.api.middleware.cache:CacheFilter.factory
glance.api.middleware.cache_manage:CacheManageFilter.factory
glance.api.middleware.context:ContextMiddleware.factory
glance.api.middleware.context:UnauthenticatedContextMiddleware.factory
glance.api.middleware.gzip:GzipMiddleware.factory
osprofiler.web:WsgiMiddleware.factory'
SERVICE[glance-api-paste.composite.ini]="${SERVICE[glance-api-paste.ini]}
glance.api:pipeline_factory"
SERVICE[cinder-api-paste.ini]='
call:cinder.api:root_app_factory
call:cinder.api.middleware.auth:pipeline_factory
cinder.api.middleware.fault:FaultWrapper.factory
cinder.api.middleware.auth:NoAuthMiddleware.factory
cinder.api.middleware.auth:NoAuthMiddlewareIncludeProjectID.factory
cinder.api.middleware.auth:CinderKeystoneContext.factory
cinder.api.middleware.request_id:RequestId.factory
cinder.api.v3.router:APIRouter.factory
cinder.api.versions:Versions.factory
osprofiler.web:WsgiMiddleware.factory'
SERVICE[neutron-api-paste.ini]='
call:neutron.auth:pipeline_factory
neutron.api.extensions:ProjectIdMiddleware.factory
neutron.auth:NoauthFakeProjectId.factory
neutron.auth:NeutronKeystoneContext.factory
neutron.api.extensions:plugin_aware_extension_middleware_factory
neutron.pecan_wsgi.app:versions_factory
neutron.api.v2.router:APIRouter.factory
osprofiler.web:WsgiMiddleware.factory'
SERVICE[heat-api-paste.ini]='
heat.api:pipeline_factory
heat.common.wsgi:app_factory
heat.common.wsgi:filter_factory
heat.common.context:ContextMiddleware_filter_factory
heat.api.aws.ec2token:EC2Token_filter_factory
heat.common.auth_url:filter_factory
heat.common.auth_password:filter_factory
heat.common.custom_backend_auth:filter_factory
heat.common.noauth:filter_factory
osprofiler.web:WsgiMiddleware.factory'
SERVICE[nova-api-paste.ini]='
call:nova.api.openstack.urlmap:urlmap_factory
call:nova.api.auth:pipeline_factory_v21
nova.api.metadata.handler:MetadataRequestHandler.factory
nova.api.openstack.requestlog:RequestLog.factory
nova.api.compute_req_id:ComputeReqIdMiddleware.factory
nova.api.openstack:FaultWrapper.factory
nova.api.openstack.auth:NoAuthMiddleware.factory
nova.profiler:WsgiMiddleware.factory
nova.api.openstack:LegacyV2CompatibleWrapper.factory
nova.api.openstack.compute:APIRouterV21.factory
nova.api.openstack.compute.versions:Versions.factory
nova.api.openstack.compute.versions:VersionsV2.factory
nova.api.auth:NovaKeystoneContext.factory'

# PENDING: middleware csgi will ship that is not merged yet; each may be
# stubbed now. Whoever merges one removes its names here, so that from then
# on the test proves it resolves.
PENDING=''

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# The factory reference of each line of a --check output that names one:
# "[filter:x] filter paste.filter_factory = REF (...)" -> REF (a pipeline's
# line, "[pipeline:x] pipeline pipeline = a b", names sections).
references() {
    sed -n -e '/^ *\[[^]]*\] pipeline /d' -e 's/^ *\[[^]]*\] [a-z-]* [a-z_.]* = \([^ ]*\).*/\1/p'
}

in_list() { # in_list WORD LIST
    grep -qxF -- "$1" <<<"$2"
}

checked_files=0
for file in "$data"/*.ini; do
    name=$(basename "$file")
    [ -n "${SERVICE[$name]+set}" ] || { fail "$name: no SERVICE list in this test"; continue; }
    checked_files=$((checked_files + 1))
    out="$dir/$name.out"
    : >"$out"

    # Every application section, as the entry point.
    apps=$(sed -n 's/^\[\(app\|pipeline\|composite\|filter-app\):\(.*\)\]$/\2/p' "$file")
    for app in $apps; do
        if ! "$serve" --check --stub-unknown "$file#$app" >>"$out" 2>"$dir/err"; then
            fail "$name#$app does not build: $(cat "$dir/err")"
        fi
    done

    # Every filter section, in one probe pipeline.
    filters=$(sed -n 's/^\[filter:\(.*\)\]$/\1/p' "$file")
    probe="$dir/probe-$name"
    {
        printf '[pipeline:main]\npipeline ='
        i=0
        for filter in $filters; do
            printf ' f%d' "$i"
            i=$((i + 1))
        done
        printf ' end\n\n[app:end]\nuse = egg:oslo.middleware#healthcheck\n'
        i=0
        for filter in $filters; do
            printf '\n[filter:f%d]\nuse = config:%s#%s\n' "$i" "$file" "$filter"
            i=$((i + 1))
        done
    } >"$probe"
    if ! "$serve" --check --stub-unknown "$probe" >>"$out" 2>"$dir/err"; then
        fail "$name: the filters do not build: $(cat "$dir/err")"
    fi

    built=$(references <"$out" | sort -u)
    stubbed=$(grep -F '(stub: unknown factory)' "$out" | references | sort -u || true)
    written=$(sed -n 's/^\(use\|paste\.[a-z_]*\) *= *\([^ ]*\).*/\2/p' "$file" | sort -u)

    # Every reference the file writes was built (or stubbed) somewhere.
    while read -r reference; do
        [ -n "$reference" ] || continue
        in_list "$reference" "$built" || fail "$name: $reference was never built"
    done <<<"$written"
    # Stubbed: a service's own factory, or middleware not merged yet.
    while read -r reference; do
        [ -n "$reference" ] || continue
        if ! in_list "$reference" "${SERVICE[$name]}" && ! in_list "$reference" "$PENDING"; then
            fail "$name: $reference was stubbed: csgi should resolve it"
        fi
    done <<<"$stubbed"
    # Every service factory listed is written in the file and was stubbed.
    while read -r reference; do
        [ -n "$reference" ] || continue
        in_list "$reference" "$written" || fail "$name: SERVICE lists $reference, not in the file"
        in_list "$reference" "$stubbed" || fail "$name: $reference (a service factory) resolved"
    done <<<"${SERVICE[$name]}"

    resolved=$(comm -23 <(comm -12 <(echo "$built") <(echo "$written")) <(echo "$stubbed") |
        tr '\n' ' ')
    pending=$(comm -12 <(echo "$stubbed") <(sort -u <<<"$PENDING") | tr '\n' ' ')
    echo "$name: resolved by csgi: $resolved"
    echo "$name: pending (stubbed for now): ${pending:-none}"
done

[ "$checked_files" -ge 6 ] || fail "only $checked_files files checked in $data"
# A PENDING name no file needed a stub for has landed: it belongs out of the list.
all_stubbed=$(cat "$dir"/*.out | grep -F '(stub: unknown factory)' | references | sort -u || true)
while read -r reference; do
    [ -n "$reference" ] || continue
    in_list "$reference" "$all_stubbed" ||
        echo "NOTE: $reference resolves now: remove it from PENDING so that this test keeps it so"
done <<<"$PENDING"
if [ "$failures" -ne 0 ]; then
    echo "$failures failures"
    exit 1
fi
echo "all $checked_files files: every stub is a service factory or pending middleware"
