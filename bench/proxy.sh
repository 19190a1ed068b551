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
# Measured here (two runs of 3 x 10 s, Nov 2026, with cargo builds and tests of other work beside,
# so that req/s moved by 30-50% from run to run), median server CPU s per 100k requests, edgenode
# against nginx: h2 1 KiB 2.08-2.22 against 1.68-1.74 (1.19-1.32 times nginx's cost), h2 100 KiB
# 8.1-9.0 against 10.9-11.8 (0.75), HTTP/1.1 1 KiB 1.18-1.20 against 1.69-1.72 (0.70); HTTP/1.1
# p99 2-3 ms against 5-12 ms; after the runs edgenode 19.5 MiB RSS / 18 MiB PSS (12 / 10 warm),
# nginx 30-31 MiB RSS / 11 MiB PSS over its 4 processes.
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

bench_setup proxy cargo sha256sum curl=curl openssl=openssl nginx=nginx h2load=nghttp2-client wrk=wrk
# Up to 10 s for each server to stop after SIGTERM (lib.sh's default: 5).
stop_seconds=10

# --- the objects, the certificate, the origin ---------------------------------------------------

build_edgenode

objects=(1k 100k)
declare -A size_of=([1k]=1024 [100k]=102400) sum_of=()
mkdir -p "$D/origin" "$D/cache"
for object in "${objects[@]}"; do
    head -c "${size_of[$object]}" /dev/urandom >"$D/origin/$object"
    sum_of[$object]=$(sha256sum <"$D/origin/$object" | awk '{print $1}')
done

# nginx's certificate: ECDSA P-256 like edgenode's (rcgen's default), for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$D/nginx.key" -out "$D/nginx.crt" 2>"$D/openssl.log" ||
    { cat "$D/openssl.log" >&2; echo "error: openssl could not make a certificate" >&2; exit 1; }

# The directives every nginx here needs to run as root from $D: NAME is the instance.
nginx_common() { # name
    cat <<EOF
user root;
daemon off;
pid $D/$1.pid;
error_log $D/$1.error.log warn;
EOF
}

nginx_temp_paths() { # name
    local kind
    for kind in client_body proxy fastcgi uwsgi scgi; do
        mkdir -p "$D/$1-temp/$kind"
        printf '    %s_temp_path %s;\n' "$kind" "$D/$1-temp/$kind"
    done
}

# start_nginx NAME CONF CHECK_URL: nginx in the foreground (so that $! is its master); waits
# until CHECK_URL answers; sets nginx_started_pid.
nginx_started_pid=
start_nginx() { # name conf check_url
    local name=$1 conf=$2 url=$3 i
    nginx -t -q -c "$conf" -p "$D/" -e "$D/$name.error.log" 2>"$D/$name.test.log" ||
        { cat "$D/$name.test.log" >&2; echo "error: nginx ($name) rejects $conf" >&2; exit 1; }
    nginx -c "$conf" -p "$D/" -e "$D/$name.error.log" >"$D/$name.out" 2>&1 &
    nginx_started_pid=$!
    server_pids+=("$nginx_started_pid")
    for ((i = 0; i < 100; i++)); do
        curl -sk -o /dev/null --max-time 1 "$url" && return 0
        kill -0 "$nginx_started_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "error: nginx ($name) did not answer $url; its log:" >&2
    tail -n 30 "$D/$name.error.log" "$D/$name.out" >&2
    exit 1
}

origin_port=$(free_port)
cat >"$D/origin.conf" <<EOF
# bench/proxy.sh: the origin, a static server (its CPU is not counted).
$(nginx_common origin)
worker_processes 1;
events { worker_connections 1024; }
http {
$(nginx_temp_paths origin)
    access_log $D/origin.access.log;
    default_type application/octet-stream;
    keepalive_requests 10000000;
    server {
        listen 127.0.0.1:$origin_port;
        root $D/origin;
        add_header Cache-Control "max-age=3600" always;
    }
}
EOF
say "starting the origin (nginx, static, port $origin_port)"
start_nginx origin "$D/origin.conf" "http://127.0.0.1:$origin_port/1k"
origin_pid=$nginx_started_pid

# --- the caches ---------------------------------------------------------------------------------

declare -A pid_of https_port_of http_port_of cacert_of
servers=(edgenode nginx)

say "starting edgenode (proxy to the origin)"
# TMPDIR: the self-signed certificate goes to $D/edgenode-PID/, removed with $D.
TMPDIR=$D start_edgenode --zones zones --dns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --httpdns-listen 127.0.0.1:0 --httpdns-tls-listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --origin "http://127.0.0.1:$origin_port"
pid_of[edgenode]=$edgenode_pid
http_port_of[edgenode]=$(listening_port http)
https_port_of[edgenode]=$(listening_port https)
cacert_of[edgenode]=$(edgenode_says tls-certificate)

https_port=$(free_port)
http_port=$(free_port)
while ((http_port == https_port)); do http_port=$(free_port); done
cat >"$D/nginx.conf" <<EOF
# bench/proxy.sh: nginx as a TLS 1.3 + HTTP/2 (and plain HTTP/1.1) caching proxy.
$(nginx_common nginx)
worker_processes 2;
events { worker_connections 1024; }
http {
$(nginx_temp_paths nginx)
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    proxy_cache_path $D/cache keys_zone=edge:10m;
    upstream origin {
        server 127.0.0.1:$origin_port;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$https_port ssl http2 reuseport;
        listen 127.0.0.1:$http_port reuseport;
        ssl_certificate $D/nginx.crt;
        ssl_certificate_key $D/nginx.key;
        ssl_protocols TLSv1.3;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            proxy_cache_revalidate on;
            proxy_cache_valid 200 1h;
            add_header X-Cache \$upstream_cache_status;
        }
    }
}
EOF
say "starting nginx (proxy_cache, 2 workers, https $https_port, http $http_port)"
start_nginx nginx "$D/nginx.conf" "https://127.0.0.1:$https_port/1k"
pid_of[nginx]=$nginx_started_pid
http_port_of[nginx]=$http_port
https_port_of[nginx]=$https_port
cacert_of[nginx]=$D/nginx.crt

# --- warm-up and checks -------------------------------------------------------------------------

# fetch SERVER SCHEME OBJECT OUT: one GET with curl (h2 over TLS 1.3 checking the server's
# certificate, or plain HTTP/1.1); prints "STATUS HTTP_VERSION CACHE_HEADER".
fetch() { # server scheme object out
    local server=$1 scheme=$2 object=$3 out=$4 meta options=()
    if [[ $scheme == https ]]; then
        options=(--http2 --tlsv1.3 --cacert "${cacert_of[$server]}"
            "https://127.0.0.1:${https_port_of[$server]}/$object")
    else
        options=(--http1.1 "http://127.0.0.1:${http_port_of[$server]}/$object")
    fi
    meta=$(curl -sS --max-time 5 -D "$out.headers" -o "$out" -w '%{http_code} %{http_version}' \
        "${options[@]}" 2>&1) || meta="curl-failed"
    echo "$meta $(awk -v s="$server" 'tolower($1) == (s == "nginx" ? "x-cache:" : "cache-status:") {
            sub(/^[^:]*: */, ""); sub(/\r$/, ""); gsub(/ /, "_"); print; exit }' "$out.headers" 2>/dev/null)"
}

say "warming both caches (each object through each listener, twice) and checking the hits"
for server in "${servers[@]}"; do
    for scheme in https http; do
        for object in "${objects[@]}"; do
            out=$D/check.$server.$scheme.$object
            first=$(fetch "$server" "$scheme" "$object" "$out")
            second=$(fetch "$server" "$scheme" "$object" "$out")
            read -r code version cache <<<"$second"
            sum=$(sha256sum <"$out" | awk '{print $1}')
            printf '    %-8s %-5s /%-4s first: %s; second: %s\n' "$server" "$scheme" "$object" \
                "${first//_/ }" "${second//_/ }" >&2
            want_version=$([[ $scheme == https ]] && echo 2 || echo 1.1)
            if [[ $server == nginx ]]; then want_cache=HIT; else want_cache="edgenode;_hit"; fi
            if [[ $code != 200 || $version != "$want_version" || $cache != "$want_cache" ||
                $sum != "${sum_of[$object]}" ]]; then
                echo "error: $server's second $scheme response for /$object is not a 200 HTTP/$want_version" \
                    "cache hit ($want_cache) with the origin's ${size_of[$object]} bytes; its headers:" >&2
                cat "$out.headers" >&2
                exit 1
            fi
        done
    done
done

declare -A rss_warm pss_warm
for server in "${servers[@]}"; do
    read -r "rss_warm[$server]" "pss_warm[$server]" < <(memory_kib "${pid_of[$server]}")
done
origin_before=$(wc -l <"$D/origin.access.log")
origin_ticks=$(cpu_ticks "$origin_pid")

# --- the runs -----------------------------------------------------------------------------------

workloads=(h2-1k h2-100k h1-1k)
declare -A object_of=([h2-1k]=1k [h2-100k]=100k [h1-1k]=1k)
declare -A label_of=(
    [h2-1k]="h2 + TLS 1.3, 1 KiB"
    [h2-100k]="h2 + TLS 1.3, 100 KiB"
    [h1-1k]="HTTP/1.1 keep-alive, 1 KiB"
)
declare -A tls_of=()
: >"$D/results"

# A wrk size or latency ("1.23ms", "150.00MB") in ms or bytes.
wrk_ms() { awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : -1)
    if (f < 0) { print "nan"; exit } printf "%.3f\n", n * f }'; }
wrk_bytes() { awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "B" ? 1 : u == "KB" ? 1024 : u == "MB" ? 1048576 : u == "GB" ? 1073741824 : u == "TB" ? 1099511627776 : -1)
    if (f < 0) { print "nan"; exit } printf "%.0f\n", n * f }'; }

# run_load SERVER WORKLOAD: one measured run; appends
# "SERVER WORKLOAD req/s requests p99_ms server_ticks client_cpu_s wall_s bytes_per_response
# status_0_rows" to $D/results (bytes per response: h2load's traffic or wrk's bytes read over the
# requests, rough: responses cut by the start and end of the measured phase make it +-3%).
run_load() { # server workload
    local server=$1 w=$2 out pid before after rc=0 rps total p99 bytes wall user sys straddling=0
    local object=${object_of[$2]}
    out=$D/$w.$server.$RANDOM
    pid=${pid_of[$server]}
    if [[ $w == h2-* ]]; then
        (
            TIMEFORMAT='%R %U %S'
            time h2load -D "$seconds" --warm-up-time="$warm_up" -c "$connections" -m "$streams" -t 1 \
                --log-file="$out.log" "https://127.0.0.1:${https_port_of[$server]}/$object" >"$out" 2>&1
        ) 2>"$out.time" &
        client_pid=$!
        # h2load measures from the end of its warm-up (during which all connections and their TLS
        # handshakes are made) until it stops its clients, and so does the server's CPU figure.
        sleep "$warm_up"
        before=$(cpu_ticks "$pid")
        wait "$client_pid" || rc=$?
        after=$(cpu_ticks "$pid")
        client_pid=
        check_alive "$pid" "$server exited during the $w run"
        local summary failed errored timeout ok tls alpn codes cipher kex rows bad traffic
        # "req/s requests failed errored timeout 2xx tls alpn codes cipher key-exchange traffic"
        summary=$(awk '
            /^finished in/ { rps = $4 }
            /^requests:/ { total = $2; failed = $10; errored = $12; timeout = $14 }
            /^status codes:/ { sub(/^status codes: */, ""); ok = $1; codes = $0; gsub(/,? /, "_", codes) }
            /^TLS Protocol:/ { tls = $3 }
            /^Cipher:/ { cipher = $2 }
            /^Server Temp Key:/ { kex = $4 }
            /^Application protocol:/ { alpn = $3 }
            /^traffic:/ { traffic = $3; gsub(/[()]/, "", traffic) }
            END { printf "%s %d %d %d %d %d %s %s %s %s %s %d\n", rps, total, failed, errored, timeout,
                  ok, tls, alpn, codes, cipher, kex, traffic }' "$out")
        read -r rps total failed errored timeout ok tls alpn codes cipher kex traffic <<<"$summary"
        # The log has one row per measured request. A request whose response headers came during
        # the warm-up and whose stream closed after it is logged with status 0 (and counted as
        # succeeded, not among the status codes): with 100 KiB responses a few of the 500 in
        # flight at the boundary. Any other status but 200 stops the script.
        read -r rows bad straddling < <(awk '$2 == 0 {z++} $2 != 200 && $2 != 0 {bad++}
            END {printf "%d %d %d\n", NR, bad, z}' "$out.log")
        if ((rc != 0 || total == 0 || failed + errored + timeout > 0 || ok + straddling < total ||
            rows != total || bad > 0 || straddling > connections * streams)) ||
            [[ $codes != *_2xx_0_3xx_0_4xx_0_5xx || $tls != TLSv1.3 || $alpn != h2 ]]; then
            cat "$out" >&2
            echo "error: h2load $w against $server: exit $rc, $total requests, $failed failed," \
                "$errored errored, $timeout timeout, ${codes//_/ }, $tls $alpn; log: $rows rows," \
                "$bad neither 200 nor 0, $straddling 0 (see $out)" >&2
            keep=true
            exit 1
        fi
        tls_of[$server]="$tls $cipher $kex"
        p99=$(awk '{print $3 / 1000}' "$out.log" | quantile 0.99)
        # traffic counts the warm-up's responses too; per request it is close enough.
        bytes=$(awk -v t="$traffic" -v n="$ok" 'BEGIN {printf "%.0f", t / n}')
        $keep || rm -f "$out.log"
    else
        before=$(cpu_ticks "$pid")
        (
            TIMEFORMAT='%R %U %S'
            time wrk -t1 -c"$connections" -d"${seconds}s" --latency \
                "http://127.0.0.1:${http_port_of[$server]}/$object" >"$out" 2>&1
        ) 2>"$out.time" &
        client_pid=$!
        wait "$client_pid" || rc=$?
        after=$(cpu_ticks "$pid")
        client_pid=
        check_alive "$pid" "$server exited during the $w run"
        local read_size socket_errors non2xx p99_text
        # "requests read_size req/s p99 socket_errors non2xx"
        read -r total read_size rps p99_text socket_errors non2xx < <(awk '
            / requests in / { total = $1; read = $5; sub(/,$/, "", read) }
            /^Requests\/sec:/ { rps = $2 }
            $1 == "99%" { p99 = $2 }
            /Socket errors:/ { socket = $0; sub(/^ *Socket errors: */, "", socket); gsub(/[ ,]+/, "_", socket) }
            /Non-2xx or 3xx responses:/ { non2xx = $NF }
            END { printf "%d %s %s %s %s %d\n", total, read, rps, p99, (socket == "" ? "none" : socket),
                  non2xx }' "$out")
        if ((rc != 0 || total == 0 || non2xx > 0)) || [[ $socket_errors != none ]]; then
            cat "$out" >&2
            echo "error: wrk $w against $server: exit $rc, $total requests, socket errors" \
                "${socket_errors//_/ }, $non2xx non-2xx/3xx responses (see $out)" >&2
            keep=true
            exit 1
        fi
        p99=$(wrk_ms "$p99_text")
        bytes=$(awk -v b="$(wrk_bytes "$read_size")" -v n="$total" 'BEGIN {printf "%.0f", b / n}')
    fi
    read -r wall user sys <"$out.time"
    awk -v s="$server" -v w="$w" -v rps="$rps" -v total="$total" -v p99="$p99" \
        -v ticks="$((after - before))" -v cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" \
        -v wall="$wall" -v bytes="$bytes" -v z="$straddling" \
        'BEGIN {printf "%s %s %.0f %d %.2f %d %.2f %.2f %d %d\n", s, w, rps, total, p99, ticks, cpu, wall, bytes, z}' \
        >>"$D/results"
    tail -n 1 "$D/results" | awk -v tck="$clk_tck" -v s="$seconds" '{
        printf "    %-8s %-8s %8s req/s  p99 %7.2f ms  %5.2f s server CPU (%.2f cores), %.3f s per 100k\n",
            $1, $2, $3, $5, $6 / tck, $6 / tck / s, $6 / tck / $4 * 100000}' >&2
}

for ((round = 1; round <= rounds; round++)); do
    say "round $round/$rounds: ${seconds} s each; h2load -c $connections -m $streams -t 1 (warm-up ${warm_up} s), wrk -t1 -c$connections"
    for w in "${workloads[@]}"; do
        for server in "${servers[@]}"; do
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
    for server in "${servers[@]}"; do
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

### Caching reverse proxy, cache hits: edgenode vs nginx $(nginx -v 2>&1 | sed 's|.*nginx/||') proxy_cache

Both in front of the same origin (nginx, static, Cache-Control max-age=3600), caches warm. $rounds round(s)
of $seconds s per server and workload, alternating; h2load $(h2load --version | awk '{print $2}') -c $connections -m $streams -t 1 (warm-up
$warm_up s, https://127.0.0.1) and wrk $(wrk -v 2>&1 | awk 'NR == 1 {print $2}') -t1 -c$connections (http://127.0.0.1, keep-alive); $(nproc) cores shared by the server and the
load generator; edgenode one process (tokio), nginx worker_processes 2 (reuseport). Medians over the runs.

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
