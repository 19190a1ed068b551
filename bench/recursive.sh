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
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

names=1000
parse_options clients names -- "$@"
require_positive_integers "$rounds" "$seconds" "$clients" "$names"

bench_setup recursive cargo dig=bind9-dnsutils nsd=nsd dnsperf=dnsperf unbound=unbound

# --- the zone -----------------------------------------------------------------------------------

zone=bench.test
mkdir -p "$D/zones" "$D/empty-zones"
write_bench_zone "$zone" "$names" "$D/zones/$zone.zone"
bench_queries "$zone" "$names" "$D/queries"

# --- servers ------------------------------------------------------------------------------------

build_edgenode

say "starting NSD (upstream for $zone, $names names) and the resolvers, edgenode and Unbound"
start_nsd 1 "$D/zones" "$zone" "zone:
    name: \"$zone\"
    zonefile: \"$zone.zone\""
start_edgenode --zones "$D/empty-zones" --dns-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --forwarder "127.0.0.1:$nsd_port"
edgenode_port=$(listening_port dns-udp)
wait_for_noerror "$edgenode_port" "$zone" SOA ||
    edgenode_failed "edgenode does not resolve through its forwarder (www1.$zone A: $(dns_status "$edgenode_port" "www1.$zone" A))"
start_unbound "$nsd_port" "$zone"

# --- the runs -----------------------------------------------------------------------------------

# warm NAME PID PORT: one pass over the whole file to fill the cache, then a second pass that
# must find every name there; and one answer must hold the address.
warm() {
    local name=$1 answer
    warm_resolver "$1" "$2" "$3" "$D/queries"
    answer=$(dig @127.0.0.1 -p "$3" +time=1 +tries=1 +short "www1.$zone" A 2>/dev/null || true)
    [[ $answer == 10.0.0.1 ]] ||
        { echo "error: $name answers www1.$zone A with '$answer', not 10.0.0.1" >&2; exit 1; }
}

say "warm-up: every name once, then a check pass, dnsperf -n 1 -q 20"
warm edgenode "$edgenode_pid" "$edgenode_port"
warm unbound "$unbound_pid" "$unbound_port"
: >"$D/results"

# NSD's CPU over each measured run goes to the results' 6th column (0.00 when every answer came
# from the cache).
upstream_pid=$nsd_pid
for ((round = 1; round <= rounds; round++)); do
    say "round $round/$rounds: ${seconds} s each, dnsperf -c $clients -q 100 -e"
    dnsperf_run edgenode "$edgenode_pid" "$edgenode_port" "$seconds"
    dnsperf_run unbound "$unbound_pid" "$unbound_port" "$seconds"
done

read -r edgenode_rss _ < <(memory_kib "$edgenode_pid")
read -r unbound_rss _ < <(memory_kib "$unbound_pid")

# --- the report ---------------------------------------------------------------------------------

# Over a server's runs: the queries lost, and NSD's CPU seconds, summed.
sum_of() { awk -v s="$1" -v col="$2" '$1 == s {t += $col} END {printf (col == 6 ? "%.2f" : "%d"), t}' "$D/results"; }

e_qps=$(median_of edgenode qps)
u_qps=$(median_of unbound qps)
e_cpu=$(median_of edgenode cpu)
u_cpu=$(median_of unbound cpu)
e_bytes=$(last_field edgenode 7)
u_bytes=$(last_field unbound 7)

cat <<EOF

### Recursive DNS cache hits over UDP: edgenode vs Unbound $(unbound -V 2>&1 | awk 'NR == 1 {print $2}')

Both forward to NSD (authoritative for $zone, $names A records, TTL 3600); caches warmed with every
name first. $rounds round(s) of $seconds s per server, alternating; dnsperf -c $clients -q 100 -e; $(wc -l <"$D/queries") queries
(every name once, shuffled); $(nproc) cores; edgenode one process (tokio), Unbound num-threads 2.

$(table_header server "median QPS" "CPU s per 100k answers (median)" "RSS MiB" "response bytes (mean)")
$(table_row edgenode "$e_qps" "$(fixed "$e_cpu" 3)" "$(mib "$edgenode_rss")" "$e_bytes")
$(table_row Unbound "$u_qps" "$(fixed "$u_cpu" 3)" "$(mib "$unbound_rss")" "$u_bytes")
$(table_row "edgenode / Unbound" "$(ratio "$e_qps" "$u_qps")" "$(ratio "$e_cpu" "$u_cpu")" \
    "$(ratio "$edgenode_rss" "$unbound_rss")" "$(ratio "$e_bytes" "$u_bytes")")

Response codes (last run): edgenode: $(last_field edgenode 8); Unbound: $(last_field unbound 8).
Queries lost (all measured runs): edgenode $(sum_of edgenode 5), Unbound $(sum_of unbound 5).
Upstream (NSD) CPU during the measured runs: $(sum_of edgenode 6) s with edgenode, $(sum_of unbound 6) s with
Unbound (0.00 when every answer came from the cache). RSS is taken after the runs; response bytes
are dnsperf's mean response size (last run).
EOF
