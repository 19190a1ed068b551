#!/usr/bin/env bash
# bench/soak.sh: a bounded soak of one node under mixed load with cache churn far beyond its
# memory budget, checking that it keeps serving and that its memory, file descriptors and
# threads stay flat.
#
#   bench/soak.sh [--minutes M] [--budget SIZE] [--objects N] [--keep]
#
# Defaults: 10 minutes, a 64MiB cache budget, 20000 distinct 32 KiB objects (625 MiB, ten
# times the budget). One edgenode runs in front of a small Python origin; for the whole time:
# - DNS: dnsperf at 3000 queries/s over UDP (positive, NXDOMAIN, NODATA, the geo name);
# - HTTPDNS: h2load over h2c, 2 connections at 1000 requests/s each, /d and /resolve in turn;
# - proxy: wrk over HTTP/1.1 keep-alive, 8 connections, each request for a random object, so the
#   cache evicts all the time.
# Every 5 s the node's resident memory (RSS), open file descriptors and threads are sampled from
# /proc. At the end the script prints per load the requests and the errors, and the samples'
# summary, and exits non-zero when:
# - any load saw errors (dnsperf lost queries above 0.1%, h2load or wrk non-2xx or socket
#   errors);
# - RSS after the first fifth of the run ever exceeded the budget plus 96 MiB (the node's own
#   structures, the TLS and HTTP/2 buffers, fills in progress, allocator slack: docs/reliability.md,
#   Reliability);
# - RSS, file descriptors or threads grew from the second fifth to the end by more than 10%
#   (+8 MiB) / 16 / 4.
#
# Everything runs on 127.0.0.1, and every process started here is stopped by its PID on exit.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

minutes=10
budget=64MiB
objects=20000
parse_options minutes budget objects -- "$@"
require_positive_integers "$minutes" "$objects"
[[ $budget =~ ^[1-9][0-9]*MiB$ ]] || { echo "error: --budget takes NMiB" >&2; exit 2; }
budget_mib=${budget%MiB}

bench_setup soak cargo python3 dnsperf=dnsperf wrk=wrk h2load=nghttp2-client
build_edgenode
duration=$((minutes * 60))

# --- the origin: /obj/N is 32 KiB, cacheable for 5 minutes ---
origin_port=$(free_port)
cat >"$D/origin.py" <<'EOF'
import http.server, sys

BODY = bytes(range(256)) * 128  # 32 KiB

class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Cache-Control", "max-age=300")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Origin).serve_forever()
EOF
python3 "$D/origin.py" "$origin_port" 2>"$D/origin.log" &
server_pids+=("$!")
origin_pid=$!
for ((i = 0; i < 50; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$origin_port") 2>/dev/null && break
    sleep 0.1
done
check_alive "$origin_pid" "the origin did not start"

# --- the node ---
cat >"$D/soak.toml" <<EOF
[dns]
listen = ["127.0.0.1:0"]
zones = "$PWD/zones"

[httpdns]
listen = ["127.0.0.1:0"]
tls_listen = []
client_rate = 0

[proxy]
listen = ["127.0.0.1:0"]
tls_listen = []
origin = "http://127.0.0.1:$origin_port"

[cache]
memory = "$budget"

[admin]
listen = "127.0.0.1:0"
EOF
start_edgenode --config "$D/soak.toml"
dns_port=$(listening_port dns-udp)
httpdns_port=$(listening_port httpdns)
proxy_port=$(listening_port http)
admin=$(edgenode_says listening admin)
say "edgenode $edgenode_pid: dns $dns_port, httpdns $httpdns_port, proxy $proxy_port, admin $admin"

printf '%s\n' 'www.example.test A' 'www.example.test AAAA' 'nothing.example.test A' \
    'example.test SOA' 'example.test NS' 'mail.example.test MX' >"$D/queries"
cat >"$D/churn.lua" <<EOF
math.randomseed(os.time())
request = function()
    return wrk.format("GET", "/obj/" .. math.random(1, $objects), {Host = "soak.example.test"})
end
EOF

# --- the loads, side by side ---
say "soaking for $minutes min: dnsperf 3000 q/s, h2load HTTPDNS 2000 req/s, wrk over $objects objects (budget $budget)"
dnsperf -s 127.0.0.1 -p "$dns_port" -d "$D/queries" -c 4 -Q 3000 -l "$duration" \
    >"$D/dnsperf.out" 2>&1 &
dnsperf_pid=$!
h2load -c 2 -m 4 --rps 1000 -D "$duration" \
    "http://127.0.0.1:$httpdns_port/d?dn=www.example.test" \
    "http://127.0.0.1:$httpdns_port/resolve?name=www.example.test&type=A" \
    >"$D/h2load.out" 2>&1 &
h2load_pid=$!
wrk -t 1 -c 8 -d "${duration}s" -s "$D/churn.lua" --latency "http://127.0.0.1:$proxy_port/" \
    >"$D/wrk.out" 2>&1 &
wrk_pid=$!

sample() {
    local rss fds threads
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$edgenode_pid/status")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$edgenode_pid/status")
    fds=$(find "/proc/$edgenode_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$SECONDS $rss $fds $threads" >>"$D/samples"
}
start=$SECONDS
while ((SECONDS - start < duration)); do
    check_alive "$edgenode_pid" "edgenode exited during the soak"
    sample
    sleep 5
done
wait "$dnsperf_pid" "$h2load_pid" "$wrk_pid" || true
check_alive "$edgenode_pid" "edgenode exited during the soak"
sample

# --- the verdict ---
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

read -r qps completed lost _ codes < <(dnsperf_summary "$D/dnsperf.out")
echo "dns      $completed answered ($qps/s), $lost lost, codes ${codes//_/ }"
awk -v c="$completed" -v l="$lost" 'BEGIN {exit !(l <= (c + l) * 0.001)}' ||
    fail "dnsperf lost $lost of $((completed + lost))"

h2_line=$(grep -m1 '^requests:' "$D/h2load.out" || echo "requests: 0 total")
h2_status=$(grep -m1 '^status codes:' "$D/h2load.out" || echo "status codes: none")
echo "httpdns  $h2_line; $h2_status"
h2_total=$(awk '/^requests:/ {print $2}' "$D/h2load.out")
h2_ok=$(awk '/^requests:/ {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^succeeded/) print $i}' "$D/h2load.out")
h2_2xx=$(awk '/^status codes:/ {print $3}' "$D/h2load.out")
[[ -n $h2_total && $h2_total -gt 0 && $h2_ok == "$h2_total" && $h2_2xx == "$h2_total" ]] ||
    fail "h2load: $h2_line; $h2_status"

wrk_requests=$(awk '/requests in/ {print $1}' "$D/wrk.out")
wrk_non2xx=$(awk '/Non-2xx/ {print $NF}' "$D/wrk.out")
wrk_errors=$(grep -m1 'Socket errors' "$D/wrk.out" || true)
wrk_p99=$(awk '$1 == "99%" {print $2}' "$D/wrk.out")
echo "proxy    ${wrk_requests:-0} requests, p99 ${wrk_p99:-?}, non-2xx ${wrk_non2xx:-0}${wrk_errors:+, $wrk_errors}"
[[ -n $wrk_requests && -z $wrk_non2xx && -z $wrk_errors ]] || fail "wrk: $(tail -n 5 "$D/wrk.out")"

fetch_metrics() {
    exec 3<>"/dev/tcp/${admin%:*}/${admin#*:}"
    printf 'GET /metrics HTTP/1.0\r\nHost: soak\r\n\r\n' >&3
    cat <&3
    exec 3<&-
}
fetch_metrics >"$D/metrics" || true
cache_bytes=$(awk '/^edgenode_cache_bytes\{namespace="http"\}/ {print $2}' "$D/metrics")
evictions=$(awk '/^edgenode_cache_evictions_total\{namespace="http",cause="size"\}/ {print $2}' "$D/metrics")
echo "cache    http bytes ${cache_bytes:-?} of $budget; size evictions ${evictions:-?}"

n=$(wc -l <"$D/samples")
awk -v n="$n" -v budget="$budget_mib" '
    { t[NR] = $1; rss[NR] = $2; fds[NR] = $3; thr[NR] = $4 }
    END {
        warm = int(n / 5) + 1; second = int(2 * n / 5) + 1
        max = 0; min = 1e18
        for (i = warm; i <= n; i++) { if (rss[i] > max) max = rss[i]; if (rss[i] < min) min = rss[i] }
        printf "memory   RSS after warm-up %.1f-%.1f MiB (budget %d MiB); at 2/5 %.1f MiB, at the end %.1f MiB\n",
            min / 1024, max / 1024, budget, rss[second] / 1024, rss[n] / 1024
        printf "fds      %d at 2/5, %d at the end; threads %d at 2/5, %d at the end\n",
            fds[second], fds[n], thr[second], thr[n]
        bad = 0
        if (max / 1024 > budget + 96) { print "FAIL: RSS above the budget + 96 MiB" > "/dev/stderr"; bad = 1 }
        if (rss[n] > rss[second] * 1.10 + 8192) { print "FAIL: RSS grew by more than 10% + 8 MiB" > "/dev/stderr"; bad = 1 }
        if (fds[n] > fds[second] + 16) { print "FAIL: file descriptors grew" > "/dev/stderr"; bad = 1 }
        if (thr[n] > thr[second] + 4) { print "FAIL: threads grew" > "/dev/stderr"; bad = 1 }
        exit bad
    }' "$D/samples" || failed=1

if ((failed)); then
    echo "soak FAILED (work directory: run with --keep to inspect)" >&2
    exit 1
fi
echo "soak passed: $minutes min, no errors, memory and descriptors flat"
