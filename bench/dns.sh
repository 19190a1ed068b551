#!/usr/bin/env bash
# bench/dns.sh: authoritative DNS over UDP, edgenode against NSD, on this machine, in one run.
#
#   bench/dns.sh [--quick] [--rounds N] [--seconds S] [--nsd-servers N] [--clients N] [--keep]
#
# --keep leaves the work directory (configs, query file, logs, dnsperf outputs) in place.
#
# Both servers load the repository's zones/ (NSD ignores the *.geo.toml policies, so it answers
# www.example.test A from the zone file where edgenode applies the geo policy). One query file,
# generated from the zones themselves (a zone transfer from NSD), mixes positive answers
# (including the geo name www.example.test A), NXDOMAIN and NODATA. dnsperf then queries
# edgenode and NSD in turn, A B A B ... (3 rounds of 10 s each by default; --quick: 1 round of
# 5 s), and the script prints per server: the median QPS, the median server CPU seconds per 100k
# answers (utime+stime from /proc/PID/stat of the server and all its processes, before and after
# each run), and the memory of the server's processes after the runs.
#
# Reading the figures: dnsperf and the server share the machine's 2 cores, and dnsperf alone
# tops out near 130-145k QPS here whatever the server (REFERENCE-SERVERS.md). Once both servers
# reach that ceiling QPS says little; CPU per 100k answers is the figure to compare.
#
# Fairness: edgenode is one process whose multi-threaded tokio runtime may use both cores, so NSD
# runs with `server-count: 2` (two single-threaded server processes sharing the port through
# SO_REUSEPORT): each server may then use the whole machine. `--nsd-servers 1` caps NSD at one
# core. Measured here (3 x 10 s, Nov 2026): NSD server-count 1: 106k QPS, 0.56 CPU s per 100k
# answers; server-count 2: 138k QPS (the dnsperf ceiling), 0.64 CPU s per 100k. The cost per
# answer hardly depends on the choice, so the CPU ratio holds either way; the QPS ratio is the
# one that moves (edgenode / NSD 0.73 against 1 server, 0.60 against 2).
#
# Every server started here is stopped by its PID on exit. All traffic stays on 127.0.0.1.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

nsd_servers=2
parse_options nsd_servers clients -- "$@"

bench_setup dns cargo nsd=nsd dnsperf=dnsperf dig=bind9-dnsutils
shopt -s nullglob
zone_files=(zones/*.zone)
((${#zone_files[@]} > 0)) || { echo "error: no zones/*.zone" >&2; exit 1; }

# --- servers ------------------------------------------------------------------------------------

build_edgenode
first_zone=$(basename "${zone_files[0]}" .zone)

say "starting NSD (server-count $nsd_servers) and edgenode"
zone_clauses=$(
    for zone_file in "${zone_files[@]}"; do
        # provide-xfr: the query file is generated from a transfer of the zone.
        printf 'zone:\n    name: "%s"\n    zonefile: "%s"\n    provide-xfr: 127.0.0.1 NOKEY\n' \
            "$(basename "$zone_file" .zone)" "$PWD/$zone_file"
    done
)
start_nsd "$nsd_servers" "$D" "$first_zone" "$zone_clauses"
start_edgenode --zones zones --dns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
edgenode_port=$(listening_port dns-udp)

# --- the query file -----------------------------------------------------------------------------

# Every (owner, type) of every zone, from an AXFR: fully qualified names, one record per line.
: >"$D/records"
for zone_file in "${zone_files[@]}"; do
    zone=$(basename "$zone_file" .zone)
    dig @127.0.0.1 -p "$nsd_port" +time=2 +tries=1 +onesoa +noall +answer "$zone" AXFR |
        awk -v zone="$zone." '$4 != "RRSIG" && $4 != "NSEC" {print tolower($1), $4, zone}' >>"$D/records"
done
[[ -s $D/records ]] || { echo "error: no records transferred from NSD" >&2; exit 1; }

# 1000 queries, in a fixed order: 50% positive answers (every owner/type in turn, A at CNAME
# owners; wildcard owners get a concrete label), 20% the geo name www.<first zone> A, 15% NXDOMAIN, 15% NODATA (a type
# absent at an existing owner).
awk -v geo="www.$first_zone." '
    { owner = $1; type = $2; zone = $3
      sub(/^\*\./, "bench-wild.", owner)
      # Clients ask for addresses and get the CNAME chain with them.
      key = owner " " (type == "CNAME" ? "A" : type)
      if (!(key in seen)) { seen[key] = 1; positive[np++] = key }
      types[owner] = types[owner] " " type " "
      # No NODATA query where the answer would be a CNAME or a referral instead.
      if (type == "CNAME" || (type == "NS" && owner != zone)) no_nodata[owner] = 1
      if (!(zone in zseen)) { zseen[zone] = 1; zones[nz++] = zone } }
    END {
      for (owner in types) {
        if (owner in no_nodata) continue
        split("TXT MX CAA AAAA A", candidates, " ")
        for (i = 1; i <= 5; i++) if (index(types[owner], " " candidates[i] " ") == 0) {
          nodata[nn++] = owner " " candidates[i]; break }
      }
      # for (k in array) order is unspecified: sort the NODATA list for a stable file.
      for (i = 1; i < nn; i++) for (j = i; j > 0 && nodata[j-1] > nodata[j]; j--) {
        t = nodata[j]; nodata[j] = nodata[j-1]; nodata[j-1] = t }
      p = x = d = 0
      for (i = 0; i < 1000; i++) {
        slot = i % 20
        if (slot < 10)      print positive[p++ % np]
        else if (slot < 14) print geo " A"
        else if (slot < 17) { printf "nx-%d.%s A\n", x, zones[x % nz]; x++ }
        else if (nn > 0)    print nodata[d++ % nn]
        else                print positive[p++ % np]
      }
    }' "$D/records" >"$D/queries"
say "query file: $(wc -l <"$D/queries") queries over $(wc -l <"$D/records") records of ${#zone_files[@]} zone(s)"

# --- the runs -----------------------------------------------------------------------------------

say "warm-up: 1 s each"
dnsperf_run edgenode "$edgenode_pid" "$edgenode_port" 1
dnsperf_run nsd "$nsd_pid" "$nsd_port" 1
: >"$D/results"

for ((round = 1; round <= rounds; round++)); do
    say "round $round/$rounds: ${seconds} s each, dnsperf -c $clients -q 100 -e"
    dnsperf_run edgenode "$edgenode_pid" "$edgenode_port" "$seconds"
    dnsperf_run nsd "$nsd_pid" "$nsd_port" "$seconds"
done

read -r edgenode_rss edgenode_pss < <(memory_kib "$edgenode_pid")
read -r nsd_rss nsd_pss < <(memory_kib "$nsd_pid")

# --- the report ---------------------------------------------------------------------------------

e_qps=$(median_of edgenode qps)
n_qps=$(median_of nsd qps)
e_cpu=$(median_of edgenode cpu)
n_cpu=$(median_of nsd cpu)

cat <<EOF

### Authoritative DNS over UDP: edgenode vs NSD $(nsd -v 2>&1 | awk 'NR == 1 {print $3}')

$rounds round(s) of $seconds s per server, alternating; dnsperf -c $clients -q 100 -e; $(wc -l <"$D/queries") queries
(50% positive, 20% $first_zone geo name, 15% NXDOMAIN, 15% NODATA); $(nproc) cores; NSD server-count $nsd_servers.

$(table_header server "median QPS" "CPU s per 100k answers (median)" "RSS MiB" "PSS MiB")
$(table_row edgenode "$e_qps" "$(fixed "$e_cpu" 3)" "$(mib "$edgenode_rss")" "$(mib "$edgenode_pss")")
$(table_row NSD "$n_qps" "$(fixed "$n_cpu" 3)" "$(mib "$nsd_rss")" "$(mib "$nsd_pss")")
$(table_row "edgenode / NSD" "$(ratio "$e_qps" "$n_qps")" "$(ratio "$e_cpu" "$n_cpu")" \
    "$(ratio "$edgenode_rss" "$nsd_rss")" "$(ratio "$edgenode_pss" "$nsd_pss")")

Response codes (last run): edgenode: $(last_field edgenode 8); NSD: $(last_field nsd 8).
Memory is summed over each server's processes after the runs (NSD: main, xfrd and $nsd_servers server
process(es)); RSS counts pages the NSD processes share once per process, PSS splits them.
EOF
