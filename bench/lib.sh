# shellcheck shell=bash
# bench/lib.sh: what the bench scripts (dns.sh, recursive.sh, httpdns.sh, proxy.sh, soak.sh,
# run.sh) share. Each sources it right after its header comment and `set -euo pipefail`:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It sources bench/servers.sh (reference servers, the origin, query files) and bench/loads.sh
# (one measured h2load, wrk or dnsperf run), whose headers list what they provide.
#
# Sourcing only defines functions and globals: the defaults rounds=3, seconds=10, clients=10,
# keep=false (a script sets its own defaults after the source line), and the state below (D,
# server_pids, client_pid, stop_seconds, edgenode_bin, edgenode_pid, nsd_pid, nsd_port,
# upstream_pid, clk_tck). It provides:
#
# Options and setup
#   parse_options VAR... -- ARGS...   --quick (1 round of 5 s), --rounds N, --seconds S, --keep,
#                                     -h/--help (the script's header comment), and --VAR VALUE for
#                                     each VAR (`_` spelt `-`: nsd_servers is --nsd-servers);
#                                     anything else exits 2
#   require_positive_integers N...    exits 2 unless each N is a positive integer
#   bench_setup NAME TOOL[=PACKAGE]...
#                                     cd to the repository, /usr/sbin on PATH; each TOOL must be on
#                                     PATH, and those with a Debian PACKAGE are apt-get installed
#                                     when missing (never otherwise); the work directory $D
#                                     (edgenode-bench-NAME.XXXXXX), clk_tck, and the traps that
#                                     stop every PID in server_pids (and a load generator's
#                                     process tree at client_pid) on exit, stop_seconds (5) after
#                                     SIGTERM with SIGKILL, and remove $D unless --keep
#                                     (bench_setup also applies glibc_copy_tunable, below)
#   say MESSAGE                       "==> MESSAGE" on stderr
#   stop_server PID                   SIGTERM, SIGKILL after stop_seconds, and PID out of
#                                     server_pids (one server, before the exit's cleanup)
#   check_alive PID MESSAGE           exits with "error: MESSAGE" unless PID is running
#
# Processes, over /proc (no procps needed)
#   process_tree PID                  PID and all its descendants, one per line
#   cpu_ticks PID                     utime+stime of the process tree, in clock ticks
#   memory_kib PID                    "RSS PSS" of the process tree, in KiB
#   peak_rss_kib PID                  the largest VmHWM (peak RSS) in the process tree, in KiB
#   free_port                         a port in 20000-31999 with no UDP or TCP socket on it
#
# Servers (all on 127.0.0.1)
#   build_edgenode                    cargo build --release (or $EDGENODE_BIN); sets edgenode_bin
#   start_edgenode ARGS...            `edgenode serve ARGS` in the background (stdout
#                                     $D/NAME.out, stderr $D/NAME.log, NAME: $edgenode_name,
#                                     edgenode by default, so that a script can run several);
#                                     sets edgenode_pid and waits for its `ready` line
#   edgenode_says WORD...             the word after the first stdout line starting with WORD...
#                                     (of the node $edgenode_name)
#   listening_port KIND               the port of its `listening KIND ADDRESS` line (dns-udp, ...)
#   edgenode_failed MESSAGE           "error: MESSAGE", its output and log; exits 1
#   dns_status PORT NAME TYPE [dig options]
#                                     dig's status (NOERROR, ...; "timeout" without an answer)
#   wait_for_noerror PORT NAME TYPE [dig options]
#                                     waits up to 10 s for a NOERROR answer
#   launch_dns_server NAME CHECK_ZONE DIG_OPTION WRITE_CONF COMMAND...
#                                     a DNS server on a free port (up to 3 tries) until CHECK_ZONE
#                                     answers; sets launched_pid, launched_port
#   start_nsd SERVERS ZONESDIR CHECK_ZONE ZONE_CLAUSES
#                                     NSD (`nsd -d`, server-count SERVERS, no rate limit) on a
#                                     free port, the `zone:` clauses given as text; waits for
#                                     CHECK_ZONE SOA; sets nsd_pid and nsd_port
#
# dnsperf runs
#   dnsperf_to NAME PORT OUT [options]
#                                     dnsperf -e -c $clients over $D/queries, output in OUT;
#                                     exits with that output if dnsperf fails
#   dnsperf_summary FILE              "qps completed lost response_bytes codes" (codes with _)
#   dnsperf_run NAME PID PORT SECONDS one measured dnsperf -q 100 run: appends "NAME qps completed
#                                     cpu_seconds lost upstream_cpu_seconds response_bytes codes"
#                                     to $D/results (the CPU of upstream_pid's tree, if set, in
#                                     the 6th column) and prints the run on stderr
#
# Report
#   quantile Q                        the Q quantile (nearest rank) of the numbers on stdin
#   median                            the median of the numbers on stdin
#   median_of NAME qps|cpu            over NAME's rows of $D/results: QPS, or CPU s per 100k answers
#   last_field NAME COLUMN            COLUMN of NAME's last row of $D/results, _ read as spaces
#   ratio A B, mib KIB, fixed VALUE DIGITS
#   table_header COLUMN..., table_row CELL...
#                                     a Markdown table's header (first column left-aligned, the
#                                     others right-aligned) and rows

rounds=3
seconds=10
clients=10
keep=false

# --- options and setup --------------------------------------------------------------------------

parse_options() {
    local _own=() _var _found
    while (($# > 0)) && [[ $1 != -- ]]; do
        _own+=("$1")
        shift
    done
    (($# > 0)) && shift
    while (($# > 0)); do
        # shellcheck disable=SC2034 # rounds and seconds are the scripts' to read
        case "$1" in
            --quick) rounds=1 seconds=5 ;;
            --keep) keep=true ;;
            -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
            *)
                _found=
                for _var in rounds seconds "${_own[@]}"; do
                    [[ $1 == "--${_var//_/-}" ]] && _found=$_var
                done
                [[ -n $_found ]] || { echo "unknown argument: $1 (try --help)" >&2; exit 2; }
                (($# > 1)) || { echo "error: $1 wants a value (try --help)" >&2; exit 2; }
                printf -v "$_found" '%s' "$2"
                shift
                ;;
        esac
        shift
    done
}

require_positive_integers() {
    local n
    for n in "$@"; do
        [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "error: expected a positive integer, got '$n'" >&2; exit 2; }
    done
}

say() { printf '==> %s\n' "$*" >&2; }

check_alive() { # pid message
    kill -0 "$1" 2>/dev/null || { echo "error: $2" >&2; exit 1; }
}

D=
server_pids=()
client_pid=
stop_seconds=5

stop_server() { # pid
    local pid=$1 i kept=()
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < stop_seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${server_pids[@]}"; do [[ $i == "$pid" ]] || kept+=("$i"); done
    server_pids=("${kept[@]}")
}

cleanup() {
    local pid i
    # A load generator still running (an interrupted run): its process tree.
    if [[ -n $client_pid ]]; then
        for pid in $(process_tree "$client_pid"); do kill -TERM "$pid" 2>/dev/null || true; done
        wait "$client_pid" 2>/dev/null || true
    fi
    for pid in "${server_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${server_pids[@]}"; do
        for ((i = 0; i < stop_seconds * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ -n $D ]] || return 0
    if $keep; then echo "work directory kept: $D" >&2; else rm -rf "$D"; fi
}

bench_setup() { # name tool[=package]...
    local name=$1 spec tool
    local -A package_of=()
    local required=() missing=()
    shift
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
    case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
    for spec in "$@"; do
        if [[ $spec == *=* ]]; then
            package_of[${spec%%=*}]=${spec#*=}
        else
            required+=("$spec")
        fi
    done
    for tool in "${required[@]}"; do
        command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
    done
    # apt only when one is missing, as .ci/run does.
    for tool in "${!package_of[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
    done
    if ((${#missing[@]} > 0)); then
        say "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2
        # Installing these starts no service here (no systemd); the servers use their own configs.
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2
    fi
    for tool in "${!package_of[@]}"; do
        command -v "$tool" >/dev/null || { echo "error: $tool is still missing" >&2; exit 1; }
    done

    glibc_copy_tunable
    D=$(mktemp -d "${TMPDIR:-/tmp}/edgenode-bench-$name.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    clk_tck=$(getconf CLK_TCK)
}

# glibc 2.36 (Debian 12) copies 2112 bytes or more with `rep movsb` on CPUs that announce fast
# short string moves (`fsrm`; `ld.so --list-tunables` shows the threshold). AMD's Zen 3 and Zen 4
# run it up to 20 times slower when the destination is not aligned (glibc bug 30994, whose fix
# stops newer glibc from using it on AMD). rustls copies each TLS record's plaintext to 5 bytes
# past the start of a new buffer, exactly that case: on this machine's EPYC with glibc 2.36 that copy was a third of edgenode's
# CPU time serving 100 KiB objects over TLS (perf), and the tunable below cut its CPU per request
# by a quarter. So that every server runs with the copy current glibc makes, the bench exports
# GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295 for all it starts, reference
# servers and load generators alike, on an AMD CPU with `fsrm` (unless GLIBC_TUNABLES is set
# already, or BENCH_GLIBC_DEFAULTS=1). Sets glibc_copy_note for the reports.
glibc_copy_tunable() {
    glibc_copy_note="glibc's own memcpy choice (GLIBC_TUNABLES unset)"
    if [[ -n ${GLIBC_TUNABLES:-} ]]; then
        glibc_copy_note="GLIBC_TUNABLES=$GLIBC_TUNABLES (set by the caller)"
        return
    fi
    [[ ${BENCH_GLIBC_DEFAULTS:-0} == 1 ]] && return
    grep -q -m1 '^vendor_id.*AuthenticAMD' /proc/cpuinfo 2>/dev/null || return 0
    grep -q -m1 '^flags.* fsrm' /proc/cpuinfo || return 0
    export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295
    say "exporting GLIBC_TUNABLES=$GLIBC_TUNABLES (AMD CPU with fsrm; see bench/lib.sh)"
    glibc_copy_note="GLIBC_TUNABLES=$GLIBC_TUNABLES for every process (AMD CPU with fsrm, $(getconf GNU_LIBC_VERSION 2>/dev/null || echo glibc): no rep movsb for large copies, as newer glibc chooses on AMD)"
}

# --- processes, over /proc ----------------------------------------------------------------------

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

# utime+stime (fields 14 and 15 of /proc/PID/stat, which cover all the threads of a process) of
# the whole process tree, in clock ticks.
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

# "RSS PSS" of the process tree in KiB: RSS counts pages shared by forked processes (NSD's) once
# per process, PSS splits them fairly.
memory_kib() {
    local rss=0 pss=0 pid v
    for pid in $(process_tree "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        rss=$((rss + ${v:-0}))
        v=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
        pss=$((pss + ${v:-0}))
    done
    echo "$rss $pss"
}

# The largest VmHWM (the kernel's peak RSS of one process) in the process tree, in KiB.
peak_rss_kib() {
    local peak=0 pid v
    for pid in $(process_tree "$1"); do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        ((${v:-0} <= peak)) || peak=$v
    done
    echo "$peak"
}

# fill_and_check PID NAME N OUT: fetches N distinct 1 KiB objects (/m/1 .. /m/N) through the
# edgenode at PID (NAME, for listening_port) with h2load over one h2c connection, twice: a fill
# pass, then a check pass whose requests must all be hits. Exits on a failed pass; OUT is the
# prefix of h2load's logs. Needs $D/origin.access.log (start_origin).
fill_and_check() { # pid name n out
    local pid=$1 name=$2 n=$3 out=$4 port pass before ok fetched
    port=$(edgenode_name=$name listening_port http)
    awk -v n="$n" -v p="$port" 'BEGIN {for (i = 1; i <= n; i++) printf "http://127.0.0.1:%d/m/%d\n", p, i}' >"$out.urls"
    for pass in fill check; do
        before=$(wc -l <"$D/origin.access.log")
        h2load -n "$n" -c 1 -m 20 -t 1 -i "$out.urls" >"$out.$pass" 2>&1 ||
            { cat "$out.$pass" >&2; echo "error: h2load ($pass) failed against $name" >&2; exit 1; }
        check_alive "$pid" "$name exited during the $pass pass"
        ok=$(awk '/^status codes:/ {print $3}' "$out.$pass")
        fetched=$(($(wc -l <"$D/origin.access.log") - before))
        say "    $pass: $ok of $n 2xx, $fetched from the origin ($(awk '/^finished in/ {print $4}' "$out.$pass") req/s)"
        ((ok == n)) || { cat "$out.$pass" >&2; echo "error: not every response was 2xx" >&2; exit 1; }
    done
    ((fetched == 0)) || { echo "error: the check pass reached the origin $fetched times" >&2; exit 1; }
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

# --- servers ------------------------------------------------------------------------------------

edgenode_bin=
edgenode_pid=
edgenode_name=edgenode

build_edgenode() {
    # EDGENODE_BIN: a binary built elsewhere (another target dir or profile); no build here.
    if [[ -n ${EDGENODE_BIN:-} ]]; then
        edgenode_bin=$EDGENODE_BIN
        say "using $edgenode_bin"
        return
    fi
    say "cargo build --release"
    cargo build --release --quiet
    edgenode_bin=target/release/edgenode
}

edgenode_failed() { # message
    echo "error: $1; its output and log:" >&2
    cat "$D/$edgenode_name.out" >&2
    tail -n 30 "$D/$edgenode_name.log" >&2
    exit 1
}

# Environment assignments before the call (TMPDIR=... start_edgenode ...) reach edgenode.
start_edgenode() { # serve arguments...
    local i
    "$edgenode_bin" serve "$@" >"$D/$edgenode_name.out" 2>"$D/$edgenode_name.log" &
    edgenode_pid=$!
    server_pids+=("$edgenode_pid")
    for ((i = 0; i < 300; i++)); do
        grep -qx ready "$D/$edgenode_name.out" 2>/dev/null && return 0
        kill -0 "$edgenode_pid" 2>/dev/null || break
        sleep 0.1
    done
    edgenode_failed "edgenode did not print ready"
}

# edgenode_says listening dns-udp -> 127.0.0.1:PORT; edgenode_says tls-certificate -> PATH.
edgenode_says() { # word...
    local value
    value=$(awk -v words="$*" 'BEGIN {n = split(words, w, " ")}
        { for (i = 1; i <= n; i++) if ($i != w[i]) next; print $(n + 1); exit }' "$D/$edgenode_name.out")
    [[ -n $value ]] || edgenode_failed "edgenode printed no '$*' line"
    echo "$value"
}

listening_port() { # kind
    local address
    address=$(edgenode_says listening "$1") || exit 1
    echo "${address##*:}"
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

# launch_dns_server NAME CHECK_ZONE DIG_OPTION WRITE_CONF COMMAND...: up to 3 times, on a free
# port: `WRITE_CONF PORT` writes the server's config, COMMAND runs in the background (output in
# $D/NAME.log) until CHECK_ZONE SOA gets NOERROR there (dig DIG_OPTION: +norec for an
# authoritative server, +rec through a resolver); sets launched_pid and launched_port.
launched_pid=
launched_port=
launch_dns_server() { # name check_zone dig_option write_conf command...
    local name=$1 check_zone=$2 dig_option=$3 write_conf=$4 port
    shift 4
    for _ in 1 2 3; do
        port=$(free_port)
        "$write_conf" "$port"
        "$@" >"$D/$name.log" 2>&1 &
        launched_pid=$!
        server_pids+=("$launched_pid")
        if wait_for_noerror "$port" "$check_zone" SOA "$dig_option"; then
            launched_port=$port
            return 0
        fi
        kill -TERM "$launched_pid" 2>/dev/null || true
        wait "$launched_pid" 2>/dev/null || true
    done
    echo "error: $name did not answer $check_zone SOA; its log:" >&2
    tail -n 30 "$D/$name.log" >&2
    exit 1
}

nsd_pid=
nsd_port=

start_nsd() { # servers zonesdir check_zone zone_clauses
    local servers=$1 zonesdir=$2 zone_clauses=$4
    launch_dns_server nsd "$3" +norec write_nsd_conf nsd -d -c "$D/nsd.conf"
    # shellcheck disable=SC2034 # for the script
    nsd_pid=$launched_pid nsd_port=$launched_port
}

write_nsd_conf() { # port (and start_nsd's locals)
    cat >"$D/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$1
    port: $1
    server-count: $servers
    reuseport: yes
    username: ""
    chroot: ""
    database: ""
    zonesdir: "$zonesdir"
    zonelistfile: "$D/zone.list"
    xfrdfile: "$D/xfrd.state"
    xfrdir: "$D"
    pidfile: "$D/nsd.pid"
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
$zone_clauses
EOF
}

# --- dnsperf runs -------------------------------------------------------------------------------

dnsperf_to() { # name port out [dnsperf options]
    local name=$1 port=$2 out=$3
    shift 3
    dnsperf -s 127.0.0.1 -p "$port" -d "$D/queries" -e -c "$clients" "$@" >"$out" 2>&1 ||
        { cat "$out" >&2; echo "error: dnsperf failed against $name" >&2; exit 1; }
}

dnsperf_summary() { # file
    awk '/Queries completed:/ { completed = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average packet size:/ { bytes = $NF }
        /Response codes:/ { sub(/^ *Response codes: */, ""); gsub(/ /, "_"); codes = $0 }
        END { printf "%.0f %d %d %d %s\n", qps, completed, lost, bytes, codes }' "$1"
}

upstream_pid=

dnsperf_run() { # name pid port seconds
    local name=$1 pid=$2 port=$3 secs=$4 before after up_before=0 up_after=0 out
    out=$D/dnsperf.$name.$RANDOM
    [[ -z $upstream_pid ]] || up_before=$(cpu_ticks "$upstream_pid")
    before=$(cpu_ticks "$pid")
    dnsperf_to "$name" "$port" "$out" -q 100 -l "$secs"
    after=$(cpu_ticks "$pid")
    [[ -z $upstream_pid ]] || up_after=$(cpu_ticks "$upstream_pid")
    check_alive "$pid" "$name exited during the run"
    dnsperf_summary "$out" | awk -v name="$name" -v cpu="$((after - before))" \
        -v up="$((up_after - up_before))" -v tck="$clk_tck" '
        { printf "%s %s %s %.2f %s %.2f %s %s\n", name, $1, $2, cpu / tck, $3, up / tck, $4, $5 }' \
        >>"$D/results"
    tail -n 1 "$D/results" | awk '{printf "    %-9s %8s QPS  %6s s CPU  lost %s\n", $1, $2, $4, $5}' >&2
}

# --- the report ---------------------------------------------------------------------------------

# The value at quantile Q (0.99) of the numbers on stdin, one per line (nearest rank).
quantile() {
    sort -g | awk -v q="$1" '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        k = int(NR * q); if (k < NR * q) k++; if (k < 1) k = 1
        print v[k] }'
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

median_of() { # name qps|cpu
    awk -v s="$1" -v what="$2" '$1 == s {print (what == "qps" ? $2 : $4 / $3 * 100000)}' \
        "$D/results" | median
}

last_field() { # name column
    awk -v s="$1" -v col="$2" '$1 == s {v = $col} END {gsub(/_/, " ", v); print v}' "$D/results"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
fixed() { awk -v v="$1" -v d="$2" 'BEGIN {printf "%.*f", d, v}'; }

table_row() { # cell...
    printf '|'
    printf ' %s |' "$@"
    printf '\n'
}

table_header() { # column...
    local i
    table_row "$@"
    printf '|---|'
    for ((i = 1; i < $#; i++)); do printf -- '---:|'; done
    printf '\n'
}

# shellcheck source-path=SCRIPTDIR source=servers.sh
source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
# shellcheck source-path=SCRIPTDIR source=loads.sh
source "$(dirname "${BASH_SOURCE[0]}")/loads.sh"
