# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # what the functions set (ports, PIDs) is the calling script's
# to read; launched_pid, launched_port, edgenode_pid and the like are lib.sh's
# bench/servers.sh: the reference servers, the origin and the query files the bench scripts share;
# sourced by lib.sh. Every server runs on 127.0.0.1 from $D, in the foreground (so that $! is the
# server), with its PID in server_pids (lib.sh's cleanup stops it).
#
# Certificates
#   make_certificate NAME             a self-signed ECDSA P-256 certificate for 127.0.0.1 (the
#                                     kind edgenode generates): $D/NAME.crt and $D/NAME.key
# DNS servers
#   nsd_zone_clauses ZONEFILE...      NSD `zone:` clauses (with provide-xfr to 127.0.0.1) for
#                                     start_nsd
#   start_knot ZONESDIR ZONE...       Knot DNS (2 UDP and 2 TCP workers) serving ZONESDIR/ZONE.zone;
#                                     waits for the first zone's SOA; sets knot_pid, knot_port
#   start_unbound UPSTREAM_PORT CHECK_ZONE [DOH_PORT CERT KEY]
#                                     Unbound forwarding "." to 127.0.0.1@UPSTREAM_PORT (2
#                                     threads, minimal-responses); with DOH_PORT also its RFC 8484
#                                     listener (TLS, h2); waits for CHECK_ZONE SOA through it;
#                                     sets unbound_pid, unbound_port
# nginx
#   nginx_common NAME, nginx_temp_paths NAME
#                                     the directives every nginx here needs to run as root from $D
#   start_nginx NAME CONF CHECK_URL   nginx -c CONF; waits until CHECK_URL answers; sets
#                                     nginx_started_pid
#   start_origin                      a static nginx (1 worker) serving $D/origin/1k (1024 random
#                                     bytes), /100k (102400) and /m/ANYTHING (the 1k object), all
#                                     max-age=3600, access log $D/origin.access.log; sets
#                                     origin_pid, origin_port and object_sum[OBJECT] (sha256)
#   start_nginx_proxy ORIGIN_PORT     nginx proxy_cache in front of it (REFERENCE-SERVERS.md;
#                                     2 workers, TLS 1.3 + h2 and plain HTTP/1.1 listeners); sets
#                                     nginx_proxy_pid, nginx_https_port, nginx_http_port
#   warm_proxy SERVER...              each object through each listener of each SERVER, twice:
#                                     the second must be a 200 hit with the origin's bytes
#                                     (pid_of, https_port_of, http_port_of, cacert_of by SERVER)
# Query files
#   dns_query_mix NSD_PORT OUT ZONEFILE...
#                                     1000 queries from an AXFR of each zone: 50% positive, 20%
#                                     the geo name www.<first zone> A, 15% NXDOMAIN, 15% NODATA
#   write_bench_zone ZONE NAMES OUT   a zone of NAMES A records www1...wwwNAMES, TTL 3600
#   bench_queries ZONE NAMES OUT      every one of those names once, A, shuffled (fixed seed)
#   warm_resolver NAME PID PORT QUERIES
#                                     a pass over QUERIES to fill a resolver's cache, then one
#                                     that must find every name (all NOERROR, nothing lost)
#   doh_query NAME                    the RFC 8484 GET parameter for NAME A (ID 0, RD)

make_certificate() { # name
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
        -keyout "$D/$1.key" -out "$D/$1.crt" 2>"$D/openssl.log" ||
        { cat "$D/openssl.log" >&2; echo "error: openssl could not make a certificate" >&2; exit 1; }
}

# --- DNS servers --------------------------------------------------------------------------------

nsd_zone_clauses() { # zonefile...
    local zone_file
    for zone_file in "$@"; do
        # provide-xfr: query files are generated from a transfer of the zone.
        printf 'zone:\n    name: "%s"\n    zonefile: "%s"\n    provide-xfr: 127.0.0.1 NOKEY\n' \
            "$(basename "$zone_file" .zone)" "$(realpath "$zone_file")"
    done
}

knot_pid=
knot_port=

start_knot() { # zonesdir zone...
    local zonesdir=$1
    shift
    local zones=("$@")
    mkdir -p "$D/knot-run" "$D/knot-db"
    launch_dns_server knot "$1" +norec write_knot_conf knotd -c "$D/knot.conf"
    knot_pid=$launched_pid
    knot_port=$launched_port
}

write_knot_conf() { # port (and start_knot's locals)
    local zone
    {
        cat <<EOF
server:
    listen: 127.0.0.1@$1
    rundir: "$D/knot-run"
    udp-workers: 2
    tcp-workers: 2
    background-workers: 1
database:
    storage: "$D/knot-db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$(realpath "$zonesdir")"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
EOF
        for zone in "${zones[@]}"; do printf '  - domain: "%s"\n' "$zone"; done
    } >"$D/knot.conf"
}

unbound_pid=
unbound_port=

start_unbound() { # upstream_port check_zone [doh_port cert key]
    local upstream=$1 check_zone=$2 doh_port=${3:-} cert=${4:-} key=${5:-} doh=
    if [[ -n $doh_port ]]; then
        # incoming-num-tcp: Unbound's default (10 per thread) would refuse h2load's connections.
        doh="    interface: 127.0.0.1@$doh_port
    https-port: $doh_port
    tls-service-pem: \"$cert\"
    tls-service-key: \"$key\"
    incoming-num-tcp: 256
    http-notls-downstream: no"
    fi
    launch_dns_server unbound "$check_zone" +rec write_unbound_conf unbound -d -c "$D/unbound.conf"
    unbound_pid=$launched_pid
    unbound_port=$launched_port
}

write_unbound_conf() { # port (and start_unbound's locals)
    cat >"$D/unbound.conf" <<EOF
server:
    interface: 127.0.0.1@$1
    port: $1
$doh
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
    forward-addr: 127.0.0.1@$upstream
EOF
}

# --- nginx --------------------------------------------------------------------------------------

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

proxy_objects=(1k 100k)
declare -A object_size=([1k]=1024 [100k]=102400) object_sum=()
origin_pid=
origin_port=

start_origin() {
    local object
    mkdir -p "$D/origin"
    for object in "${proxy_objects[@]}"; do
        head -c "${object_size[$object]}" /dev/urandom >"$D/origin/$object"
        object_sum[$object]=$(sha256sum <"$D/origin/$object" | awk '{print $1}')
    done
    origin_port=$(free_port)
    cat >"$D/origin.conf" <<EOF
# bench: the origin, a static server (its CPU is not counted).
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
        # Any number of distinct URLs, one 1 KiB body: filling a cache with many objects.
        location /m/ { rewrite ^ /1k break; }
    }
}
EOF
    say "starting the origin (nginx, static, port $origin_port)"
    start_nginx origin "$D/origin.conf" "http://127.0.0.1:$origin_port/1k"
    origin_pid=$nginx_started_pid
}

nginx_proxy_pid=
nginx_https_port=
nginx_http_port=

# Fairness (bench/proxy.sh's header): 2 workers with reuseport, access_log off, keepalive_requests
# raised (h2load does not reconnect), an ECDSA P-256 certificate like edgenode's.
start_nginx_proxy() { # origin_port
    make_certificate nginx
    nginx_https_port=$(free_port)
    nginx_http_port=$(free_port)
    while ((nginx_http_port == nginx_https_port)); do nginx_http_port=$(free_port); done
    mkdir -p "$D/cache"
    cat >"$D/nginx.conf" <<EOF
# bench: nginx as a TLS 1.3 + HTTP/2 (and plain HTTP/1.1) caching proxy.
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
        server 127.0.0.1:$1;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$nginx_https_port ssl http2 reuseport;
        listen 127.0.0.1:$nginx_http_port reuseport;
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
    say "starting nginx (proxy_cache, 2 workers, https $nginx_https_port, http $nginx_http_port)"
    start_nginx nginx "$D/nginx.conf" "https://127.0.0.1:$nginx_https_port/1k"
    nginx_proxy_pid=$nginx_started_pid
}

declare -A pid_of=() https_port_of=() http_port_of=() cacert_of=()

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
    echo "$meta $(awk -v s="$server" 'tolower($1) == (s == "nginx" ? "x-cache:" : s == "varnish" ? "x-varnish:" : "cache-status:") {
            sub(/^[^:]*: */, ""); sub(/\r$/, ""); gsub(/ /, "_"); print; exit }' "$out.headers" 2>/dev/null)"
}

# start_varnish ORIGIN_PORT: Varnish (malloc storage, its builtin VCL, a backend of
# ORIGIN_PORT) on a free port, HTTP/1.1 only (Varnish has no TLS). Sets varnish_pid and
# varnish_port. `-j none`: no privilege separation (the work directory is root's); 2 thread
# pools, one per core, as Varnish's docs advise.
start_varnish() { # origin_port
    varnish_port=$(free_port)
    say "starting varnish $(varnishd -V 2>&1 | sed -n 's/.*(varnish-\([0-9.]*\).*/\1/p;q') (malloc 256M, http $varnish_port)"
    varnishd -F -j none -n "$D/varnish" -a "127.0.0.1:$varnish_port" -b "127.0.0.1:$1" \
        -s malloc,256m -p thread_pools=2 >"$D/varnish.log" 2>&1 &
    varnish_pid=$!
    server_pids+=("$varnish_pid")
    local i
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null "http://127.0.0.1:$varnish_port/1k" && return 0
        check_alive "$varnish_pid" "varnishd exited; see $D/varnish.log: $(tail -n 3 "$D/varnish.log")"
        sleep 0.1
    done
    echo "error: varnish did not answer on port $varnish_port" >&2
    exit 1
}

# warm_varnish: each object twice over HTTP/1.1; the second must be a hit (two ids in
# X-Varnish) with the origin's bytes.
warm_varnish() {
    local object out second code version cache sum
    for object in "${proxy_objects[@]}"; do
        out=$D/check.varnish.http.$object
        fetch varnish http "$object" "$out" >/dev/null
        second=$(fetch varnish http "$object" "$out")
        read -r code version cache <<<"$second"
        sum=$(sha256sum <"$out" | awk '{print $1}')
        printf '    %-8s %-5s /%-4s second: %s\n' varnish http "$object" "${second//_/ }" >&2
        if [[ $code != 200 || $version != 1.1 || $cache != *_* || $sum != "${object_sum[$object]}" ]]; then
            echo "error: varnish's second response for /$object is not a 200 HTTP/1.1 hit" \
                "with the origin's bytes; its headers:" >&2
            cat "$out.headers" >&2
            exit 1
        fi
    done
}

warm_proxy() { # server...
    local server scheme object out first second code version cache sum want_version want_cache
    say "warming the caches (each object through each listener, twice) and checking the hits"
    for server in "$@"; do
        for scheme in https http; do
            for object in "${proxy_objects[@]}"; do
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
                    $sum != "${object_sum[$object]}" ]]; then
                    echo "error: $server's second $scheme response for /$object is not a 200" \
                        "HTTP/$want_version cache hit ($want_cache) with the origin's" \
                        "${object_size[$object]} bytes; its headers:" >&2
                    cat "$out.headers" >&2
                    exit 1
                fi
            done
        done
    done
}

# --- query files --------------------------------------------------------------------------------

dns_query_mix() { # nsd_port out zonefile...
    local port=$1 out=$2 zone_file zone first_zone
    shift 2
    first_zone=$(basename "$1" .zone)
    # Every (owner, type) of every zone, from an AXFR: fully qualified names, one record a line.
    : >"$out.records"
    for zone_file in "$@"; do
        zone=$(basename "$zone_file" .zone)
        dig @127.0.0.1 -p "$port" +time=2 +tries=1 +onesoa +noall +answer "$zone" AXFR |
            awk -v zone="$zone." '$4 != "RRSIG" && $4 != "NSEC" {print tolower($1), $4, zone}' >>"$out.records"
    done
    [[ -s $out.records ]] || { echo "error: no records transferred from NSD" >&2; exit 1; }
    # 1000 queries, in a fixed order: 50% positive answers (every owner/type in turn, A at CNAME
    # owners; wildcard owners get a concrete label), 20% the geo name www.<first zone> A, 15%
    # NXDOMAIN, 15% NODATA (a type absent at an existing owner).
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
        }' "$out.records" >"$out"
    say "query file: $(wc -l <"$out") queries over $(wc -l <"$out.records") records of $# zone(s)"
}

write_bench_zone() { # zone names out
    {
        cat <<EOF
\$ORIGIN $1.
\$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 900 604800 3600
@ IN NS ns1
ns1 IN A 127.0.0.1
EOF
        awk -v n="$2" 'BEGIN {
            for (i = 1; i <= n; i++) printf "www%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256 }'
    } >"$3"
}

bench_queries() { # zone names out
    awk -v n="$2" -v zone="$1" 'BEGIN {
        srand(20261125)
        for (i = 1; i <= n; i++) q[i] = i
        for (i = n; i > 1; i--) { j = int(rand() * i) + 1; t = q[i]; q[i] = q[j]; q[j] = t }
        for (i = 1; i <= n; i++) printf "www%d.%s. A\n", q[i], zone }' >"$3"
}

warm_resolver() { # name pid port queries
    local name=$1 pid=$2 port=$3 queries=$4 pass completed lost codes want
    want=$(wc -l <"$queries")
    for pass in fill check; do
        dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -c 10 -n 1 -q 20 >"$D/dnsperf.$name.warm-$pass" 2>&1 ||
            { cat "$D/dnsperf.$name.warm-$pass" >&2; echo "error: dnsperf failed against $name" >&2; exit 1; }
        read -r _ completed lost _ codes < <(dnsperf_summary "$D/dnsperf.$name.warm-$pass")
        printf '    %-9s %-5s %5d answered, %d lost: %s\n' "$name" "$pass" "$completed" "$lost" "${codes//_/ }" >&2
    done
    check_alive "$pid" "$name exited during the warm-up"
    if ((lost > 0 || completed != want)) || [[ $codes != NOERROR_"$want"_* ]]; then
        echo "error: $name's cache is not warm after two passes (see $D/dnsperf.$name.warm-check)" >&2
        keep=true
        exit 1
    fi
}

doh_query() { # name
    local wire='\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00' label labels
    IFS=. read -ra labels <<<"$1"
    for label in "${labels[@]}"; do wire+=$(printf '\\x%02x' "${#label}")$label; done
    wire+='\x00\x00\x01\x00\x01'
    printf '%b' "$wire" | base64 -w0 | tr '+/' '-_' | tr -d '='
}
