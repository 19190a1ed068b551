#!/usr/bin/env bash
# Starts a simulated edgenode cluster on this machine: an origin and N nodes (default 3, at most
# 9) on 127.0.0.21.., each in its own region, each listing the others as peers.
#
#   deploy/sim/up.sh [N]
#
# EDGENODE_BIN=path/to/edgenode uses that binary; otherwise `cargo build --release` builds one.
# State (PIDs, configs, zones, logs) goes to deploy/sim/run/ (SIM_STATE overrides); ports are
# in lib.sh (SIM_DNS_PORT, SIM_HTTP_PORT, SIM_ADMIN_PORT, ...). Returns once every node is ready
# and sees all its peers up. deploy/sim/down.sh stops everything again.
set -euo pipefail

# shellcheck source=deploy/sim/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

count=${1:-3}
if ! [[ "$count" =~ ^[0-9]+$ ]] || ((count < 1 || count > SIM_MAX_NODES)); then
    echo "usage: $0 [N]   (1 to $SIM_MAX_NODES nodes)" >&2
    exit 2
fi
for tool in curl jq python3; do
    command -v "$tool" >/dev/null || { echo "up.sh: $tool is needed" >&2; exit 1; }
done
if [[ -e "$SIM_STATE" ]]; then
    echo "up.sh: $SIM_STATE exists: a simulation is up (or left over); run deploy/sim/down.sh first" >&2
    exit 1
fi

if [[ -n "${EDGENODE_BIN:-}" ]]; then
    bin=$(realpath "$EDGENODE_BIN")
else
    echo "building edgenode (release; EDGENODE_BIN=... skips this)"
    (cd "$REPO_ROOT" && cargo build --release --locked --quiet)
    bin=$(realpath "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/edgenode")
fi
[[ -x "$bin" ]] || { echo "up.sh: $bin is not an executable" >&2; exit 1; }

# From here on a failure stops whatever was started.
ready=0
cleanup() {
    if ((ready == 0)); then
        echo "up.sh: failed; stopping what was started" >&2
        "$SIM_DIR/down.sh" >&2 || true
    fi
}
trap cleanup EXIT

mkdir -p "$SIM_STATE"
SIM_STATE=$(cd "$SIM_STATE" && pwd)
# down.sh removes only a directory carrying this marker.
echo "edgenode simulation state, made by deploy/sim/up.sh; removed by down.sh" >"$SIM_STATE/.edgenode-sim"
cat >"$SIM_STATE/sim.env" <<ENV
SIM_NODES=$count
SIM_BIN=$bin
SIM_DNS_PORT=$SIM_DNS_PORT
SIM_HTTP_PORT=$SIM_HTTP_PORT
SIM_HTTPS_PORT=$SIM_HTTPS_PORT
SIM_HTTPDNS_PORT=$SIM_HTTPDNS_PORT
SIM_ADMIN_PORT=$SIM_ADMIN_PORT
SIM_ORIGIN_ADDR=$SIM_ORIGIN_ADDR
SIM_ORIGIN_PORT=$SIM_ORIGIN_PORT
SIM_HEARTBEAT_MS=$SIM_HEARTBEAT_MS
SIM_DOWN_AFTER=$SIM_DOWN_AFTER
ENV

# The secret every request between the nodes is signed with: one per simulation, private to
# its state directory.
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$SIM_STATE/cluster.secret")

# The origin.
mkdir -p "$SIM_STATE/origin"
python3 -u "$SIM_DIR/origin.py" "$SIM_ORIGIN_ADDR" "$SIM_ORIGIN_PORT" 300 \
    </dev/null >"$SIM_STATE/origin/stdout.log" 2>&1 &
echo "$!" >"$SIM_STATE/origin/pid"
origin_url="http://$SIM_ORIGIN_ADDR:$SIM_ORIGIN_PORT"
if ! wait_for 10 curl -sf --max-time 1 -o /dev/null "$origin_url/_origin/counts"; then
    echo "up.sh: the origin did not start:" >&2
    cat "$SIM_STATE/origin/stdout.log" >&2
    exit 1
fi

# One config per node: everything on its own address, the others as peers.
write_config() {
    local n=$1 ip region country continent
    ip=$(node_ip "$n")
    region=$(node_region "$n")
    country=${region% *}
    continent=${region#* }
    cat <<TOML
# node$n of the simulation (deploy/sim/up.sh): $country/$continent on $ip.
[dns]
listen = ["$ip:$SIM_DNS_PORT"]
zones = "zones"

[httpdns]
listen = ["$ip:$SIM_HTTPDNS_PORT"]
tls_listen = []

[proxy]
listen = ["$ip:$SIM_HTTP_PORT"]
tls_listen = ["$ip:$SIM_HTTPS_PORT"]
origin = "$origin_url"

[cache]
memory = "64MiB"

# The loopback ranges stand for regions, as in the embedded default configuration.
[[geoip.overrides]]
cidr = "127.0.1.0/24"
name = "loopback-asia"
country = "CN"
continent = "AS"

[[geoip.overrides]]
cidr = "127.0.2.0/24"
name = "loopback-north-america"
country = "US"
continent = "NA"

[[geoip.overrides]]
cidr = "127.0.3.0/24"
name = "loopback-europe"
country = "DE"
continent = "EU"

[admin]
listen = "$ip:$SIM_ADMIN_PORT"

[cluster]
id = "node$n"
secret_file = "$SIM_STATE/cluster.secret"
country = "$country"
continent = "$continent"
addresses = ["$ip"]
heartbeat_ms = $SIM_HEARTBEAT_MS
heartbeat_timeout_ms = $((SIM_HEARTBEAT_MS * 4 / 5))
down_after = $SIM_DOWN_AFTER
TOML
    local peer
    for ((peer = 1; peer <= count; peer++)); do
        ((peer == n)) && continue
        region=$(node_region "$peer")
        cat <<TOML

[[cluster.peers]]
id = "node$peer"
country = "${region% *}"
continent = "${region#* }"
addresses = ["$(node_ip "$peer")"]
proxy = "$(node_ip "$peer"):$SIM_HTTP_PORT"
admin = "$(node_ip "$peer"):$SIM_ADMIN_PORT"
TOML
    done
}

# The repository's zones, with cdn.example.test steered: answered with the two healthy nodes
# nearest the client (the repository's zones/ has this policy; it is added when missing).
# The zone file's own cdn records answer where the policy is not applied (another server
# loading the same files); for a binary without steering, pool entries are taken out.
steering_policy='
# Added by deploy/sim/up.sh: the two healthy cluster nodes nearest the client.
[[rrset]]
name = "cdn"
type = "A"
pool = "cluster"
count = 2
ttl = 20'
write_zones() {
    local dir=$1 with_policy=$2 n
    rm -rf "$dir"
    cp -R "$REPO_ROOT/zones" "$dir"
    if ! grep -Eq '^cdn[[:space:]]' "$dir/example.test.zone"; then
        {
            echo
            echo "; Added by deploy/sim/up.sh: every node of the simulation."
            for ((n = 1; n <= count; n++)); do
                echo "cdn     20  IN A    $(node_ip "$n")"
            done
        } >>"$dir/example.test.zone"
    fi
    if ((with_policy)); then
        if ! grep -q '^name = "cdn"' "$dir/example.test.geo.toml"; then
            echo "$steering_policy" >>"$dir/example.test.geo.toml"
        fi
    else
        # Every [[rrset]] table with a pool key goes.
        awk '/^\[\[rrset\]\]/ { flush(); } { block = block $0 "\n" } /^pool *=/ { pool = 1 }
             function flush() { if (!pool) printf "%s", block; block = ""; pool = 0 }
             END { flush() }' "$dir/example.test.geo.toml" >"$dir/geo.tmp"
        mv "$dir/geo.tmp" "$dir/example.test.geo.toml"
    fi
}

steering=1
for ((n = 1; n <= count; n++)); do
    dir=$(node_dir "$n")
    mkdir -p "$dir/tmp"
    write_config "$n" >"$dir/edgenode.toml"
    write_zones "$dir/zones" "$steering"
    if ((n == 1)) && ! "$bin" check --config "$dir/edgenode.toml" >"$dir/check.log" 2>&1; then
        if grep -Eq 'unknown field .(pool|count).' "$dir/check.log"; then
            echo "note: this edgenode has no DNS steering (pool policies are unknown to it):"
            echo "      $SIM_NAME answers with the zone file's records"
            steering=0
            write_zones "$dir/zones" 0
        fi
        "$bin" check --config "$dir/edgenode.toml" >"$dir/check.log" 2>&1 || {
            echo "up.sh: node$n's configuration does not pass edgenode check:" >&2
            cat "$dir/check.log" >&2
            exit 1
        }
    fi
done
echo "steering=$steering" >"$SIM_STATE/features"

for ((n = 1; n <= count; n++)); do
    dir=$(node_dir "$n")
    # TMPDIR: the self-signed certificate goes to the state directory, removed with it.
    TMPDIR="$dir/tmp" "$bin" serve --config "$dir/edgenode.toml" \
        </dev/null >"$dir/stdout.log" 2>"$dir/stderr.log" &
    echo "$!" >"$dir/pid"
done

node_ready() {
    local n=$1 dir pid
    dir=$(node_dir "$n")
    pid=$(<"$dir/pid")
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "up.sh: node$n exited:" >&2
        tail -n 20 "$dir/stderr.log" >&2
        exit 1
    fi
    grep -qx ready "$dir/stdout.log"
}
for ((n = 1; n <= count; n++)); do
    wait_for 30 node_ready "$n" || { echo "up.sh: node$n not ready within 30 s" >&2; exit 1; }
done
all_peers_up() { [[ "$(peers_up "$1")" == "$((count - 1))" ]]; }
for ((n = 1; n <= count; n++)); do
    wait_for 15 all_peers_up "$n" || {
        echo "up.sh: node$n does not see its $((count - 1)) peers up within 15 s" >&2
        exit 1
    }
done
ready=1

echo "origin  http://$SIM_ORIGIN_ADDR:$SIM_ORIGIN_PORT  (GET /_origin/counts: requests per path)"
for ((n = 1; n <= count; n++)); do
    dir=$(node_dir "$n")
    region=$(node_region "$n")
    listening=$(sed -n 's/^listening //p' "$dir/stdout.log" | tr '\n' ' ')
    printf 'node%s   %s  pid %s  %s\n' "$n" "${region/ //}" "$(<"$dir/pid")" "${listening% }"
done
ip=$(node_ip 1)
cat <<EOT
$count node(s) up, each seeing its peers; state, configs and logs in $SIM_STATE
try:  dig @$ip -p $SIM_DNS_PORT -b 127.0.1.1 $SIM_NAME
      curl -si --resolve $SIM_NAME:$SIM_HTTP_PORT:$ip http://$SIM_NAME:$SIM_HTTP_PORT/hello
      curl -s $(node_admin 1)/admin/cluster | jq
stop: deploy/sim/down.sh
EOT
