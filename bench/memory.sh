#!/usr/bin/env bash
# bench/memory.sh: bench/run.sh's memory row on its own: what one cached 1 KiB object costs the
# proxy in resident memory, and what the cache charges for it against its budget.
#
#   bench/memory.sh [--objects N] [--keep]
#
# Starts the static origin (bench/servers.sh's start_origin) and edgenode (the proxy alone, h2c,
# a 1 GiB cache budget so that nothing is evicted), fetches N (default 100000) distinct 1 KiB
# objects through it with h2load (1 connection, 20 streams), then fetches them again (all must be
# hits: the origin sees no new request), and prints edgenode's RSS before and after, the growth
# per object, and the budget charge per object (`edgenode_cache_bytes{namespace="http"}` from the
# admin listener's /metrics) against the payload of 1 KiB. EDGENODE_BIN=path runs a binary built
# elsewhere (else `cargo build --release`).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

objects=100000
parse_options objects -- "$@"
require_positive_integers "$objects"

bench_setup memory curl=curl nginx=nginx h2load=nghttp2-client
build_edgenode
start_origin
mkdir -p "$D/empty-zones"
cat >"$D/edgenode.toml" <<EOF
# bench/memory.sh: a budget well above the payload so that nothing is evicted.
[cache]
memory = "1GiB"
EOF
start_edgenode --config "$D/edgenode.toml" --zones "$D/empty-zones" --dns-listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --origin "http://127.0.0.1:$origin_port"
admin_port=$(listening_port admin)
read -r rss_empty _ < <(memory_kib "$edgenode_pid")

fill_and_check "$edgenode_pid" "$edgenode_name" "$objects" "$D/h2load"
read -r rss _ < <(memory_kib "$edgenode_pid")

metrics=$(curl -sf "http://127.0.0.1:$admin_port/metrics") || { echo "error: no /metrics" >&2; exit 1; }
charged=$(awk '/^edgenode_cache_bytes\{.*namespace="http"/ {print $2}' <<<"$metrics")
entries=$(awk '/^edgenode_cache_entries\{.*namespace="http"/ {print $2}' <<<"$metrics")
[[ -n $charged && -n $entries ]] || { echo "error: no cache figures in /metrics" >&2; exit 1; }

awk -v n="$objects" -v e="$rss_empty" -v r="$rss" -v c="$charged" -v k="$entries" 'BEGIN {
    printf "objects            %d (%d entries held)\n", n, k
    printf "RSS                %d KiB empty, %d KiB with the objects\n", e, r
    printf "RSS per object     %.3f KiB (%.2f x the 1 KiB payload)\n", (r - e) / n, (r - e) / n
    printf "charge per object  %.3f KiB (%.2f x the RSS growth)\n", c / 1024 / k, (c / 1024 / k) / ((r - e) / n)
}'
