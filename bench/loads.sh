# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # the m_* results are the caller's; seconds, connections,
# streams and warm_up are the calling script's settings
# bench/loads.sh: one measured run of a load generator against one server, with the checks that
# make its figures trustworthy; sourced by lib.sh (bench/httpdns.sh, bench/proxy.sh and
# bench/run.sh use it). Each run reads the globals seconds, connections, streams and warm_up,
# writes its files under $D, keeps the generator's PID in client_pid (so that lib.sh's cleanup
# stops an interrupted one) and stops the script with its output when a check fails. It sets:
#
#   m_rps m_total m_p99      requests (answers) per second, requests counted, p99 latency in ms
#   m_ticks                  the server's CPU over the measured phase, in clock ticks (cpu_ticks)
#   m_client_cpu m_wall      the load generator's user+system CPU seconds and its wall time
#   m_bytes                  bytes per response (h2load: traffic / requests, warm-up included;
#                            wrk: bytes read / requests; dnsperf: mean response size)
#   m_straddling             h2load: requests logged with status 0 (headers before the end of
#                            the warm-up, stream closed after it); 0 otherwise
#   m_tls                    h2load: "TLSv1.3 CIPHER KEY-EXCHANGE"
#   m_codes                  h2load status code counts / dnsperf response codes, _ for spaces
#   m_lost                   dnsperf: queries lost
#
#   h2load_measure LABEL PID URL   h2load -D seconds --warm-up-time warm_up -c connections
#                                  -m streams -t 1; the server's CPU from the end of the warm-up
#                                  (when the connections and their TLS handshakes are made) to
#                                  h2load's exit; must be TLS 1.3 + h2 for https:// URLs, no
#                                  failed, errored or timed-out request, only 200 (or status 0)
#   wrk_measure LABEL PID URL      wrk -t1 -c connections -d seconds --latency (HTTP/1.1
#                                  keep-alive); no socket error, no non-2xx/3xx response
#   dnsperf_measure LABEL PID PORT QUERIES [dnsperf options]
#                                  dnsperf -l seconds -v over QUERIES (p99 from the per-query
#                                  latencies); exits if dnsperf fails

# run_timed OUT COMMAND...: COMMAND in the background with stdout and stderr in OUT and
# "wall user system" seconds in OUT.time; sets client_pid.
run_timed() { # out command...
    local out=$1
    shift
    (
        TIMEFORMAT='%R %U %S'
        time "$@" >"$out" 2>&1
    ) 2>"$out.time" &
    client_pid=$!
}

# After run_timed's process ended: m_wall and m_client_cpu.
read_timed() { # out
    local user sys
    read -r m_wall user sys <"$1.time"
    m_client_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
}

h2load_measure() { # label pid url
    local label=$1 pid=$2 url=$3 out before after rc=0 summary rows bad failed errored timeout
    local ok tls alpn cipher kex traffic
    out=$D/h2load.${label//[^A-Za-z0-9.-]/_}.$RANDOM
    run_timed "$out" h2load -D "$seconds" --warm-up-time="$warm_up" -c "$connections" \
        -m "$streams" -t 1 --log-file="$out.log" "$url"
    sleep "$warm_up"
    before=$(cpu_ticks "$pid")
    wait "$client_pid" || rc=$?
    after=$(cpu_ticks "$pid")
    client_pid=
    check_alive "$pid" "the server exited during the $label run"
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
              ok, (tls == "" ? "none" : tls), alpn, codes, (cipher == "" ? "none" : cipher),
              (kex == "" ? "none" : kex), traffic }' "$out")
    read -r m_rps m_total failed errored timeout ok tls alpn m_codes cipher kex traffic <<<"$summary"
    # One log row per measured request. A request whose response headers came during the warm-up
    # and whose stream closed after it is logged with status 0 (and counted as succeeded, not
    # among the status codes): with large responses a few of those in flight at the boundary.
    read -r rows bad m_straddling < <(awk '$2 == 0 {z++} $2 != 200 && $2 != 0 {bad++}
        END {printf "%d %d %d\n", NR, bad, z}' "$out.log")
    if ((rc != 0 || m_total == 0 || failed + errored + timeout > 0 || ok + m_straddling < m_total ||
        rows != m_total || bad > 0 || m_straddling > connections * streams)) ||
        [[ $m_codes != *_2xx_0_3xx_0_4xx_0_5xx || $alpn != h2 ]] ||
        [[ $url == https:* && $tls != TLSv1.3 ]]; then
        cat "$out" >&2
        echo "error: h2load $label: exit $rc, $m_total requests, $failed failed, $errored errored," \
            "$timeout timeout, ${m_codes//_/ }, $tls $alpn; log: $rows rows, $bad neither 200" \
            "nor 0, $m_straddling 0 (see $out)" >&2
        if awk '$2 == 429 {found = 1; exit} END {exit !found}' "$out.log"; then
            echo "  429 Too Many Requests: an HTTPDNS rate limit (client_rate, an account's rate) is on" >&2
        fi
        keep=true
        exit 1
    fi
    m_tls="$tls $cipher $kex"
    m_p99=$(awk '{print $3 / 1000}' "$out.log" | quantile 0.99)
    m_bytes=$(awk -v t="$traffic" -v n="$ok" 'BEGIN {printf "%.0f", (n > 0 ? t / n : 0)}')
    m_ticks=$((after - before))
    m_lost=0
    $keep || rm -f "$out.log"
    read_timed "$out"
}

# A wrk size or latency ("1.23ms", "150.00MB") in ms or bytes.
wrk_ms() { awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : -1)
    if (f < 0) { print "nan"; exit } printf "%.3f\n", n * f }'; }
wrk_bytes() { awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "B" ? 1 : u == "KB" ? 1024 : u == "MB" ? 1048576 : u == "GB" ? 1073741824 : u == "TB" ? 1099511627776 : -1)
    if (f < 0) { print "nan"; exit } printf "%.0f\n", n * f }'; }

wrk_measure() { # label pid url
    local label=$1 pid=$2 url=$3 out before after rc=0 read_size socket_errors non2xx p99_text
    out=$D/wrk.${label//[^A-Za-z0-9.-]/_}.$RANDOM
    before=$(cpu_ticks "$pid")
    run_timed "$out" wrk -t1 -c"$connections" -d"${seconds}s" --latency "$url"
    wait "$client_pid" || rc=$?
    after=$(cpu_ticks "$pid")
    client_pid=
    check_alive "$pid" "the server exited during the $label run"
    # "requests read_size req/s p99 socket_errors non2xx"
    read -r m_total read_size m_rps p99_text socket_errors non2xx < <(awk '
        / requests in / { total = $1; read = $5; sub(/,$/, "", read) }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" { p99 = $2 }
        /Socket errors:/ { socket = $0; sub(/^ *Socket errors: */, "", socket); gsub(/[ ,]+/, "_", socket) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        END { printf "%d %s %.0f %s %s %d\n", total, read, rps, p99, (socket == "" ? "none" : socket),
              non2xx }' "$out")
    if ((rc != 0 || m_total == 0 || non2xx > 0)) || [[ $socket_errors != none ]]; then
        cat "$out" >&2
        echo "error: wrk $label: exit $rc, $m_total requests, socket errors" \
            "${socket_errors//_/ }, $non2xx non-2xx/3xx responses (see $out)" >&2
        keep=true
        exit 1
    fi
    m_p99=$(wrk_ms "$p99_text")
    m_bytes=$(awk -v b="$(wrk_bytes "$read_size")" -v n="$m_total" 'BEGIN {printf "%.0f", b / n}')
    m_ticks=$((after - before))
    m_straddling=0 m_tls=none m_codes=none m_lost=0
    read_timed "$out"
}

dnsperf_measure() { # label pid port queries [dnsperf options]
    local label=$1 pid=$2 port=$3 queries=$4 out before after rc=0
    shift 4
    out=$D/dnsperf.${label//[^A-Za-z0-9.-]/_}.$RANDOM
    before=$(cpu_ticks "$pid")
    run_timed "$out.log" dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l "$seconds" -v "$@"
    wait "$client_pid" || rc=$?
    after=$(cpu_ticks "$pid")
    client_pid=
    check_alive "$pid" "the server exited during the $label run"
    # The statistics, without the per-query lines ("> NOERROR NAME A LATENCY").
    grep -v '^> ' "$out.log" >"$out" || true
    if ((rc != 0)); then
        cat "$out" >&2
        echo "error: dnsperf $label failed (exit $rc)" >&2
        exit 1
    fi
    read -r m_rps m_total m_lost m_bytes m_codes < <(dnsperf_summary "$out")
    m_p99=$(awk '$1 == ">" {print $NF * 1000}' "$out.log" | quantile 0.99)
    m_ticks=$((after - before))
    m_straddling=0 m_tls=none
    mv "$out.log.time" "$out.time"
    $keep || rm -f "$out.log"
    read_timed "$out"
}
