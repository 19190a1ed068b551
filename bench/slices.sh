#!/usr/bin/env bash
# bench/slices.sh: a large object read in random ranges, as video players seek: edgenode's
# slices against nginx's slice module, in front of the same origin, on this machine.
#
#   bench/slices.sh [--quick] [--rounds N] [--seconds S] [--keep]
#
# The origin is nginx, static, serving one 64 MiB random file (/video, Cache-Control
# max-age=3600, byte ranges as nginx serves files), its access log counting the body bytes it
# sends. In front of it, each with a cold cache at the start of each run:
#   edgenode  `serve --https-listen --origin ...` with its defaults (max_object_size 8 MiB,
#             slice_size 1 MiB)
#   nginx     the slice module as its documentation configures it: `slice 1m`,
#             proxy_cache_key $uri$is_args$args$slice_range, proxy_set_header Range
#             $slice_range, proxy_cache_valid 200 206 1h; 2 workers, TLS 1.3, h2
# The load is examples/range_load.rs: 100 clients, each its own h2 + TLS 1.3 connection,
# each asking for one random 1 MiB range after another for S seconds (10; --quick 5), every
# answer checked to be a 206 of 1 MiB. Per server: requests per second, p50 and p99 latency,
# server CPU seconds per 1,000 requests, and the bytes the origin sent during the run
# (a cold cache: the whole object at least once; more means slices fetched twice). Rounds
# alternate edgenode and nginx, each from an empty cache (edgenode restarted, nginx's cache
# directory emptied and nginx restarted).
#
# Every server started here is stopped by its PID on exit. All traffic stays on 127.0.0.1.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_options -- "$@"
require_positive_integers "$rounds" "$seconds"
clients=100
length=$((64 << 20))

bench_setup slices cargo curl=curl openssl=openssl nginx=nginx
stop_seconds=10

build_edgenode
say "cargo build --release --example range_load"
cargo build --release --quiet --example range_load
load=target/release/examples/range_load

# --- the origin ---------------------------------------------------------------------------------

mkdir -p "$D/origin"
head -c "$length" /dev/urandom >"$D/origin/video"
origin_port=$(free_port)
cat >"$D/origin.conf" <<EOF
# bench: the origin, a static server (its CPU is not counted).
$(nginx_common origin)
worker_processes 1;
events { worker_connections 1024; }
http {
$(nginx_temp_paths origin)
    log_format sent '\$body_bytes_sent';
    access_log $D/origin.access.log sent;
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
start_nginx origin "$D/origin.conf" "http://127.0.0.1:$origin_port/video"
origin_pid=$nginx_started_pid

# Bytes the origin has sent so far.
origin_bytes() { awk '{s += $1} END {printf "%d", s}' "$D/origin.access.log"; }

# --- the caches ---------------------------------------------------------------------------------

make_certificate nginx
nginx_port=$(free_port)
write_nginx_slice() {
    cat >"$D/nginx.conf" <<EOF
# bench: nginx with the slice module as its documentation configures it.
$(nginx_common nginx)
worker_processes 2;
events { worker_connections 1024; }
http {
$(nginx_temp_paths nginx)
    access_log off;
    keepalive_requests 10000000;
    proxy_cache_path $D/cache keys_zone=edge:10m max_size=1g;
    upstream origin {
        server 127.0.0.1:$origin_port;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$nginx_port ssl http2 reuseport;
        ssl_certificate $D/nginx.crt;
        ssl_certificate_key $D/nginx.key;
        ssl_protocols TLSv1.3;
        location / {
            slice 1m;
            proxy_cache edge;
            proxy_cache_key \$uri\$is_args\$args\$slice_range;
            proxy_set_header Range \$slice_range;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache_valid 200 206 1h;
            proxy_pass http://origin;
        }
    }
}
EOF
}

server_pid=
server_port=
start_server() { # name
    if [[ $1 == edgenode ]]; then
        TMPDIR=$D start_edgenode --zones zones --dns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
            --httpdns-listen 127.0.0.1:0 --httpdns-tls-listen 127.0.0.1:0 \
            --http-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --origin "http://127.0.0.1:$origin_port"
        server_pid=$edgenode_pid
        server_port=$(listening_port https)
    else
        rm -rf "$D/cache"
        mkdir -p "$D/cache"
        write_nginx_slice
        start_nginx nginx "$D/nginx.conf" "https://127.0.0.1:$nginx_port/"
        server_pid=$nginx_started_pid
        server_port=$nginx_port
    fi
}

: >"$D/results"
for ((round = 1; round <= rounds; round++)); do
    for server in edgenode nginx; do
        say "round $round/$rounds: $server, $clients clients, random 1 MiB ranges for ${seconds} s"
        start_server "$server"
        before_bytes=$(origin_bytes)
        before_ticks=$(cpu_ticks "$server_pid")
        "$load" "https://127.0.0.1:$server_port/video" "$length" "$clients" "$seconds" >"$D/load.out"
        ticks=$(($(cpu_ticks "$server_pid") - before_ticks))
        check_alive "$server_pid" "$server exited during the run"
        sleep 0.5 # the origin's log line of the last fetch
        fetched=$(($(origin_bytes) - before_bytes))
        read -r _ requests _ rps _ _ _ p50 _ p99 _ errors <"$D/load.out"
        if ((errors > 0 || requests == 0)); then
            cat "$D/load.out" >&2
            echo "error: $server: $errors failed requests of $requests" >&2
            exit 1
        fi
        printf '%s %s %s %s %s %d %d\n' "$server" "$rps" "$p50" "$p99" "$requests" "$ticks" "$fetched" >>"$D/results"
        awk -v tck="$clk_tck" '{printf "    %-8s %8.1f req/s  p50 %7.2f ms  p99 %7.2f ms  %.3f s CPU per 1k  origin sent %.1f MiB\n",
            $1, $2, $3, $4, $6 / tck / $5 * 1000, $7 / 1048576}' < <(tail -n 1 "$D/results") >&2
        stop_server "$server_pid"
    done
done

check_alive "$origin_pid" "the origin exited during the runs"

median_for() { # server column
    awk -v s="$1" -v c="$2" -v tck="$clk_tck" '$1 == s {
        if (c == "cpu") print $6 / tck / $5 * 1000; else if (c == "mib") print $7 / 1048576; else print $c }' \
        "$D/results" | median
}
rows=
declare -A rps p99 cpu
for server in edgenode nginx; do
    rps[$server]=$(median_for "$server" 2)
    p99[$server]=$(median_for "$server" 4)
    cpu[$server]=$(median_for "$server" cpu)
    rows+=$(table_row "$server" "$(fixed "${rps[$server]}" 1)" "$(fixed "$(median_for "$server" 3)" 2)" \
        "$(fixed "${p99[$server]}" 2)" "$(fixed "${cpu[$server]}" 3)" "$(fixed "$(median_for "$server" mib)" 1)")$'\n'
done
rows+=$(table_row "**edgenode / nginx**" "**$(ratio "${rps[edgenode]}" "${rps[nginx]}")**" "" \
    "**$(ratio "${p99[edgenode]}" "${p99[nginx]}")**" "**$(ratio "${cpu[edgenode]}" "${cpu[nginx]}")**" "")

cat <<EOF

### A 64 MiB object in random 1 MiB ranges: edgenode slices vs nginx $(nginx -v 2>&1 | sed 's|.*nginx/||') slice module

$clients clients (examples/range_load.rs), each an h2 + TLS 1.3 connection asking for one random 1 MiB range
after another, $seconds s per run, $rounds round(s), each run from a cold cache; $(nproc) cores shared by the
server, the load generator and the origin. Medians over the runs. Memory copies: $glibc_copy_note.

$(table_header "server" "req/s" "p50 ms" "p99 ms" "CPU s per 1k requests" "origin sent, MiB")
$rows
EOF
