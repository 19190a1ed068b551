#!/usr/bin/env bash
# bench/zones.sh: zone LOADING (not query throughput), edgenode against NSD and Knot DNS, on this
# machine, in one run: how long each takes to read a large zone file and how much memory the
# zone then costs, and what a reload of it does to the answers and the memory of a serving node.
#
#   bench/zones.sh [--quick] [--rounds N] [--nsd-servers N] [--reload-qps N] [--load-timeout S]
#                  [--keep]
#
# Sizes: 100000 and 1000000 records (--quick: 100000 only; ZONE_SIZES="100000 300000" chooses).
# Each size is one zone file bench.test.zone, generated here (awk, deterministic): $TTL, SOA, two
# apex NS and their addresses, then per name hN an A record and, by N, AAAA, TXT (SPF; two
# quoted strings with spaces and a semicolon), MX, CAA, wwwN CNAME hN, _sip._tcp.hN SRV,
# sel1._domainkey.hN TXT (DKIM-like), every 200th name a wildcard *.wN (A and TXT), every 1000th
# a delegation childN (NS ns.childN with its glue, and an out-of-zone NS); it stops at exactly N
# records (about 2.4 records per name).
#
# Per size, --rounds (3) rounds, the servers in turn A B C in each round; medians are reported:
#   check   `nsd-checkzone bench.test FILE`, `kzonecheck -o bench.test FILE` and
#           `edgenode check --zones DIR` (DIR holds only that file): wall time and max RSS
#           (/usr/bin/time -f '%e %M').
#   serve   NSD (`nsd -d`, server-count --nsd-servers (2), database ""), Knot DNS (`knotd`,
#           2 UDP workers, zonefile-load whole, no journal) and `edgenode serve --zones DIR`
#           (every other listener on port 0), each started on a free port: the time from the
#           start to the first answer to bench.test SOA (a client sends that query every 20 ms
#           from one socket; a socket bound but not served yet keeps the queries, so the first
#           answer comes when the server starts serving), then, 0.5 s later, the memory of all
#           the server's processes: PSS (smaps_rollup; NSD's forked processes share the zone,
#           which RSS would count once per process), RSS summed, and the largest VmHWM (peak
#           RSS of one process: what loading needed at most). Bytes per record: the PSS above
#           that of the same server with an empty zone (SOA, NS), divided by the records.
#           The last name of the zone must then be answered (the whole file was read).
#   reload  at the largest size, on the last round's servers: a fixed-rate UDP client
#           (--reload-qps, 5000/s; positive queries for names of the zone, shuffled, and every
#           50th bench.test SOA) runs 3 s (the first is warm-up, left out of the latencies),
#           then the zone file's SOA serial is raised and the reload triggered (edgenode: POST
#           /admin/reload; NSD: SIGHUP; Knot: knotc zone-reload), until 2 s after the new serial
#           is answered and the trigger returned (at most --load-timeout s). Reported: when the
#           new serial was first answered, the latency p99 and max before and during the reload,
#           queries lost (no answer within 2 s of the end) or answered with an error, and the
#           PSS of the server's processes before the reload, at its peak (sampled every 50 ms)
#           and after. With --keep, $D/reload.SERVER.SIZE.latencies has every query's send time
#           and latency, and .memory the samples.
#
# Every load, check and reload is bounded by --load-timeout (600 s); one that fails or times out
# is reported as such (with its first error line) and the run goes on. All traffic stays on
# 127.0.0.1; every server started here is stopped by its PID at the end of its measure and on
# exit; the generated zones and the work directory (mktemp -d) are removed on exit unless
# --keep. Missing tools are installed from Debian (lib.sh's bench_setup). EDGENODE_BIN=path
# measures that binary (default target/release/edgenode, built with `cargo build --release` only
# when it is missing; copied into the work directory at the start, so that a build during the
# run changes nothing): the script measures whatever that binary does.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091 # (followed with shellcheck -x)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

quick=false
rounds=3
args=()
for arg in "$@"; do
    if [[ $arg == --quick ]]; then quick=true; else args+=("$arg"); fi
done
nsd_servers=2
reload_qps=5000
load_timeout=600
parse_options nsd_servers reload_qps load_timeout -- "${args[@]}"
require_positive_integers "$rounds" "$nsd_servers" "$reload_qps" "$load_timeout"
if [[ -n ${ZONE_SIZES:-} ]]; then
    read -ra sizes <<<"$ZONE_SIZES"
elif $quick; then
    sizes=(100000)
else
    sizes=(100000 1000000)
fi
require_positive_integers "${sizes[@]}"
reload_size=$(printf '%s\n' "${sizes[@]}" | sort -n | tail -n 1)
zone=bench.test
all_servers=(nsd knot edgenode)
started=$SECONDS
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

bench_setup zones python3 awk sed sort /usr/bin/time=time dig=bind9-dnsutils curl=curl nsd=nsd \
    nsd-checkzone=nsd knotd=knot knotc=knot kzonecheck=knot
# shellcheck disable=SC2034 # lib.sh's stop_server and cleanup read it
stop_seconds=10

edgenode_bin=${EDGENODE_BIN:-target/release/edgenode}
if [[ ! -x $edgenode_bin ]]; then
    [[ -z ${EDGENODE_BIN:-} ]] || { echo "error: EDGENODE_BIN=$EDGENODE_BIN is not executable" >&2; exit 1; }
    command -v cargo >/dev/null || { echo "error: no $edgenode_bin and no cargo to build it" >&2; exit 1; }
    say "cargo build --release ($edgenode_bin is missing)"
    cargo build --release --quiet
fi
# A copy, so that a build during the run (cargo replaces the file) does not change what is measured.
edgenode_built=$(date -u -r "$edgenode_bin" '+%d %b %Y %H:%M:%S UTC')
edgenode_from=$edgenode_bin
cp "$edgenode_bin" "$D/edgenode"
edgenode_bin=$D/edgenode
say "edgenode: a copy of $edgenode_from, built $edgenode_built"

# --- the zones and the query files --------------------------------------------------------------

# gen_zone N DIR: DIR/bench.test.zone of exactly N records (see the header), DIR.queries (about
# 20000 "name type" lines for records spread over the zone; wildcards as a name below them) and
# DIR.last (the last hN name with an A record).
gen_zone() { # records dir
    local n=$1 dir=$2
    mkdir -p "$dir"
    awk -v n="$n" -v zone="$zone" -v qstep=$(((n + 19999) / 20000)) -v qout="$dir.queries" \
        -v lastout="$dir.last" '
    function rr(owner, rest, qname, qtype) {
        if (count >= n) return 0
        print owner " " rest
        count++
        if (qname != "" && count % qstep == 0) print qname " " qtype >qout
        if (qtype == "A" && owner ~ /^h[0-9]+$/) last = owner
        return 1
    }
    BEGIN {
        z = zone "."
        print "$ORIGIN " z
        print "$TTL 3600"
        rr("@", "IN SOA ns1 hostmaster 1 3600 900 604800 3600", z, "SOA")
        rr("@", "IN NS ns1"); rr("@", "IN NS ns2")
        rr("ns1", "IN A 127.0.0.1"); rr("ns2", "IN A 127.0.0.2")
        for (i = 1; count < n; i++) {
            h = "h" i; fq = h "." z
            a = sprintf("10.%d.%d.%d", int(i / 65536) % 256, int(i / 256) % 256, i % 256)
            rr(h, (i % 4 == 0 ? "300 " : "") "IN A " a, fq, "A")
            if (i % 2 == 0) rr(h, sprintf("IN AAAA 2001:db8:%x:%x::%x", int(i / 65536), i % 65536, i % 7 + 1), fq, "AAAA")
            if (i % 3 == 0) rr(h, "IN TXT \"v=spf1 ip4:" a " include:_spf.example.net -all\"", fq, "TXT")
            if (i % 7 == 0) rr(h, "IN TXT \"hello world " i "\" \"a second string; with a semicolon\"", fq, "TXT")
            if (i % 5 == 0) rr(h, "IN MX " 10 * (i % 3 + 1) " mx" i % 4 ".example.net.", fq, "MX")
            if (i % 10 == 0) rr("www" i, "IN CNAME " h, "www" i "." z, "A")
            if (i % 20 == 0) rr("_sip._tcp." h, "IN SRV 10 60 5060 " h, "_sip._tcp." fq, "SRV")
            if (i % 50 == 0) rr(h, "IN CAA 0 issue \"letsencrypt.org\"", fq, "CAA")
            if (i % 100 == 0) rr("sel1._domainkey." h, "IN TXT \"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC" i "IDAQAB\"", "sel1._domainkey." fq, "TXT")
            if (i % 200 == 0) {
                rr("*.w" i, "IN A " a, "x" i ".w" i "." z, "A")
                rr("*.w" i, "IN TXT \"wildcard " i "\"", "y" i ".w" i "." z, "TXT")
            }
            if (i % 1000 == 0) {
                rr("child" i, "IN NS ns.child" i, "www.child" i "." z, "A")
                rr("child" i, "IN NS ns.example.net.", "", "")
                rr("ns.child" i, "IN A " a, "", "")
            }
        }
        print last >lastout
    }' >"$dir/$zone.zone"
}

# The client: readiness, the fixed-rate load with a reload, the memory sampler (see its text).
client=$D/zones_client.py
cat >"$client" <<'PY'
"""bench/zones.sh's DNS client (loopback only, every loop bounded in time).

ready PORT ZONE START TIMEOUT PID
    sends ZONE SOA every 20 ms from one socket until an answer (NOERROR, an answer record)
    comes back; prints "SECONDS SERIAL", SECONDS counted from START (a Unix time, bash's
    $EPOCHREALTIME just before the server was started). Exit 1 if PID exits, 2 on TIMEOUT.
    A socket that is bound but not served yet keeps the queries; its first answers then come
    when the server starts serving, so the time is that of the first answer, not of a retry.
load PORT QUERIES QPS ZONE SERIAL PID PRE POST MAX -- TRIGGER...
    queries at a fixed rate QPS (QUERIES: "name type" lines, shuffled with a fixed seed; every
    50th query is ZONE SOA), runs TRIGGER after PRE seconds, notes when an answer first carries
    SOA serial SERIAL (the reload is then visible), stops sending POST seconds after that and
    after TRIGGER returned (or POST seconds after TRIGGER failed; at most MAX seconds in all)
    and waits 2 s for the last answers.
    Meanwhile a second process samples the memory of PID's process tree every 50 ms (into
    QUERIES.memory); QUERIES.latencies gets "seconds_since_start latency_ms|lost rcode" per
    query. Prints
    "key value" lines: per phase (warmup: the first second; before: then until TRIGGER started;
    during: from then until
    the reload is visible and TRIGGER returned; after) sent, lost, errors (answers that are not
    NOERROR), p50, p99, max (ms); trigger_s, visible_s, trigger_rc; rss/pss (KiB) before TRIGGER,
    the peak from TRIGGER to the end, at the end.
sample PID OUT
    the memory sampler: "monotonic_time rss_kib pss_kib" lines every 50 ms until SIGTERM
    (at most 600 s).
"""
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "CAA": 257}
OPT = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 0)
WARMUP = 1.0  # seconds of load not counted in the before phase's latencies


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def question(name, qtype):
    return wire_name(name) + struct.pack(">HH", TYPES[qtype], 1)


def message(qid, q):
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1) + q + OPT


def skip_name(data, i):
    while True:
        n = data[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


def soa_serial(data):
    """The serial of the first answer record if it is an SOA, else None."""
    try:
        qd, an = struct.unpack(">HH", data[4:8])
        if qd != 1 or an < 1:
            return None
        i = skip_name(data, 12) + 4
        i = skip_name(data, i)
        rtype = struct.unpack(">H", data[i:i + 2])[0]
        if rtype != 6:
            return None
        i += 10
        i = skip_name(data, i)
        i = skip_name(data, i)
        return struct.unpack(">I", data[i:i + 4])[0]
    except (IndexError, struct.error):
        return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def ready(port, zone, start, timeout, pid):
    s = udp_socket()
    q = question(zone, "SOA")
    dest = ("127.0.0.1", port)
    qid = 0
    next_send = time.monotonic()
    deadline = next_send + timeout
    while True:
        now = time.monotonic()
        if now >= deadline:
            sys.exit(2)
        if now >= next_send:
            if not alive(pid):
                sys.exit(1)
            qid = (qid + 1) & 0xFFFF
            try:
                s.sendto(message(qid, q), dest)
            except OSError:
                pass
            next_send += 0.02
        if select.select([s], [], [], max(0.0, next_send - time.monotonic()))[0]:
            try:
                data = s.recv(65535)
            except OSError:
                continue
            at = time.time()
            if len(data) >= 12 and data[3] & 0x0F == 0 and struct.unpack(">H", data[6:8])[0] > 0:
                print(f"{at - start:.3f} {soa_serial(data)}")
                return


def memory(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    rss = pss = 0
    queue = [pid]
    while queue:
        p = queue.pop()
        queue.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return rss, pss


def sample(pid, out):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + 600
    with open(out, "w") as f:
        while not stop and time.monotonic() < end:
            t = time.monotonic()
            rss, pss = memory(pid)
            f.write(f"{t:.3f} {rss} {pss}\n")
            f.flush()
            time.sleep(max(0.0, t + 0.05 - time.monotonic()))


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(1, -(-len(values) * q // 1))
    return values[int(k) - 1]


def load(port, queries, qps, zone, serial, pid, pre, post, maximum, trigger):
    with open(queries) as f:
        qs = [line.split() for line in f if line.strip()]
    random.Random(20261203).shuffle(qs)
    wire = [question(name, qtype) for name, qtype in qs]
    soa = question(zone, "SOA")
    s = udp_socket()
    dest = ("127.0.0.1", port)
    samples = f"{queries}.memory"
    sampler = subprocess.Popen([sys.executable, __file__, "sample", str(pid), samples])
    time.sleep(0.2)
    sent_at, latency, rcode, is_soa = [], [], [], []
    pending = {}
    state = {"t_start": None, "t_end": None, "rc": None}

    def run_trigger():
        state["t_start"] = time.monotonic()
        try:
            state["rc"] = subprocess.run(trigger, stdout=subprocess.DEVNULL,
                                         timeout=maximum).returncode
        except subprocess.TimeoutExpired:
            state["rc"] = "timeout"
        state["t_end"] = time.monotonic()

    t0 = time.monotonic()
    hard_end = t0 + maximum
    visible = None
    thread = None
    k = 0

    def receive():
        nonlocal visible
        while True:
            try:
                data = s.recv(65535)
            except BlockingIOError:
                return
            now = time.monotonic()
            if len(data) < 12:
                continue
            j = pending.pop(struct.unpack(">H", data[:2])[0], None)
            if j is None:
                continue
            latency[j] = now - sent_at[j]
            rcode[j] = data[3] & 0x0F
            if is_soa[j] and visible is None and state["t_start"] is not None:
                if soa_serial(data) == serial:
                    visible = now

    while True:
        now = time.monotonic()
        if thread is None and now >= t0 + pre:
            thread = threading.Thread(target=run_trigger, daemon=True)
            thread.start()
            while state["t_start"] is None:
                time.sleep(0.0005)
        if now >= hard_end:
            break
        if state["t_end"] is not None:
            if visible is not None and now >= max(visible, state["t_end"]) + post:
                break
            # A trigger that failed: the reload will not come.
            if state["rc"] != 0 and now >= state["t_end"] + post:
                break
        next_send = t0 + k / qps
        while next_send <= now:
            soa_query = k % 50 == 0
            q = soa if soa_query else wire[k % len(wire)]
            qid = k & 0xFFFF
            pending.pop(qid, None)  # an answer 65536 queries late is lost
            sent_at.append(time.monotonic())
            latency.append(None)
            rcode.append(None)
            is_soa.append(soa_query)
            pending[qid] = k
            try:
                s.sendto(message(qid, q), dest)
            except OSError:
                pass
            k += 1
            next_send = t0 + k / qps
        if select.select([s], [], [], max(0.0, next_send - time.monotonic()))[0]:
            receive()
    drain_end = time.monotonic() + 2
    while pending and time.monotonic() < drain_end:
        if select.select([s], [], [], 0.05)[0]:
            receive()
    sampler.terminate()
    sampler.wait(timeout=10)
    if thread is not None:
        thread.join(timeout=1)

    with open(f"{queries}.latencies", "w") as f:
        for j, at in enumerate(sent_at):
            ms = "lost" if latency[j] is None else f"{latency[j] * 1000:.3f}"
            f.write(f"{at - t0:.4f} {ms} {rcode[j]}\n")
    t_start = state["t_start"] if state["t_start"] is not None else float("inf")
    t_end = state["t_end"] if state["t_end"] is not None else hard_end
    during_end = max(t_end, visible if visible is not None else hard_end)
    phases = {"warmup": [], "before": [], "during": [], "after": []}
    for j, at in enumerate(sent_at):
        if at < t0 + WARMUP:
            phase = "warmup"
        else:
            phase = "before" if at < t_start else "during" if at <= during_end else "after"
        phases[phase].append(j)
    for name, idx in phases.items():
        lat = [latency[j] * 1000 for j in idx if latency[j] is not None]
        print(f"{name}_sent {len(idx)}")
        print(f"{name}_lost {sum(1 for j in idx if latency[j] is None)}")
        print(f"{name}_errors {sum(1 for j in idx if rcode[j] not in (None, 0))}")
        for label, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
            print(f"{name}_{label} {pct(lat, q):.2f}")
    print(f"trigger_s {t_end - t_start:.3f}")
    print(f"visible_s {(visible - t_start) if visible is not None else float('nan'):.3f}")
    print(f"trigger_rc {state['rc']}")
    print(f"qps_achieved {len(sent_at) / max(1e-9, sent_at[-1] - sent_at[0]):.0f}")
    mem = []
    with open(samples) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                mem.append((float(parts[0]), int(parts[1]), int(parts[2])))
    before = [m for m in mem if m[0] < t_start] or mem[:1]
    later = [m for m in mem if m[0] >= t_start] or mem[-1:]
    if before and later:
        print(f"rss_before {before[-1][1]}")
        print(f"pss_before {before[-1][2]}")
        print(f"rss_peak {max(m[1] for m in later)}")
        print(f"pss_peak {max(m[2] for m in later)}")
        print(f"rss_end {mem[-1][1]}")
        print(f"pss_end {mem[-1][2]}")
        print(f"samples {len(mem)}")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "ready":
        ready(int(args[0]), args[1], float(args[2]), float(args[3]), int(args[4]))
    elif mode == "sample":
        sample(int(args[0]), args[1])
    elif mode == "load":
        cut = args.index("--")
        port, queries, qps, zone, serial, pid, pre, post, maximum = args[:cut]
        load(int(port), queries, float(qps), zone, int(serial), int(pid), float(pre),
             float(post), float(maximum), args[cut + 1:])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
PY

# --- measures -----------------------------------------------------------------------------------

# $D/results: "SIZE SERVER MEASURE VALUE" lines (VALUE "failed" when the run failed);
# $D/errors: one line per failure or anomaly, for the report.
: >"$D/results"
: >"$D/errors"
record() { echo "$*" >>"$D/results"; }
failed() { # size server what log
    local line
    # A file:line message (edgenode, NSD, Knot name the zone file), else an error, else the end.
    line=$(grep -m1 -E '\.zone:[0-9]+' "$4" 2>/dev/null ||
        grep -i -m1 -E 'error|panick|fatal|fail' "$4" 2>/dev/null || tail -n 1 "$4" 2>/dev/null || true)
    local size="$1 records"
    [[ $1 != 0 ]] || size="empty zone"
    say "    $2 $3 FAILED: ${line:-no output}"
    echo "$size, $2 $3: ${line:-no output}" >>"$D/errors"
}

# check_once SIZE SERVER: the server's zone checker over the zone of SIZE records.
check_once() { # size server
    local size=$1 server=$2 dir=$D/z$1 out secs kib cmd rc=0
    out=$D/check.$server.$size
    case $server in
        nsd) cmd=(nsd-checkzone "$zone" "$dir/$zone.zone") ;;
        knot) cmd=(kzonecheck -o "$zone" "$dir/$zone.zone") ;;
        edgenode) cmd=("$edgenode_bin" check --zones "$dir") ;;
    esac
    # %M: the largest max RSS of timeout and the checker it waited for; --foreground keeps the
    # checker in the script's process group (a Ctrl-C reaches it).
    /usr/bin/time -f '%e %M' -o "$out.time" timeout --foreground "$load_timeout" "${cmd[@]}" \
        >"$out" 2>&1 || rc=$?
    if ((rc == 0)); then
        read -r secs kib <"$out.time"
        record "$size" "$server" check_s "$secs"
        record "$size" "$server" check_kib "$kib"
        say "    check    $(printf '%-9s %7.2f s %8.1f MiB' "$server" "$secs" "$(mib "$kib")")"
    else
        record "$size" "$server" check_s failed
        record "$size" "$server" check_kib failed
        ((rc != 124)) || echo "error: timed out after $load_timeout s" >>"$out"
        failed "$size" "$server" check "$out"
    fi
}

# start_server SERVER ZONESDIR PORT: starts it in the background; sets started_pid, start_time.
started_pid=
start_time=
start_server() { # server zonesdir port
    local server=$1 zonesdir=$2 port=$3 zones cmd
    case $server in
        nsd)
            # shellcheck disable=SC2034 # write_nsd_conf reads servers and zone_clauses
            local servers=$nsd_servers zone_clauses
            # shellcheck disable=SC2034
            zone_clauses=$(nsd_zone_clauses "$zonesdir/$zone.zone")
            rm -f "$D/zone.list" "$D/xfrd.state"
            write_nsd_conf "$port"
            cmd=(nsd -d -c "$D/nsd.conf")
            ;;
        knot)
            # shellcheck disable=SC2034 # write_knot_conf reads zonesdir and zones
            zones=("$zone")
            rm -rf "$D/knot-run" "$D/knot-db"
            mkdir -p "$D/knot-run" "$D/knot-db"
            write_knot_conf "$port"
            cmd=(knotd -c "$D/knot.conf")
            ;;
        edgenode)
            cmd=("$edgenode_bin" serve --zones "$zonesdir" --dns-listen "127.0.0.1:$port"
                --admin-listen 127.0.0.1:0 --httpdns-listen 127.0.0.1:0
                --httpdns-tls-listen 127.0.0.1:0 --http-listen 127.0.0.1:0
                --https-listen 127.0.0.1:0)
            ;;
    esac
    start_time=$EPOCHREALTIME
    # TMPDIR: edgenode's self-signed certificate goes under $D.
    TMPDIR=$D "${cmd[@]}" >"$D/$server.out" 2>"$D/$server.log" &
    started_pid=$!
    server_pids+=("$started_pid")
}

# serve_once SIZE SERVER [reload]: starts SERVER on the zone of SIZE records (SIZE 0: the empty
# zone), measures the time to its first SOA answer and its memory; with "reload", the reload
# under load; stops it.
serve_once() { # size server [reload]
    local size=$1 server=$2 reload=${3:-} dir=$D/z$1 port pid ready secs serial rss pss hwm last answer measure rc
    for _ in 1 2 3; do
        port=$(free_port)
        start_server "$server" "$dir" "$port"
        pid=$started_pid
        rc=0
        ready=$(python3 "$client" ready "$port" "$zone" "$start_time" "$load_timeout" "$pid") || rc=$?
        ((rc != 0)) || break
        ready=
        stop_server "$pid"
        ((rc != 2)) || echo "error: no SOA answer within $load_timeout s" >>"$D/$server.log"
        # Another process took the port between free_port and the bind: try another.
        grep -qi -E 'address (already )?in use' "$D/$server.log" "$D/$server.out" 2>/dev/null || break
    done
    if [[ -z $ready ]]; then
        for measure in ready_s pss_kib rss_kib hwm_kib; do record "$size" "$server" "$measure" failed; done
        failed "$size" "$server" serve "$D/$server.log"
        cp "$D/$server.log" "$D/$server.$size.failed.log" 2>/dev/null || true
        return 0
    fi
    read -r secs serial <<<"$ready"
    sleep 0.5
    read -r rss pss < <(memory_kib "$pid")
    hwm=$(peak_rss_kib "$pid")
    last=$(cat "$dir.last")
    answer=
    [[ -z $last ]] ||
        answer=$(dig @127.0.0.1 -p "$port" +norec +time=2 +tries=2 +short "$last.$zone" A 2>/dev/null || true)
    if [[ -n $last && -z $answer ]]; then
        say "    $server does not answer $last.$zone A (the zone's last name) after loading"
        echo "$size records, $server serve: no answer for $last.$zone A (the last name of the zone)" >>"$D/errors"
    fi
    record "$size" "$server" ready_s "$secs"
    record "$size" "$server" pss_kib "$pss"
    record "$size" "$server" rss_kib "$rss"
    record "$size" "$server" hwm_kib "$hwm"
    say "    serve    $(printf '%-9s %7.2f s %8.1f MiB PSS %8.1f MiB RSS %8.1f MiB peak (serial %s)' \
        "$server" "$secs" "$(mib "$pss")" "$(mib "$rss")" "$(mib "$hwm")" "$serial")"
    [[ -z $reload ]] || reload_once "$size" "$server" "$pid" "$port"
    stop_server "$pid"
}

# reload_once SIZE SERVER PID PORT: the reload under load (see the header).
reload_once() { # size server pid port
    local size=$1 server=$2 pid=$3 port=$4 dir=$D/z$1 serial trigger admin out
    serial=$(awk '$3 == "SOA" {print $6; exit}' "$dir/$zone.zone")
    serial=$((serial + 1))
    sed -i "3s/^@ IN SOA ns1 hostmaster [0-9]* /@ IN SOA ns1 hostmaster $serial /" "$dir/$zone.zone"
    case $server in
        nsd) trigger=(kill -HUP "$pid") ;;
        knot) trigger=(knotc -c "$D/knot.conf" -t "$load_timeout" zone-reload "$zone") ;;
        edgenode)
            admin=$(edgenode_name=edgenode listening_port admin 2>>"$D/edgenode.log") ||
                { failed "$size" "$server" reload "$D/edgenode.log"; return 0; }
            trigger=(curl -sf -X POST --max-time "$load_timeout" "http://127.0.0.1:$admin/admin/reload")
            ;;
    esac
    out=$D/reload.$server.$size
    say "    reload   $server under $reload_qps queries/s: ${trigger[*]}"
    if ! python3 "$client" load "$port" "$dir.queries" "$reload_qps" "$zone" "$serial" "$pid" 3 2 \
        "$load_timeout" -- "${trigger[@]}" >"$out" 2>"$out.err"; then
        failed "$size" "$server" reload "$out.err"
        return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "error: $server exited during the reload" >>"$out.err"
        failed "$size" "$server" reload "$out.err"
    fi
    mv "$dir.queries.latencies" "$out.latencies"
    mv "$dir.queries.memory" "$out.memory"
    awk -v s="$size" -v n="$server" '{print s, n, "reload_" $1, $2}' "$out" >>"$D/results"
    awk '{v[$1] = $2} END {printf "    reload   %s: new serial after %s s (trigger %s s, rc %s); p99 before %s ms, during %s ms, max %s ms; lost %d, errors %d; PSS %.1f -> peak %.1f MiB\n",
        n, v["visible_s"], v["trigger_s"], v["trigger_rc"], v["before_p99"], v["during_p99"], v["during_max"],
        v["warmup_lost"] + v["before_lost"] + v["during_lost"] + v["after_lost"],
        v["warmup_errors"] + v["before_errors"] + v["during_errors"] + v["after_errors"],
        v["pss_before"] / 1024, v["pss_peak"] / 1024}' n="$server" "$out" >&2
}

# --- the runs -----------------------------------------------------------------------------------

say "generating the zones: ${sizes[*]} records"
gen_zone 5 "$D/z0"
for size in "${sizes[@]}"; do
    gen_zone "$size" "$D/z$size"
    say "    $size records: $(wc -l <"$D/z$size/$zone.zone") lines, $(du -m "$D/z$size/$zone.zone" | cut -f1) MB, $(wc -l <"$D/z$size.queries") queries"
done

say "empty zone (the servers' memory without a zone)"
for server in "${all_servers[@]}"; do serve_once 0 "$server"; done

for size in "${sizes[@]}"; do
    for ((round = 1; round <= rounds; round++)); do
        say "$size records, round $round/$rounds"
        for server in "${all_servers[@]}"; do check_once "$size" "$server"; done
        for server in "${all_servers[@]}"; do
            if ((round == rounds)) && [[ $size == "$reload_size" ]]; then
                serve_once "$size" "$server" reload
            else
                serve_once "$size" "$server"
            fi
        done
    done
done

# --- the report ---------------------------------------------------------------------------------

# The median of SIZE SERVER MEASURE over the rounds ("failed" when every run failed, "n/a"
# without a run), in the unit given: s (2 decimals), mib (from KiB, 1 decimal), bpr (bytes per
# record above the empty zone, from PSS in KiB, 0 decimals).
value() { # size server measure unit
    local v
    v=$(awk -v s="$1" -v n="$2" -v m="$3" '$1 == s && $2 == n && $3 == m {print $4}' "$D/results")
    if [[ -z $v ]]; then echo n/a; return; fi
    v=$(grep -v failed <<<"$v" || true)
    if [[ -z $v ]]; then echo failed; return; fi
    v=$(median <<<"$v")
    case $4 in
        s) fixed "$v" 2 ;;
        mib) mib "$v" ;;
        bpr)
            local base
            base=$(awk -v n="$2" '$1 == 0 && $2 == n && $3 == "pss_kib" {print $4}' "$D/results" | grep -v failed | median)
            awk -v v="$v" -v b="${base:-0}" -v r="$1" 'BEGIN {printf "%.0f", (v - b) * 1024 / r}'
            ;;
    esac
}

ratio_of() { # a b
    if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]]; then ratio "$1" "$2"; else echo -; fi
}

measure_row() { # size label measure unit
    local e n k
    e=$(value "$1" edgenode "$3" "$4")
    n=$(value "$1" nsd "$3" "$4")
    k=$(value "$1" knot "$3" "$4")
    table_row "$1" "$2" "$e" "$n" "$k" "**$(ratio_of "$e" "$n")**" "**$(ratio_of "$e" "$k")**"
}

reload_field() { # size server key
    local v
    v=$(awk -v s="$1" -v n="$2" -v m="reload_$3" '$1 == s && $2 == n && $3 == m {print $4}' "$D/results")
    echo "${v:-n/a}"
}

reload_row() { # size server label
    local size=$1 server=$2 sent lost errors k
    local -A v=()
    for k in visible_s trigger_s trigger_rc before_p99 during_p99 during_max pss_before pss_peak pss_end \
        {warmup,before,during,after}_{sent,lost,errors}; do
        v[$k]=$(reload_field "$size" "$server" "$k")
    done
    if [[ ${v[visible_s]} == n/a && ${v[trigger_s]} == n/a ]]; then
        table_row "$size" "$3" failed - - - - - - -
        return
    fi
    sent=$((v[warmup_sent] + v[before_sent] + v[during_sent] + v[after_sent]))
    lost=$((v[warmup_lost] + v[before_lost] + v[during_lost] + v[after_lost]))
    errors=$((v[warmup_errors] + v[before_errors] + v[during_errors] + v[after_errors]))
    [[ ${v[visible_s]} != nan ]] || v[visible_s]=never
    [[ ${v[trigger_rc]} == 0 ]] || v[trigger_s]+=" (exit ${v[trigger_rc]})"
    table_row "$size" "$3" "${v[visible_s]}" "${v[trigger_s]}" "${v[before_p99]} / ${v[during_p99]}" \
        "${v[during_max]}" "$lost / $sent (${v[during_lost]} during)" "$errors" \
        "$(mib "${v[pss_before]}") / $(mib "${v[pss_peak]}") / $(mib "${v[pss_end]}")" \
        "$(ratio "${v[pss_peak]}" "${v[pss_before]}")"
}

nsd_version=$(nsd -v 2>&1 | awk 'NR == 1 {print $3}')
knot_version=$(knotd -V 2>&1 | awk '{print $NF; exit}')
header="| records | measure | edgenode | NSD $nsd_version | Knot $knot_version | edgenode / NSD | edgenode / Knot |
|---|---|---:|---:|---:|---:|---:|"

cat <<EOF

### Zone loading: edgenode vs NSD $nsd_version and Knot DNS $knot_version

$(date -u '+%d %b %Y %H:%M UTC'); $(nproc) cores; edgenode: $edgenode_from built $edgenode_built; medians of $rounds round(s), the servers in turn; NSD server-count $nsd_servers.
Check: \`edgenode check --zones DIR\`, \`nsd-checkzone\`, \`kzonecheck\`. Serve: from the start to the first SOA answer; memory 0.5 s later, all the server's processes.

$header
EOF
for size in "${sizes[@]}"; do
    measure_row "$size" "check: wall s" check_s s
    measure_row "$size" "check: max RSS MiB" check_kib mib
    measure_row "$size" "serve: start to first answer, s" ready_s s
    measure_row "$size" "serve: PSS MiB" pss_kib mib
    measure_row "$size" "serve: RSS MiB (sum)" rss_kib mib
    measure_row "$size" "serve: peak RSS MiB (VmHWM)" hwm_kib mib
    measure_row "$size" "serve: PSS bytes per record" pss_kib bpr
done

cat <<EOF

Empty zone (SOA, NS): PSS edgenode $(value 0 edgenode pss_kib mib), NSD $(value 0 nsd pss_kib mib), Knot $(value 0 knot pss_kib mib) MiB (subtracted for bytes per record); start to first answer edgenode $(value 0 edgenode ready_s s), NSD $(value 0 nsd ready_s s), Knot $(value 0 knot ready_s s) s.

### Reload under load ($reload_size records, $reload_qps queries/s over UDP)

Edgenode: POST /admin/reload; NSD: SIGHUP; Knot: knotc zone-reload. Latency and loss from a fixed-rate client (lost: no answer 2 s after the end); memory is PSS of the server's processes, sampled every 50 ms.

| records | server | new serial answered after s | trigger returned after s | p99 ms before / during | max ms during | lost / sent | errors | PSS MiB before / peak / after | peak / before |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
$(reload_row "$reload_size" edgenode edgenode)
$(reload_row "$reload_size" nsd "NSD $nsd_version")
$(reload_row "$reload_size" knot "Knot $knot_version")
EOF

if [[ -s $D/errors ]]; then
    printf '\nFailures and anomalies:\n\n'
    sed 's/^/- /' "$D/errors"
fi
# shellcheck disable=SC2154 # set by lib.sh's bench_setup
printf '\nRun time: %d s; load average before %s, after %s (other work on the machine moves the\nlatencies most); %s.\n' \
    "$((SECONDS - started))" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$glibc_copy_note"
