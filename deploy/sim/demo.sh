#!/usr/bin/env bash
# A narrated walk through a simulated cluster (deploy/sim/up.sh): each step says what it shows,
# prints the dig or curl command and its output, and checks the outcome; any step that does not
# behave stops the demo with exit status 1.
#
#   deploy/sim/demo.sh
#
# 1. DNS steering: clients in Asia, North America and Europe get different nearest nodes.
# 2. A miss filled from a sibling: one object asked on every node, one origin request.
# 3. Preload: objects pushed into the cluster, then served without the origin.
# 4. A cluster-wide purge, then a miss that goes back to the origin once.
# 5. A node killed: it leaves the DNS answers, and sibling fetches stop going to it.
#
# Starts a 3-node simulation when none is running (and stops it again at the end, unless
# SIM_KEEP=1); uses one that is (its nodes must all be running). EDGENODE_BIN as for up.sh.
# Steps whose feature this edgenode build lacks say "skipped: not available" and do not fail,
# unless SIM_REQUIRE_ALL=1. Every wait has a deadline; the whole walk takes a few seconds.
set -euo pipefail

# shellcheck source=deploy/sim/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl dig jq; do
    command -v "$tool" >/dev/null || { echo "demo.sh: $tool is needed" >&2; exit 1; }
done

demo_started=$SECONDS
started_here=0
skipped=()
finish() {
    local status=$?
    if ((status == 0)); then
        printf '\ndemo passed in %ss' "$((SECONDS - demo_started))"
        if ((${#skipped[@]} > 0)); then
            printf '; skipped (not available in this build): %s' "${skipped[*]}"
        fi
        printf '\n'
    else
        printf '\ndemo FAILED (exit %s) after %ss; node logs: %s/node*/stderr.log\n' \
            "$status" "$((SECONDS - demo_started))" "$SIM_STATE" >&2
        if ((started_here)); then
            for log in "$SIM_STATE"/node*/stderr.log; do
                [[ -f "$log" ]] || continue
                echo "--- last lines of $log" >&2
                tail -n 15 "$log" >&2
            done
        fi
    fi
    if ((started_here)) && [[ "${SIM_KEEP:-0}" != 1 ]]; then
        "$SIM_DIR/down.sh"
    fi
    return "$status"
}
trap finish EXIT

# --- narration and checks ------------------------------------------------------------------

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
pass() { printf '   ok: %s\n' "$*"; }
fail() {
    printf '   FAIL: %s\n' "$*" >&2
    exit 1
}
skip() {
    printf '   skipped: not available (%s)\n' "$2"
    skipped+=("$1")
    if [[ "${SIM_REQUIRE_ALL:-0}" == 1 ]]; then
        fail "SIM_REQUIRE_ALL=1 and step '$1' is not available"
    fi
}

# Prints a command as one could paste it, runs it, prints its output indented; the output is
# left in $out and the exit status in $rc (the demo goes on either way: the caller checks).
show() {
    local arg line=""
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./:@=,+%-]+$ ]]; then
            line+="$arg "
        else
            line+="'${arg//\'/\'\\\'\'}' "
        fi
    done
    printf '$ %s\n' "${line% }"
    rc=0
    out=$("$@" 2>&1) || rc=$?
    if [[ -n "$out" ]]; then
        while IFS= read -r line; do
            printf '  %s\n' "$line"
        done <<<"$out"
    fi
}

# --- the simulation --------------------------------------------------------------------------

running_nodes() {
    local n alive=0
    for ((n = 1; n <= SIM_NODES; n++)); do
        if is_ours "$(cat "$(node_dir "$n")/pid" 2>/dev/null)" "$(node_dir "$n")/edgenode.toml"; then
            alive=$((alive + 1))
        fi
    done
    echo "$alive"
}

if [[ ! -e "$SIM_STATE" ]]; then
    say "No simulation is running: starting one (deploy/sim/up.sh 3)"
    started_here=1
    "$SIM_DIR/up.sh" 3
    # shellcheck source=deploy/sim/lib.sh
    source "$SIM_DIR/lib.sh"
elif [[ ! -f "$SIM_STATE/sim.env" ]] || (($(running_nodes) != SIM_NODES)); then
    echo "demo.sh: the simulation in $SIM_STATE is not whole (a node was stopped, or up.sh" \
        "failed); run deploy/sim/down.sh and try again" >&2
    exit 1
fi
if ((SIM_NODES < 3)); then
    echo "demo.sh: the demo needs at least 3 nodes; this simulation has $SIM_NODES" >&2
    exit 1
fi
steering=$(sed -n 's/^steering=//p' "$SIM_STATE/features")
origin="http://$SIM_ORIGIN_ADDR:$SIM_ORIGIN_PORT"
# A path prefix of this run's own, so that the demo can run again on the same simulation.
run="$(date +%s)-$$"

origin_count() { curl -sf --max-time 2 "$origin/_origin/count?path=$1"; }

# The sum of one metric's values on the listed nodes (0 where a node has not counted any yet).
metric_sum() {
    local name=$1 n total=0 value
    shift
    for n in "$@"; do
        value=$(curl -sf --max-time 2 "http://$(node_ip "$n"):$SIM_ADMIN_PORT/metrics" |
            awk -v name="$name" '$1 == name { print $2 }') ||
            fail "node$n's /metrics did not answer"
        total=$(awk -v a="$total" -v b="${value:-0}" 'BEGIN { print a + b }')
    done
    echo "$total"
}
fetches() {
    local source=$1
    shift
    metric_sum "edgenode_proxy_fetches_total{source=\"$source\"}" "$@"
}
mapfile -t nodes < <(seq 1 "$SIM_NODES")

# GET $SIM_NAME/PATH through node N's proxy; prints the status and the cache-status header.
get() {
    local n=$1 path=$2 ip
    ip=$(node_ip "$n")
    show curl -s -o /dev/null --max-time 5 -w '%{http_code} cache-status: %header{cache-status}\n' \
        --resolve "$SIM_NAME:$SIM_HTTP_PORT:$ip" "http://$SIM_NAME:$SIM_HTTP_PORT$path"
    ((rc == 0)) || fail "node$n did not answer GET $path"
    [[ "$out" == "200 "* ]] || fail "node$n answered '$out' for $path"
    cache_status=${out#200 cache-status: }
}
# The same without the printout, for loops over many objects.
get_quietly() {
    local n=$1 path=$2 ip
    ip=$(node_ip "$n")
    out=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %header{cache-status}' \
        --resolve "$SIM_NAME:$SIM_HTTP_PORT:$ip" "http://$SIM_NAME:$SIM_HTTP_PORT$path") || true
    [[ "$out" == "200 "* ]] || fail "node$n answered '$out' for $path"
    cache_status=${out#200 }
}

echo
echo "The cluster: $SIM_NODES nodes, origin $origin"
for n in "${nodes[@]}"; do
    note "node$n ($(node_region "$n" | tr ' ' /)) at $(node_ip "$n"): dns :$SIM_DNS_PORT, proxy :$SIM_HTTP_PORT, admin :$SIM_ADMIN_PORT"
done
show curl -s "$(node_admin 1)/admin/cluster"
((rc == 0)) || fail "node1's admin API did not answer"
out=$(jq -c '{id, peers: [.peers[] | {id, up}]}' <<<"$out")
note "in short: $out"

# --- 1. DNS steering -------------------------------------------------------------------------

say "1. DNS steering: clients from three regions ask for $SIM_NAME"
note "127.0.1.0/24 stands for China (AS), 127.0.2.0/24 for the US (NA), 127.0.3.0/24 for"
note "Germany (EU); node1, node2 and node3 sit in those regions. Each client asks a node other"
note "than its own: every node gives the same answer, the nearest healthy nodes first."
if ((steering)); then
    for region in 1 2 3; do
        ask=$((region % SIM_NODES + 1))
        show dig +short +time=2 +tries=1 -b "127.0.$region.1" -p "$SIM_DNS_PORT" \
            "@$(node_ip "$ask")" "$SIM_NAME" A
        ((rc == 0)) || fail "dig failed"
        first=$(head -n 1 <<<"$out")
        [[ "$first" == "$(node_ip "$region")" ]] ||
            fail "a client in 127.0.$region.0/24 should get node$region ($(node_ip "$region")) first, got '$first'"
        (($(wc -l <<<"$out") == 2)) || fail "expected 2 addresses (count = 2), got: $out"
        pass "client 127.0.$region.1 -> node$region first, and one more node"
    done
    note "HTTPDNS gives the same answer (the client's address in ip=):"
    show curl -s "http://$(node_ip 2):$SIM_HTTPDNS_PORT/d?dn=$SIM_NAME&ip=127.0.1.9"
    [[ "${out%%;*}" == "$(node_ip 1)" ]] || fail "HTTPDNS should answer node1 first, got '$out'"
    pass "HTTPDNS: node1 first for 127.0.1.9"
else
    skip dns-steering "this edgenode has no DNS steering: a pool policy is unknown to it"
fi

# --- 2. a miss filled from a sibling ---------------------------------------------------------

path="/demo/$run/logo.png"
say "2. One object asked on every node: the origin is asked once"
note "Each object has an owner (rendezvous hashing over the healthy nodes). A miss on another"
note "node fetches it from the owner; only the owner asks the origin."
origin_before=()
sibling_before=()
for n in "${nodes[@]}"; do
    origin_before[n]=$(fetches origin "$n")
    sibling_before[n]=$(fetches sibling "$n")
done
for n in "${nodes[@]}"; do
    get "$n" "$path"
    if ((n == 1)); then
        [[ "$cache_status" == *"fwd=miss"* ]] || fail "the first request should miss, got '$cache_status'"
    fi
done
show curl -s "$origin/_origin/count?path=$path"
[[ "$out" == 1 ]] || fail "the origin was asked $out times for $path, expected once"
pass "the origin was asked once for $path"
note "edgenode_proxy_fetches_total on each node's /metrics, counted during this step:"
owner=""
origin_fetches=0
sibling_fetches=0
for n in "${nodes[@]}"; do
    from_origin=$(($(fetches origin "$n") - origin_before[n]))
    from_sibling=$(($(fetches sibling "$n") - sibling_before[n]))
    note "node$n: source=\"origin\" +$from_origin, source=\"sibling\" +$from_sibling"
    origin_fetches=$((origin_fetches + from_origin))
    sibling_fetches=$((sibling_fetches + from_sibling))
    ((from_origin == 0)) || owner=$n
done
((origin_fetches == 1)) || fail "expected 1 origin fetch in the cluster, counted $origin_fetches"
((sibling_fetches == SIM_NODES - 1)) ||
    fail "expected $((SIM_NODES - 1)) sibling fetches (every node but the owner), counted $sibling_fetches"
pass "node$owner owns the object and asked the origin; the $sibling_fetches others asked node$owner"
note "Asked again, every node has it:"
for n in "${nodes[@]}"; do
    get "$n" "$path"
    [[ "$cache_status" == "edgenode; hit" ]] || fail "node$n should hit now, got '$cache_status'"
done
[[ "$(origin_count "$path")" == 1 ]] || fail "the origin was asked again"
pass "a hit on every node, still one origin request"

# --- 3. preload ------------------------------------------------------------------------------

say "3. Preload: objects pushed into the cluster before anyone asks"
preload_file="$SIM_STATE/preload-$run.txt"
for i in 1 2 3 4 5 6; do
    echo "http://$SIM_NAME/demo/$run/preload/$i.js"
done >"$preload_file"
preloaded=0
if "$SIM_BIN" preload --help >/dev/null 2>&1; then
    note "The URLs, one per line, go to one node's admin API; each is warmed on its owner."
    show cat "$preload_file"
    show timeout 30 "$SIM_BIN" preload --admin "$(node_admin 1)" "$preload_file"
    ((rc == 0)) || fail "edgenode preload exited with $rc"
    preloaded=1
else
    skip preload "no 'edgenode preload' command in this build"
fi
if ((preloaded)); then
    for i in 1 2 3 4 5 6; do
        count=$(origin_count "/demo/$run/preload/$i.js")
        [[ "$count" == 1 ]] || fail "the origin saw $count requests for preload/$i.js, expected 1"
    done
    pass "the origin was asked once for each of the 6 objects, by the preload"
    note "Every object on every node (hit: stored here; miss: taken from its owner's cache):"
    hits=0
    for i in 1 2 3 4 5 6; do
        line="preload/$i.js:"
        for n in "${nodes[@]}"; do
            get_quietly "$n" "/demo/$run/preload/$i.js"
            if [[ "$cache_status" == "edgenode; hit" ]]; then
                line+=" node$n=hit"
                hits=$((hits + 1))
            else
                line+=" node$n=miss"
            fi
        done
        note "$line"
        count=$(origin_count "/demo/$run/preload/$i.js")
        [[ "$count" == 1 ]] || fail "preload/$i.js went to the origin again ($count requests)"
    done
    ((hits >= 6)) || fail "only $hits hits: each preloaded object should be a hit on its owner"
    pass "$hits hits, no further origin request"
fi

# --- 4. purge --------------------------------------------------------------------------------

say "4. A cluster-wide purge of $path, then a miss"
url="http://$SIM_NAME$path"
if "$SIM_BIN" purge --help >/dev/null 2>&1; then
    note "One command purges on every node (--cluster fans out over the peers):"
    show timeout 20 "$SIM_BIN" purge --admin "$(node_admin 1)" --url "$url" --cluster
    ((rc == 0)) || fail "edgenode purge exited with $rc"
else
    skip purge-cli "no 'edgenode purge --cluster' in this build"
    note "The same purge through each node's admin API instead:"
    for n in "${nodes[@]}"; do
        show curl -s --max-time 5 -X POST "$(node_admin "$n")/admin/purge?url=$url"
        purged=$(jq -r '.purged // 0' <<<"$out" 2>/dev/null) || purged=0
        ((purged >= 1)) || fail "node$n purged nothing"
    done
fi
note "The next request misses and the object comes from the origin once more:"
get 1 "$path"
[[ "$cache_status" == *"fwd=miss"* ]] || fail "node1 should miss after the purge, got '$cache_status'"
for ((n = 2; n <= SIM_NODES; n++)); do
    get "$n" "$path"
done
show curl -s "$origin/_origin/count?path=$path"
[[ "$out" == 2 ]] || fail "the origin should have been asked twice in all, was asked $out times"
pass "a miss after the purge; the origin asked once more (2 in all), for the whole cluster"

# --- 5. a node killed ------------------------------------------------------------------------

victim=1
victim_ip=$(node_ip "$victim")
say "5. node$victim ($victim_ip, the Asian node) is killed"
victim_pid=$(<"$(node_dir "$victim")/pid")
is_ours "$victim_pid" "$(node_dir "$victim")/edgenode.toml" || fail "node$victim is not running"
survivors=()
for n in "${nodes[@]}"; do
    ((n == victim)) || survivors+=("$n")
done
note "First, new objects asked on node$victim: it asks the origin itself only for those it owns,"
note "and its owner (a sibling) for the others."
owned=()
others=()
for ((i = 1; i <= 40 && (${#owned[@]} < 3 || ${#others[@]} < 3); i++)); do
    object="/demo/$run/before/$i.css"
    before=$(fetches origin "$victim")
    get_quietly "$victim" "$object"
    if (($(fetches origin "$victim") > before)); then
        ((${#owned[@]} < 3)) && owned+=("$object")
    else
        ((${#others[@]} < 3)) && others+=("$object")
    fi
done
((${#owned[@]} == 3 && ${#others[@]} == 3)) || fail "could not find objects on both sides"
note "owned by node$victim: ${owned[*]##*/}; owned by the others: ${others[*]##*/}"

show kill -KILL "$victim_pid"
killed_at=$(date +%s%N)
note "Heartbeats every $SIM_HEARTBEAT_MS ms; a peer is down after $SIM_DOWN_AFTER missed in a row."
victim_down_everywhere() {
    local n
    for n in "${survivors[@]}"; do
        [[ "$(peers_up "$n")" == "$((SIM_NODES - 2))" ]] || return 1
    done
}
# A few intervals past the misses that mark it down, with room for a loaded machine.
limit_ms=$((SIM_HEARTBEAT_MS * (SIM_DOWN_AFTER + 10)))
wait_for $((limit_ms / 1000 + 1)) victim_down_everywhere ||
    fail "node$victim is not marked down on every survivor"
took_ms=$((($(date +%s%N) - killed_at) / 1000000))
((took_ms <= limit_ms)) || fail "marking node$victim down took $took_ms ms (limit $limit_ms ms)"
show curl -s "$(node_admin "${survivors[0]}")/admin/cluster"
out=$(jq -c '[.peers[] | {id, up}]' <<<"$out")
note "in short: $out"
pass "every survivor marked node$victim down $took_ms ms after the kill"

if ((steering)); then
    note "An Asian client now gets the remaining nodes:"
    show dig +short +time=2 +tries=1 -b 127.0.1.1 -p "$SIM_DNS_PORT" "@$(node_ip "${survivors[0]}")" "$SIM_NAME" A
    ((rc == 0)) || fail "dig failed"
    grep -qxF "$victim_ip" <<<"$out" && fail "the answer still holds the dead node $victim_ip"
    (($(wc -l <<<"$out") == 2)) || fail "expected the 2 remaining nearest nodes, got: $out"
    pass "node$victim left the DNS answers"
else
    skip dns-steering-failover "this edgenode has no DNS steering"
fi

note "The same six objects asked on every survivor:"
failed_before=$(fetches sibling-failed "${survivors[@]}")
for object in "${owned[@]}" "${others[@]}"; do
    line="${object##*/}:"
    for n in "${survivors[@]}"; do
        get_quietly "$n" "$object"
        if [[ "$cache_status" == "edgenode; hit" ]]; then line+=" node$n hit,"; else line+=" node$n miss,"; fi
    done
    note "$line origin requests $(origin_count "$object")"
done
failed=$(($(fetches sibling-failed "${survivors[@]}") - failed_before))
note "failed sibling fetches (attempts to reach node$victim): $failed"
for object in "${owned[@]}"; do
    [[ "$(origin_count "$object")" == 2 ]] ||
        fail "${object##*/}: node$victim's object should have come from the origin once more, by its new owner"
done
for object in "${others[@]}"; do
    [[ "$(origin_count "$object")" == 1 ]] ||
        fail "${object##*/}: a survivor's object should not have gone to the origin again"
done
((failed == 0)) || fail "$failed sibling fetches still went to the dead node$victim"
pass "node$victim's objects went to new owners (one origin request each), the rest stayed where they were; nothing was sent to node$victim"
