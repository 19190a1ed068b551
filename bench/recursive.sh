#!/usr/bin/env bash
# bench/recursive.sh: recursive DNS cache hits over UDP, edgenode against Unbound, both
# forwarding to the same local upstream, on this machine, in one run.
#
#   bench/recursive.sh [--quick] [--rounds N] [--seconds S] [--clients N] [--names N] [--keep]
#
# --keep leaves the work directory (configs, zone, query file, logs, dnsperf outputs) in place.
#
# The upstream is NSD, authoritative for a generated zone bench.test. of --names A records
# (www1 ... www1000 by default, TTL 3600 so nothing expires during the run). NSD runs beside the
# comparison and its CPU is not counted for either side: with warm caches it should see no
# queries at all during the measured runs, and the script prints its CPU time over those runs as
# a check (0.00 s expected). edgenode (`serve --forwarder`, an empty zones directory) and Unbound
# (a forwarding cache, `forward-zone: "."`, 2 threads) both forward to it.
#
# The query file is every name of the zone (A), shuffled. Each server gets one warm-up pass over
# the whole file (the cache misses, forwarded to NSD) and then a second pass that must come back
# all NOERROR with nothing lost, so both caches hold every name before anything is measured.
# dnsperf then queries edgenode and Unbound in turn, A B A B ... (3 rounds of 10 s each by
# default; --quick: 1 round of 5 s), and the script prints per server: the median QPS, the median
# server CPU seconds per 100k answers (utime+stime from /proc/PID/stat of the server and all its
# processes, before and after each run, / CLK_TCK), and the server's memory after the runs.
#
# Reading the figures: dnsperf and the server share the machine's 2 cores, and dnsperf alone
# tops out near 130-145k QPS here whatever the server (REFERENCE-SERVERS.md). Once both servers
# reach that ceiling QPS says little; CPU per 100k answers is the sharper figure to compare
# (lower is better; the edgenode / Unbound row reads "how many times Unbound's cost").
#
# Fairness: edgenode is one process whose multi-threaded tokio runtime may use both cores;
# Unbound runs with `num-threads: 2` and `so-reuseport: yes`, so each may use the whole machine.
# Unbound has 64 MiB message and RRset caches (its RSS grows with what it caches, not with those
# limits) and `minimal-responses: yes`: it answers with the answer section alone. NSD's answers
# (its default) also carry the zone's NS RRset and the server's address; a forwarder that relays
# them as they came sends bigger answers, which the response-bytes column shows.
#
# Measured here (3 x 10 s, Nov 2026, the first forwarding edgenode, other builds running beside):
# edgenode 52-70k QPS, 0.98-1.07 CPU s per 100k answers, 11 MiB; Unbound 76-97k QPS, 0.61-0.66
# CPU s per 100k, 21 MiB; edgenode / Unbound: CPU 1.6-1.75 from run to run while QPS moved by 30%.
# edgenode relayed NSD's NS and glue: 95 bytes per response against Unbound's 61.
#
# Every server started here is stopped by its PID on exit. All traffic stays on 127.0.0.1.
set -euo pipefail

rounds=3
seconds=10
clients=10
names=1000
keep=false
while (($# > 0)); do
    case "$1" in
        --quick) rounds=1 seconds=5 ;;
        --rounds) rounds=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --clients) clients=$2; shift ;;
        --names) names=$2; shift ;;
        --keep) keep=true ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$rounds" "$seconds" "$clients" "$names"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "error: expected a positive integer, got '$n'" >&2; exit 2; }
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac

say() { printf '==> %s\n' "$*" >&2; }

# --- tools (apt only when one is missing, as .ci/run does) ---------------------------------------

command -v cargo >/dev/null || { echo "error: cargo is required" >&2; exit 1; }
declare -A package_of=(
    [dig]=bind9-dnsutils
    [nsd]=nsd
    [dnsperf]=dnsperf
    [unbound]=unbound
)
missing=()
for tool in "${!package_of[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
if ((${#missing[@]} > 0)); then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    # Installing these starts no service here (no systemd); the servers below use their own configs.
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2
fi
for tool in "${!package_of[@]}"; do
    command -v "$tool" >/dev/null || { echo "error: $tool is still missing" >&2; exit 1; }
done

D=$(mktemp -d "${TMPDIR:-/tmp}/edgenode-bench-recursive.XXXXXX")
server_pids=()
cleanup() {
    local pid i
    for pid in "${server_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${server_pids[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if $keep; then echo "work directory kept: $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers over /proc (no procps needed) ------------------------------------------------------

# The PID and every descendant of it, one per line.
process_tree() {
    local -A children=()
    local stat line rest pid ppid
    for stat in /proc/[0-9]*/stat; do
        { read -r line <"$stat"; } 2>/dev/null || continue
        rest=${line##*) }            # after "pid (comm) ": field 3 (state) onwards
        read -r _ ppid _ <<<"$rest"
        pid=${stat#/proc/}
        pid=${pid%/stat}
        children[$ppid]+="$pid "
    done
    local queue=("$1") next
    while ((${#queue[@]} > 0)); do
        next=${queue[0]}
        queue=("${queue[@]:1}")
        echo "$next"
        for pid in ${children[$next]:-}; do queue+=("$pid"); done
    done
}

# utime+stime (fields 14 and 15 of /proc/PID/stat) of the whole process tree, in clock ticks.
cpu_ticks() {
    local total=0 pid line rest fields
    for pid in $(process_tree "$1"); do
        { read -r line <"/proc/$pid/stat"; } 2>/dev/null || continue
        rest=${line##*) }
        read -ra fields <<<"$rest"   # fields[0] is field 3, so 14 and 15 are [11] and [12]
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

# RSS of the process tree in KiB (both servers are single processes with threads).
rss_kib() {
    local rss=0 pid v
    for pid in $(process_tree "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        rss=$((rss + ${v:-0}))
    done
    echo "$rss"
}

# A random port in 20000-31999 (below the ephemeral range) with no UDP or TCP socket on it.
free_port() {
    local port hex
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 12000))
        hex=$(printf ':%04X ' "$port")
        if ! cat /proc/net/udp /proc/net/tcp /proc/net/udp6 /proc/net/tcp6 2>/dev/null |
            awk '{print $2}' | grep -qi -- "${hex% }\$"; then
            echo "$port"
            return
        fi
    done
    echo "error: no free port found" >&2
    return 1
}

# The status dig reports for NAME TYPE at PORT (NOERROR, REFUSED, ...; "timeout" without answer).
dns_status() { # port name type [dig options]
    local port=$1 name=$2 type=$3 status
    shift 3
    status=$(dig @127.0.0.1 -p "$port" +time=1 +tries=1 "$@" "$name" "$type" 2>/dev/null |
        sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
    echo "${status:-timeout}"
}

wait_for_noerror() { # port name type [dig options]
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(dns_status "$@") == NOERROR ]] && return 0
        sleep 0.1
    done
    return 1
}

# --- the zone -----------------------------------------------------------------------------------

zone=bench.test
mkdir -p "$D/zones" "$D/empty-zones"
{
    cat <<EOF
\$ORIGIN $zone.
\$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 900 604800 3600
@ IN NS ns1
ns1 IN A 127.0.0.1
EOF
    awk -v n="$names" 'BEGIN {
        for (i = 1; i <= n; i++) printf "www%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256 }'
} >"$D/zones/$zone.zone"

# Every name once, A, shuffled with a fixed seed so that every run uses the same file.
awk -v n="$names" -v zone="$zone" 'BEGIN {
    srand(20261125)
    for (i = 1; i <= n; i++) q[i] = i
    for (i = n; i > 1; i--) { j = int(rand() * i) + 1; t = q[i]; q[i] = q[j]; q[j] = t }
    for (i = 1; i <= n; i++) printf "www%d.%s. A\n", q[i], zone }' >"$D/queries"

# --- servers ------------------------------------------------------------------------------------

say "cargo build --release"
cargo build --release --quiet
edgenode_bin=target/release/edgenode

start_nsd() {
    local port conf
    for _ in 1 2 3; do
        port=$(free_port)
        conf=$D/nsd.conf
        cat >"$conf" <<EOF
server:
    ip-address: 127.0.0.1@$port
    port: $port
    server-count: 1
    reuseport: yes
    username: ""
    chroot: ""
    database: ""
    zonesdir: "$D/zones"
    zonelistfile: "$D/zone.list"
    xfrdfile: "$D/xfrd.state"
    xfrdir: "$D"
    pidfile: "$D/nsd.pid"
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "$zone"
    zonefile: "$zone.zone"
EOF
        nsd -d -c "$conf" >"$D/nsd.log" 2>&1 &
        nsd_pid=$!
        server_pids+=("$nsd_pid")
        if wait_for_noerror "$port" "$zone" SOA +norec; then
            nsd_port=$port
            return 0
        fi
        kill -TERM "$nsd_pid" 2>/dev/null || true
        wait "$nsd_pid" 2>/dev/null || true
    done
    echo "error: NSD did not start; its log:" >&2
    cat "$D/nsd.log" >&2
    exit 1
}

start_unbound() {
    local port conf
    for _ in 1 2 3; do
        port=$(free_port)
        conf=$D/unbound.conf
        cat >"$conf" <<EOF
server:
    interface: 127.0.0.1@$port
    port: $port
    num-threads: 2
    so-reuseport: yes
    username: ""
    chroot: ""
    directory: "$D"
    pidfile: "$D/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    do-ip6: no
    do-not-query-localhost: no
    module-config: "iterator"
    access-control: 127.0.0.0/8 allow
    ratelimit: 0
    ip-ratelimit: 0
    msg-cache-size: 64m
    rrset-cache-size: 64m
    minimal-responses: yes
    local-zone: "test." nodefault
    domain-insecure: "test."
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$nsd_port
EOF
        unbound -d -c "$conf" >"$D/unbound.log" 2>&1 &
        unbound_pid=$!
        server_pids+=("$unbound_pid")
        # Recursion desired, through the forwarder: the zone's SOA comes from NSD.
        if wait_for_noerror "$port" "$zone" SOA; then
            unbound_port=$port
            return 0
        fi
        kill -TERM "$unbound_pid" 2>/dev/null || true
        wait "$unbound_pid" 2>/dev/null || true
    done
    echo "error: Unbound did not answer; its log:" >&2
    tail -n 30 "$D/unbound.log" >&2
    exit 1
}

start_edgenode() {
    local i status
    "$edgenode_bin" serve --zones "$D/empty-zones" --dns-listen 127.0.0.1:0 \
        --admin-listen 127.0.0.1:0 --forwarder "127.0.0.1:$nsd_port" \
        >"$D/edgenode.out" 2>"$D/edgenode.log" &
    edgenode_pid=$!
    server_pids+=("$edgenode_pid")
    for ((i = 0; i < 300; i++)); do
        if grep -qx ready "$D/edgenode.out"; then
            edgenode_port=$(awk '$1 == "listening" && $2 == "dns-udp" {n = split($3, a, ":"); print a[n]; exit}' "$D/edgenode.out")
            [[ -n $edgenode_port ]] && break
        fi
        kill -0 "$edgenode_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z ${edgenode_port:-} ]]; then
        echo "error: edgenode did not print ready; its log:" >&2
        tail -n 30 "$D/edgenode.log" >&2
        exit 1
    fi
    if ! wait_for_noerror "$edgenode_port" "$zone" SOA; then
        status=$(dns_status "$edgenode_port" "www1.$zone" A)
        echo "error: edgenode does not resolve through its forwarder (www1.$zone A: $status); its log:" >&2
        tail -n 30 "$D/edgenode.log" >&2
        exit 1
    fi
}

say "starting NSD (upstream for $zone, $names names) and the resolvers, edgenode and Unbound"
start_nsd
start_edgenode
start_unbound

# --- the runs -----------------------------------------------------------------------------------

clk_tck=$(getconf CLK_TCK)

# dnsperf_to NAME PORT OUT [dnsperf options]: one dnsperf run against a server.
dnsperf_to() {
    local name=$1 port=$2 out=$3
    shift 3
    dnsperf -s 127.0.0.1 -p "$port" -d "$D/queries" -e -c "$clients" "$@" >"$out" 2>&1 ||
        { cat "$out" >&2; echo "error: dnsperf failed against $name" >&2; exit 1; }
}

# summary FILE -> "qps completed lost response_bytes codes" (codes with _ for spaces)
summary() {
    awk '/Queries completed:/ { completed = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average packet size:/ { bytes = $NF }
        /Response codes:/ { sub(/^ *Response codes: */, ""); gsub(/ /, "_"); codes = $0 }
        END { printf "%.0f %d %d %d %s\n", qps, completed, lost, bytes, codes }' "$1"
}

# warm NAME PID PORT: one pass over the whole file to fill the cache, then a second pass that
# must find every name there (all NOERROR, nothing lost); and one answer must hold the address.
warm() {
    local name=$1 pid=$2 port=$3 pass completed lost codes answer
    for pass in fill check; do
        dnsperf_to "$name" "$port" "$D/dnsperf.$name.warm-$pass" -n 1 -q 20
        read -r _ completed lost _ codes < <(summary "$D/dnsperf.$name.warm-$pass")
        printf '    %-9s %-5s %5d answered, %d lost: %s\n' "$name" "$pass" "$completed" "$lost" "${codes//_/ }" >&2
    done
    kill -0 "$pid" 2>/dev/null || { echo "error: $name exited during the warm-up" >&2; exit 1; }
    if ((lost > 0 || completed != names)) || [[ $codes != NOERROR_"$names"_* ]]; then
        echo "error: $name's cache is not warm after two passes (see $D/dnsperf.$name.warm-check)" >&2
        keep=true
        exit 1
    fi
    answer=$(dig @127.0.0.1 -p "$port" +time=1 +tries=1 +short "www1.$zone" A 2>/dev/null || true)
    [[ $answer == 10.0.0.1 ]] ||
        { echo "error: $name answers www1.$zone A with '$answer', not 10.0.0.1" >&2; exit 1; }
}

# run NAME PID PORT SECONDS -> appends
# "NAME qps completed cpu_seconds lost nsd_cpu_seconds response_bytes codes" to $D/results
run() {
    local name=$1 pid=$2 port=$3 secs=$4 before after nsd_before nsd_after out
    out=$D/dnsperf.$name.$RANDOM
    nsd_before=$(cpu_ticks "$nsd_pid")
    before=$(cpu_ticks "$pid")
    dnsperf_to "$name" "$port" "$out" -q 100 -l "$secs"
    after=$(cpu_ticks "$pid")
    nsd_after=$(cpu_ticks "$nsd_pid")
    kill -0 "$pid" 2>/dev/null || { echo "error: $name exited during the run" >&2; exit 1; }
    summary "$out" | awk -v name="$name" -v cpu="$((after - before))" \
        -v nsd="$((nsd_after - nsd_before))" -v tck="$clk_tck" '
        { printf "%s %s %s %.2f %s %.2f %s %s\n", name, $1, $2, cpu / tck, $3, nsd / tck, $4, $5 }' \
        >>"$D/results"
    tail -n 1 "$D/results" | awk '{printf "    %-9s %8s QPS  %6s s CPU  lost %s\n", $1, $2, $4, $5}' >&2
}

say "warm-up: every name once, then a check pass, dnsperf -n 1 -q 20"
warm edgenode "$edgenode_pid" "$edgenode_port"
warm unbound "$unbound_pid" "$unbound_port"
: >"$D/results"

for ((round = 1; round <= rounds; round++)); do
    say "round $round/$rounds: ${seconds} s each, dnsperf -c $clients -q 100 -e"
    run edgenode "$edgenode_pid" "$edgenode_port" "$seconds"
    run unbound "$unbound_pid" "$unbound_port" "$seconds"
done

edgenode_rss=$(rss_kib "$edgenode_pid")
unbound_rss=$(rss_kib "$unbound_pid")

# --- the report ---------------------------------------------------------------------------------

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# The median over a server's runs of: qps, or cpu (CPU seconds per 100k answers).
median_of() {
    awk -v s="$1" -v what="$2" '$1 == s {print (what == "qps" ? $2 : $4 / $3 * 100000)}' \
        "$D/results" | median
}
# Over a server's runs: the queries lost, and NSD's CPU seconds, summed.
sum_of() { awk -v s="$1" -v col="$2" '$1 == s {t += $col} END {printf (col == 6 ? "%.2f" : "%d"), t}' "$D/results"; }

e_qps=$(median_of edgenode qps)
u_qps=$(median_of unbound qps)
e_cpu=$(median_of edgenode cpu)
u_cpu=$(median_of unbound cpu)
e_bytes=$(awk '$1 == "edgenode" {b = $7} END {print b}' "$D/results")
u_bytes=$(awk '$1 == "unbound" {b = $7} END {print b}' "$D/results")
e_codes=$(awk '$1 == "edgenode" {c = $8} END {gsub(/_/, " ", c); print c}' "$D/results")
u_codes=$(awk '$1 == "unbound" {c = $8} END {gsub(/_/, " ", c); print c}' "$D/results")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
three() { awk -v v="$1" 'BEGIN {printf "%.3f", v}'; }

cat <<EOF

### Recursive DNS cache hits over UDP: edgenode vs Unbound $(unbound -V 2>&1 | awk 'NR == 1 {print $2}')

Both forward to NSD (authoritative for $zone, $names A records, TTL 3600); caches warmed with every
name first. $rounds round(s) of $seconds s per server, alternating; dnsperf -c $clients -q 100 -e; $(wc -l <"$D/queries") queries
(every name once, shuffled); $(nproc) cores; edgenode one process (tokio), Unbound num-threads 2.

| server | median QPS | CPU s per 100k answers (median) | RSS MiB | response bytes (mean) |
|---|---:|---:|---:|---:|
| edgenode | $e_qps | $(three "$e_cpu") | $(mib "$edgenode_rss") | $e_bytes |
| Unbound | $u_qps | $(three "$u_cpu") | $(mib "$unbound_rss") | $u_bytes |
| edgenode / Unbound | $(ratio "$e_qps" "$u_qps") | $(ratio "$e_cpu" "$u_cpu") | $(ratio "$edgenode_rss" "$unbound_rss") | $(ratio "$e_bytes" "$u_bytes") |

Response codes (last run): edgenode: $e_codes; Unbound: $u_codes.
Queries lost (all measured runs): edgenode $(sum_of edgenode 5), Unbound $(sum_of unbound 5).
Upstream (NSD) CPU during the measured runs: $(sum_of edgenode 6) s with edgenode, $(sum_of unbound 6) s with
Unbound (0.00 when every answer came from the cache). RSS is taken after the runs; response bytes
are dnsperf's mean response size (last run).
EOF
