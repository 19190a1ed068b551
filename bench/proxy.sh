#!/usr/bin/env bash
# bench/proxy.sh: cache hits of the caching reverse proxy, edgenode against nginx proxy_cache,
# both in front of the same origin, on this machine, in one run.
#
#   bench/proxy.sh [--quick] [--rounds N] [--seconds S] [--keep]
#
# --keep leaves the work directory (configs, certificate, objects, logs, h2load and wrk outputs
# and h2load's per-request logs, which are large) in place.
#
# The origin is a second nginx, a plain static server on 127.0.0.1 (one worker, its CPU counted
# for neither side) serving two random objects, /1k (1024 bytes) and /100k (102400 bytes), with
# `Cache-Control: max-age=3600`. In front of it:
#   edgenode  `serve --http-listen --https-listen --origin http://127.0.0.1:ORIGIN` (the HTTPS
#             listener: TLS 1.3, its self-signed ECDSA P-256 certificate, ALPN h2 and http/1.1)
#   nginx     proxy_cache as in REFERENCE-SERVERS.md: worker_processes 2, `listen ... ssl http2`
#             with ssl_protocols TLSv1.3 and a self-signed ECDSA P-256 certificate made here, a
#             second plain `listen` for HTTP/1.1, an upstream with keepalive 32, proxy_cache
#             edge (keys_zone 10m, on disk under the work directory), proxy_cache_revalidate,
#             proxy_cache_valid 200 1h, `add_header X-Cache $upstream_cache_status`
# Both caches are warmed first (each object through each listener, twice); the second responses
# must be 200 with the origin's bytes, edgenode's with `cache-status: edgenode; hit` and nginx's
# with `X-Cache: HIT`. Three workloads, each against edgenode and nginx in turn, A B A B ...
# (3 rounds of 10 s each by default; --quick: 1 round of 5 s):
#   h2-1k     h2load -D S --warm-up-time=1 -c 50 -m 10 -t 1 https://127.0.0.1:PORT/1k
#   h2-100k   the same, /100k
#   h1-1k     wrk -t1 -c50 -dSs --latency http://127.0.0.1:PORT/1k (HTTP/1.1 keep-alive)
# Every h2load run must report TLSv1.3, h2, no failed, errored or timed-out request and only 2xx
# status codes, and every wrk run no socket error and no non-2xx/3xx response, or the script
# stops. Per server and workload it prints the median requests per second, the median p99
# latency (h2load: from the per-request log, --log-file's third column; wrk: its --latency
# distribution), and the median server CPU seconds per 100k requests (utime+stime from
# /proc/PID/stat of all the server's processes, i.e. edgenode's threads, nginx's master, workers
# and cache manager; over h2load's measured phase only, sampled when its 1 s warm-up, during
# which the TLS handshakes happen, ends and after it exits; over the whole wrk run); then each
# server's memory (RSS and PSS of all its processes) after the warm-up and after the runs, and
# the ratios edgenode / nginx. The origin's access log must not grow during the measured runs
# (every request a cache hit); the script prints how many requests it saw.
#
# Fairness: edgenode is one process whose multi-threaded tokio runtime may use both cores; nginx
# runs 2 workers (both listens with `reuseport`, so that connections are spread over the two
# workers instead of piling up on whichever wakes first), `access_log off` (edgenode writes no
# per-request log either), and `keepalive_requests` raised from 1000 (nginx would otherwise close
# every connection, HTTP/1.1 and h2 alike, after 1000 requests, and h2load does not reconnect).
# Both certificates are ECDSA P-256; the report shows the TLS 1.3 cipher and key exchange h2load
# got from each. nginx keeps cached bodies in files (here in the page cache: they do not show in
# its RSS), edgenode in memory. Response headers differ (edgenode adds Age, Via and
# Cache-Status, nginx X-Cache): the report lists them and their size.
#
# Reading the figures: the load generator and the server share the machine's 2 cores; h2load and
# wrk (one thread each) take up to a core, so req/s is the machine's, not the server's alone (the
# "cores used" column shows the split). CPU seconds per 100k requests is the sharper figure to
# compare (lower is better; the edgenode / nginx row reads "how many times nginx's cost"). p99 is
# mostly queueing: h2load keeps 500 requests in flight (50 connections x 10 streams), wrk 50.
#
# Measured here (26 Nov 2026, 2 cores, with bench/lib.sh's copy setting; the same workloads in
# bench/run.sh, 3 x 10 s), median server CPU seconds per 100k requests, edgenode against nginx:
# h2 1 KiB 0.70 against 1.64, h2 100 KiB 6.41 against 10.97, HTTP/1.1 1 KiB 1.04 against 1.82;
# HTTP/1.1 p99 1.0 ms against 4.5 ms. A run of this script (3 x 8 s) the same day: after the
# runs edgenode 15.8 MiB RSS / 14.2 MiB PSS (13.9 / 12.2 warm), nginx 30.4 MiB RSS / 10.8 MiB
# PSS over its 4 processes.
#
# Every server started here is stopped by its PID on exit. All traffic stays on 127.0.0.1.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_options -- "$@"
require_positive_integers "$rounds" "$seconds"
connections=50
streams=10
warm_up=1

bench_setup proxy cargo sha256sum curl=curl openssl=openssl nginx=nginx h2load=nghttp2-client wrk=wrk \
    varnishd=varnish
# Up to 10 s for each server to stop after SIGTERM (lib.sh's default: 5).
stop_seconds=10

# --- the objects and the origin ----------------------------------------------------------------

build_edgenode

start_origin

# --- the caches ---------------------------------------------------------------------------------

servers=(edgenode nginx varnish)

say "starting edgenode (proxy to the origin)"
# TMPDIR: the self-signed certificate goes to $D/edgenode-PID/, removed with $D.
TMPDIR=$D start_edgenode --zones zones --dns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --httpdns-listen 127.0.0.1:0 --httpdns-tls-listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --origin "http://127.0.0.1:$origin_port"
pid_of[edgenode]=$edgenode_pid
http_port_of[edgenode]=$(listening_port http)
https_port_of[edgenode]=$(listening_port https)
cacert_of[edgenode]=$(edgenode_says tls-certificate)

start_nginx_proxy "$origin_port"
pid_of[nginx]=$nginx_proxy_pid
http_port_of[nginx]=$nginx_http_port
https_port_of[nginx]=$nginx_https_port
cacert_of[nginx]=$D/nginx.crt

start_varnish "$origin_port"
pid_of[varnish]=$varnish_pid
http_port_of[varnish]=$varnish_port

# --- warm-up and checks -------------------------------------------------------------------------

warm_proxy edgenode nginx
warm_varnish

declare -A rss_warm pss_warm
for server in "${servers[@]}"; do
    read -r "rss_warm[$server]" "pss_warm[$server]" < <(memory_kib "${pid_of[$server]}")
done
origin_before=$(wc -l <"$D/origin.access.log")
origin_ticks=$(cpu_ticks "$origin_pid")

# --- the runs -----------------------------------------------------------------------------------

workloads=(h2-1k h2-100k h1-1k h1-100k)
declare -A object_of=([h2-1k]=1k [h2-100k]=100k [h1-1k]=1k [h1-100k]=100k)
declare -A label_of=(
    [h2-1k]="h2 + TLS 1.3, 1 KiB"
    [h2-100k]="h2 + TLS 1.3, 100 KiB"
    [h1-1k]="HTTP/1.1 keep-alive, 1 KiB"
    [h1-100k]="HTTP/1.1 keep-alive, 100 KiB"
)
# The servers of a workload: Varnish speaks no TLS, so it runs the HTTP/1.1 ones only.
servers_of() { # workload
    if [[ $1 == h1-* ]]; then echo edgenode nginx varnish; else echo edgenode nginx; fi
}
declare -A tls_of=()
: >"$D/results"

# run_load SERVER WORKLOAD: one measured run (loads.sh); appends
# "SERVER WORKLOAD req/s requests p99_ms server_ticks client_cpu_s wall_s bytes_per_response
# status_0_rows" to $D/results (bytes per response: h2load's traffic or wrk's bytes read over the
# requests, rough: responses cut by the start and end of the measured phase make it +-3%).
run_load() { # server workload
    local server=$1 w=$2 object=${object_of[$2]}
    if [[ $w == h2-* ]]; then
        h2load_measure "$w against $server" "${pid_of[$server]}" \
            "https://127.0.0.1:${https_port_of[$server]}/$object"
        tls_of[$server]=$m_tls
    else
        wrk_measure "$w against $server" "${pid_of[$server]}" \
            "http://127.0.0.1:${http_port_of[$server]}/$object"
    fi
    printf '%s %s %.0f %d %.2f %d %.2f %.2f %d %d\n' "$server" "$w" "$m_rps" "$m_total" "$m_p99" \
        "$m_ticks" "$m_client_cpu" "$m_wall" "$m_bytes" "$m_straddling" >>"$D/results"
    tail -n 1 "$D/results" | awk -v tck="$clk_tck" -v s="$seconds" '{
        printf "    %-8s %-8s %8s req/s  p99 %7.2f ms  %5.2f s server CPU (%.2f cores), %.3f s per 100k\n",
            $1, $2, $3, $5, $6 / tck, $6 / tck / s, $6 / tck / $4 * 100000}' >&2
}

for ((round = 1; round <= rounds; round++)); do
    say "round $round/$rounds: ${seconds} s each; h2load -c $connections -m $streams -t 1 (warm-up ${warm_up} s), wrk -t1 -c$connections"
    for w in "${workloads[@]}"; do
        for server in $(servers_of "$w"); do
            run_load "$server" "$w"
        done
    done
done

origin_after=$(wc -l <"$D/origin.access.log")
origin_ticks=$(($(cpu_ticks "$origin_pid") - origin_ticks))
check_alive "$origin_pid" "the origin exited during the runs"
declare -A rss_after pss_after
for server in "${servers[@]}"; do
    read -r "rss_after[$server]" "pss_after[$server]" < <(memory_kib "${pid_of[$server]}")
done

# --- the report ---------------------------------------------------------------------------------

# The median over SERVER's WORKLOAD runs of: rps, p99 (ms), cpu (server CPU s per 100k
# requests), server (server cores used), client (load generator cores used).
run_median() { # server workload what
    awk -v s="$1" -v w="$2" -v what="$3" -v tck="$clk_tck" -v secs="$seconds" '$1 == s && $2 == w {
        if (what == "rps") print $3
        else if (what == "p99") print $5
        else if (what == "cpu") print $6 / tck / $4 * 100000
        else if (what == "server") print $6 / tck / secs
        else if (what == "client") print $7 / $8 }' "$D/results" | median
}

rows=
for w in "${workloads[@]}"; do
    declare -A m_rps=() m_p99=() m_cpu=()
    for server in $(servers_of "$w"); do
        m_rps[$server]=$(run_median "$server" "$w" rps)
        m_p99[$server]=$(run_median "$server" "$w" p99)
        m_cpu[$server]=$(run_median "$server" "$w" cpu)
        rows+=$(table_row "${label_of[$w]}: $server" "${m_rps[$server]}" "$(fixed "${m_p99[$server]}" 2)" \
            "$(fixed "${m_cpu[$server]}" 3)" \
            "$(fixed "$(run_median "$server" "$w" server)" 2) / $(fixed "$(run_median "$server" "$w" client)" 2)")$'\n'
    done
    rows+=$(table_row "${label_of[$w]}: **edgenode / nginx**" "**$(ratio "${m_rps[edgenode]}" "${m_rps[nginx]}")**" \
        "**$(ratio "${m_p99[edgenode]}" "${m_p99[nginx]}")**" "**$(ratio "${m_cpu[edgenode]}" "${m_cpu[nginx]}")**" \
        "")$'\n'
    if [[ -n ${m_rps[varnish]:-} ]]; then
        rows+=$(table_row "${label_of[$w]}: **edgenode / varnish**" \
            "**$(ratio "${m_rps[edgenode]}" "${m_rps[varnish]}")**" \
            "**$(ratio "${m_p99[edgenode]}" "${m_p99[varnish]}")**" \
            "**$(ratio "${m_cpu[edgenode]}" "${m_cpu[varnish]}")**" "")$'\n'
    fi
done

memory_rows=
for server in "${servers[@]}"; do
    memory_rows+=$(table_row "$server" "$(mib "${rss_warm[$server]}")" "$(mib "${pss_warm[$server]}")" \
        "$(mib "${rss_after[$server]}")" "$(mib "${pss_after[$server]}")")$'\n'
done
memory_rows+=$(table_row "edgenode / nginx" "$(ratio "${rss_warm[edgenode]}" "${rss_warm[nginx]}")" \
    "$(ratio "${pss_warm[edgenode]}" "${pss_warm[nginx]}")" \
    "$(ratio "${rss_after[edgenode]}" "${rss_after[nginx]}")" \
    "$(ratio "${pss_after[edgenode]}" "${pss_after[nginx]}")")
straddling_text=$(awk '$10 > 0 {z[$1 " " $2] += $10; n++}
    END { if (n == 0) { printf "none"; exit }
          for (k in z) printf "%s%s %d", (m++ ? ", " : ""), k, z[k] }' "$D/results")
headers_text=$(for server in "${servers[@]}"; do
    printf '%s %d bytes (%s); ' "$server" "$(wc -c <"$D/check.$server.http.1k.headers")" \
        "$(awk -F: 'NR > 1 && NF > 1 {printf "%s%s", (n++ ? ", " : ""), $1}' "$D/check.$server.http.1k.headers")"
done)
headers_text=${headers_text%; }
nginx_processes=$(process_tree "${pid_of[nginx]}" | wc -l)

cat <<EOF

### Caching reverse proxy, cache hits: edgenode vs nginx $(nginx -v 2>&1 | sed 's|.*nginx/||') proxy_cache and Varnish $(varnishd -V 2>&1 | sed -n 's/.*(varnish-\([0-9.]*\).*/\1/p;q') (malloc)

Both in front of the same origin (nginx, static, Cache-Control max-age=3600), caches warm. $rounds round(s)
of $seconds s per server and workload, alternating; h2load $(h2load --version | awk '{print $2}') -c $connections -m $streams -t 1 (warm-up
$warm_up s, https://127.0.0.1) and wrk $(wrk -v 2>&1 | awk 'NR == 1 {print $2}') -t1 -c$connections (http://127.0.0.1, keep-alive); $(nproc) cores shared by the server and the
load generator; edgenode one process (tokio), nginx worker_processes 2 (reuseport). Medians over the runs.
Memory copies: $glibc_copy_note.

$(table_header "workload: server" "req/s" "p99 ms" "CPU s per 100k" "cores used (server / client)")
${rows%$'\n'}

$(table_header "memory (all processes)" "RSS MiB, warm" "PSS MiB, warm" "RSS MiB, after the runs" "PSS MiB, after the runs")
${memory_rows%$'\n'}

TLS (h2load): edgenode: ${tls_of[edgenode]}; nginx: ${tls_of[nginx]}.
Every h2load run: no failed, errored or timed-out request, every response 200 (requests whose headers
came during h2load's warm-up are logged with status 0: $straddling_text); every wrk run: no socket
error, no non-2xx/3xx response. Requests that reached the origin during the measured runs: $((origin_after - origin_before))
(0: every request was a cache hit); the origin's CPU over them: $(awk -v t="$origin_ticks" -v tck="$clk_tck" 'BEGIN {printf "%.2f", t / tck}') s. nginx's memory is that of its $nginx_processes processes (master, 2 workers, cache
manager and loader if still running); its cached bodies are files (page cache, not in RSS), edgenode's are in
its heap. Response headers of a hit over HTTP/1.1 (as curl got them, status line included): $headers_text.
EOF
