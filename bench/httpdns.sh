#!/usr/bin/env bash
# bench/httpdns.sh: HTTPDNS and DNS over HTTPS over HTTP/2 + TLS 1.3 (h2load), beside UDP DNS
# (dnsperf), for the same edgenode, the same name and warm answers, on this machine, in one run.
#
#   bench/httpdns.sh [--quick] [--rounds N] [--seconds S] [--connections N] [--streams N]
#                    [--name NAME] [--keep]
#
# --keep leaves the work directory (config, certificate, logs, h2load and dnsperf outputs and
# their per-request logs, which are large) in place.
#
# One edgenode serves the repository's zones/ with DNS over UDP and an HTTPS listener (TLS 1.3,
# its self-signed certificate, ALPN h2). The config written here turns the per-client HTTPDNS rate
# limit off (`client_rate = 0`: every request comes from 127.0.0.1, and the default 100 req/s
# with a burst of 200 would answer nearly everything 429) and declares the Alibaba-style account
# 100000. Five workloads, all for --name (www.example.test by default, a geo-policy name;
# api.example.test is a plain one), type A:
#   doh-get  RFC 8484 GET   /dns-query?dns=<base64url of a wire query, ID 0, RD, no padding>
#   doh-json JSON DoH       /resolve?name=NAME&type=A
#   dnspod   DNSPod         /d?dn=NAME
#   alibaba  Alibaba        /100000/d?host=NAME
#   pod-plain, pod-aes, v2  the mobile SDKs' requests (bench/httpdns_sdk.sh): DNSPod plain (HTTPS
#            token), DNSPod AES (the answer encrypted too), Alibaba v2 signed (HMAC-SHA256)
#   udp      UDP DNS        dnsperf, a query file of "NAME A"
# Before measuring, every endpoint must answer 200 over h2 (curl, checking the node's certificate)
# with the address that `dig` gets over UDP. The runs then alternate the workloads in the order
# above (3 rounds of 10 s each by default; --quick: 1 round of 5 s):
#   h2load -D S --warm-up-time=1 -c 50 -m 10 -t 1 --log-file=... https://127.0.0.1:PORT/PATH
#   dnsperf -c 10 -q 100 -l S -v
# Every h2load run must report TLSv1.3, h2, no failed, errored or timed-out request and only 2xx
# status codes, or the script stops. Per workload it prints the median requests (answers) per
# second, the median p99 latency (from the per-request logs: h2load --log-file's third column,
# dnsperf -v's latency column), the median server CPU seconds per 100k requests (utime+stime of
# the edgenode process, all threads, from /proc/PID/stat, over h2load's measured phase only:
# sampled when the 1 s warm-up ends and after h2load exits; the TLS handshakes happen during the
# warm-up), and its requests per second as a fraction of the UDP QPS.
#
# Reading the figures: the load generator and the server share the machine's 2 cores. dnsperf
# takes a core by itself and tops out near 130k QPS here whatever the server
# (REFERENCE-SERVERS.md); h2load (one thread) takes about half a core and the server most of the
# rest: every row's rate is the machine's, not the server's alone (the "cores used" line under the
# table shows the split). CPU seconds per 100k requests is the sharper figure to compare (lower is
# better; the "relative to UDP DNS" line reads "how many times the cost of a UDP answer"). The 50
# connections live through the run, so these are requests on warm TLS connections: no handshake
# is counted. p99 is mostly queueing: h2load keeps connections x streams (500) requests in flight
# and dnsperf 100 queries, so the mean latency is near in-flight / throughput; compare p99 between
# the HTTP rows, and take the UDP row's as a reference point only. The per-request logs cost the
# load generators a little throughput (every row alike).
#
# Measured here (3 x 10 s, Nov 2026, other work on the machine): UDP 125-130k QPS, 0.75 CPU s per
# 100k answers; HTTPDNS 61-75k req/s (0.48-0.56 of the UDP QPS) at 1.68 (RFC 8484 GET) to 2.28
# (JSON DoH) CPU s per 100k, 2.2-3.0 times the UDP cost per answer; p99 12-18 ms with 500
# requests in flight, against 1.4-2.0 ms for UDP with 100.
#
# Every server started here is stopped by its PID on exit. All traffic stays on 127.0.0.1.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=httpdns_sdk.sh
source "$(dirname "${BASH_SOURCE[0]}")/httpdns_sdk.sh"

connections=50
streams=10
name=www.example.test
parse_options connections streams name -- "$@"
require_positive_integers "$rounds" "$seconds" "$connections" "$streams"
name=${name%.}
[[ $name =~ ^[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$ ]] ||
    { echo "error: --name wants a host name like www.example.test, got '$name'" >&2; exit 2; }
name=${name,,}
warm_up=1

bench_setup httpdns cargo base64 od openssl=openssl dig=bind9-dnsutils dnsperf=dnsperf h2load=nghttp2-client curl=curl
# Up to 10 s for edgenode to stop after SIGTERM (lib.sh's default: 5).
stop_seconds=10

# --- the server ---------------------------------------------------------------------------------

build_edgenode

cat >"$D/edgenode.toml" <<EOF
# bench/httpdns.sh: the listeners come from the command line; no HTTPDNS client rate limit.
[dns]
zones = "$PWD/zones"

[httpdns]
client_rate = 0

[[httpdns.accounts]]
id = "100000"
secret = "bench"
$(sdk_config)
EOF

say "starting edgenode (DNS over UDP and HTTPS, no HTTPDNS client rate limit)"
# TMPDIR: the self-signed certificate goes to $D/edgenode-PID/, removed with $D.
TMPDIR=$D start_edgenode --config "$D/edgenode.toml" --dns-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --httpdns-listen 127.0.0.1:0 --httpdns-tls-listen 127.0.0.1:0
dns_port=$(listening_port dns-udp)
https_port=$(listening_port httpdns-tls)
certificate=$(edgenode_says tls-certificate)

# --- the workloads ------------------------------------------------------------------------------

doh_query=$(doh_query "$name")

workloads=(doh-get doh-json dnspod alibaba pod-plain pod-aes v2)
declare -A path_of=(
    [doh-get]="/dns-query?dns=$doh_query"
    [doh-json]="/resolve?name=$name&type=A"
    [dnspod]="/d?dn=$name"
    [alibaba]="/100000/d?host=$name"
)
sdk_paths "$name"
declare -A label_of=(
    [doh-get]="RFC 8484 DoH GET \`/dns-query?dns=...\`"
    [doh-json]="JSON DoH \`/resolve?name=...&type=A\`"
    [dnspod]="DNSPod \`/d?dn=...\`"
    [alibaba]="Alibaba \`/100000/d?host=...\`"
    [pod-plain]="DNSPod SDK plain \`/d?dn=...&clientip=1&ttl=1&id=&token=\`"
    [pod-aes]="DNSPod SDK AES \`/d?dn=HEX&...&alg=aes\`"
    [v2]="Alibaba SDK v2 \`/v2/d?id=&dn=&q=4&m=0&exp=&s=\`"
    [udp]="UDP DNS (dnsperf)"
)

printf '%s A\n' "$name" >"$D/queries"

# Warm answers: the address UDP DNS gives 127.0.0.1, which every endpoint must give as well.
answer=$(dig @127.0.0.1 -p "$dns_port" +time=1 +tries=3 +short "$name" A 2>/dev/null | head -n 1 || true)
[[ $answer =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    { echo "error: edgenode answers $name A over UDP with '$answer', not an address" >&2; exit 1; }
answer_hex=$(IFS=.; read -ra o <<<"$answer"; printf '%02x' "${o[@]}")

declare -A bytes_of=()
say "checking every endpoint (curl --http2 over TLS 1.3, the node's certificate): $name A = $answer"
for w in "${workloads[@]}"; do
    url="https://127.0.0.1:$https_port${path_of[$w]}"
    meta=$(curl -sS --http2 --tlsv1.3 --cacert "$certificate" --max-time 5 -o "$D/check.$w" \
        -w '%{http_code} %{http_version}' "$url" 2>&1) || meta="curl failed: $meta"
    if [[ $w == doh-get ]]; then
        found=$(od -An -v -tx1 "$D/check.$w" | tr -d ' \n' | grep -c "$answer_hex" || true)
    else
        found=$(sdk_body_has "$w" "$D/check.$w" "$answer" && echo 1 || echo 0)
    fi
    bytes_of[$w]=$(wc -c <"$D/check.$w")
    printf '    %-9s %s, %d bytes\n' "$w" "$meta" "${bytes_of[$w]}" >&2
    if [[ $meta != "200 2" ]] || ((found == 0)); then
        echo "error: $w ($url) did not answer 200 over HTTP/2 with $answer; the body:" >&2
        head -c 600 "$D/check.$w" | od -c | head -n 20 >&2
        exit 1
    fi
done

# --- the runs -----------------------------------------------------------------------------------

: >"$D/results"

# run_h2 WORKLOAD: one h2load run (loads.sh), appends
# "WORKLOAD req/s requests p99_ms server_ticks client_cpu_s wall_s body_bytes codes"
# to $D/results (codes: h2load's status code counts, with _ for spaces).
run_h2() {
    local w=$1
    h2load_measure "$w" "$edgenode_pid" "https://127.0.0.1:$https_port${path_of[$w]}"
    printf '%s %.0f %d %.2f %d %.2f %.2f %d %s\n' "$w" "$m_rps" "$m_total" "$m_p99" "$m_ticks" \
        "$m_client_cpu" "$m_wall" "${bytes_of[$w]}" "$m_codes" >>"$D/results"
    tail -n 1 "$D/results" | awk -v tck="$clk_tck" -v s="$seconds" '{
        printf "    %-9s %8s req/s  p99 %6.2f ms  %5.2f s server CPU (%.2f cores)  %s\n",
            $1, $2, $4, $5 / tck, $5 / tck / s, $9}' | tr _ ' ' >&2
}

# run_udp: one dnsperf run (loads.sh), appends the same fields as run_h2 ("udp QPS answers
# p99_ms server_ticks client_cpu_s wall_s response_bytes codes", plus the queries lost).
run_udp() {
    dnsperf_measure udp "$edgenode_pid" "$dns_port" "$D/queries" -c 10 -q 100
    printf 'udp %s %d %.2f %d %.2f %.2f %d %s %d\n' "$m_rps" "$m_total" "$m_p99" "$m_ticks" \
        "$m_client_cpu" "$m_wall" "$m_bytes" "$m_codes" "$m_lost" >>"$D/results"
    tail -n 1 "$D/results" | awk -v tck="$clk_tck" -v s="$seconds" '{
        printf "    %-9s %8s QPS    p99 %6.2f ms  %5.2f s server CPU (%.2f cores)  lost %s, %s\n",
            $1, $2, $4, $5 / tck, $5 / tck / s, $10, $9}' | tr _ ' ' >&2
}

for ((round = 1; round <= rounds; round++)); do
    say "round $round/$rounds: ${seconds} s each; h2load -c $connections -m $streams -t 1 (warm-up ${warm_up} s), dnsperf -c 10 -q 100"
    for w in "${workloads[@]}"; do
        run_h2 "$w"
    done
    run_udp
done

# --- the report ---------------------------------------------------------------------------------

# The median over a workload's runs of: rps, p99 (ms), cpu (server CPU s per 100k requests),
# server (server cores used), client (load generator cores used).
workload_median() {
    awk -v w="$1" -v what="$2" -v tck="$clk_tck" -v s="$seconds" '$1 == w {
        if (what == "rps") print $2
        else if (what == "p99") print $4
        else if (what == "cpu") print $5 / tck / $3 * 100000
        else if (what == "server") print $5 / tck / s
        else if (what == "client") print $6 / $7 }' "$D/results" | median
}

workloads+=(udp)
declare -A rps_of cpu_of
for w in "${workloads[@]}"; do
    rps_of[$w]=$(workload_median "$w" rps)
    cpu_of[$w]=$(workload_median "$w" cpu)
done

rows=
cores=
costs=
for w in "${workloads[@]}"; do
    rows+=$(table_row "${label_of[$w]}" "${rps_of[$w]}" "$(fixed "$(workload_median "$w" p99)" 2)" \
        "$(fixed "${cpu_of[$w]}" 3)" "$(ratio "${rps_of[$w]}" "${rps_of[udp]}")")$'\n'
    cores+="${cores:+; }$w $(fixed "$(workload_median "$w" server)" 2) / $(fixed "$(workload_median "$w" client)" 2)"
    [[ $w == udp ]] || costs+="${costs:+, }$w $(ratio "${cpu_of[$w]}" "${cpu_of[udp]}")"
done
# Status codes summed over each workload's runs, and the mean response size (last run).
codes=$(awk '$1 != "udp" {
        n = split($9, f, "_"); for (i = 1; i < n; i += 2) sum[$1 " " f[i + 1]] += f[i]
        if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
    END { for (j = 1; j <= k; j++) {
        w = order[j]; printf "%s%s:", (j > 1 ? "; " : ""), w
        split("2xx 3xx 4xx 5xx", c, " "); for (i = 1; i <= 4; i++) printf " %d %s", sum[w " " c[i]], c[i] } }' "$D/results")
bytes=$(awk '{b[$1] = $8; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
    END { for (j = 1; j <= k; j++) printf "%s%s %d", (j > 1 ? ", " : ""), order[j], b[order[j]] }' "$D/results")
udp_codes=$(last_field udp 9)
udp_lost=$(awk '$1 == "udp" {t += $10} END {print t + 0}' "$D/results")

cat <<EOF

### HTTPDNS over HTTP/2 + TLS 1.3 beside UDP DNS: edgenode, warm answers for $name A

One edgenode, $rounds round(s) of $seconds s per workload, alternating; h2load $(h2load --version | awk '{print $2}') -c $connections -m $streams -t 1
(warm-up $warm_up s, TLS 1.3, h2, 127.0.0.1); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2; exit}') -c 10 -q 100; $(nproc) cores shared by the
server and the load generator. Every answer: $answer. Medians over the runs.

$(table_header workload "median req/s" "p99 ms" "CPU s per 100k" "req/s / UDP QPS")
${rows%$'\n'}

Server CPU per request relative to UDP DNS: $costs.
Cores used (server / load generator): $cores.
h2load status codes (all runs): $codes; no failed, errored or timed-out request.
UDP response codes (last run): $udp_codes; queries lost (all runs): $udp_lost.
Response bytes (HTTP body as curl got it, DNS message for UDP): $bytes.
EOF
