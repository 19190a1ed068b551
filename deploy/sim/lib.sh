# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
# Sourced by up.sh, demo.sh and down.sh: where the simulation keeps its state and where its
# processes listen. Every address is on 127.0.0.0/8: node N on 127.0.0.(20+N), the origin on
# 127.0.0.20. Distinct addresses let every node use the same fixed ports; override them with the
# SIM_* variables below (up.sh records the values it used in $SIM_STATE/sim.env, which demo.sh
# and down.sh read back).

SIM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SIM_DIR/../.." && pwd)
SIM_STATE=${SIM_STATE:-$SIM_DIR/run}
if [[ -f "$SIM_STATE/sim.env" ]]; then
    # shellcheck source=/dev/null
    source "$SIM_STATE/sim.env"
fi
SIM_DNS_PORT=${SIM_DNS_PORT:-5353}
SIM_HTTP_PORT=${SIM_HTTP_PORT:-8080}
SIM_HTTPS_PORT=${SIM_HTTPS_PORT:-8443}
SIM_HTTPDNS_PORT=${SIM_HTTPDNS_PORT:-8053}
SIM_ADMIN_PORT=${SIM_ADMIN_PORT:-9153}
SIM_ORIGIN_ADDR=${SIM_ORIGIN_ADDR:-127.0.0.20}
SIM_ORIGIN_PORT=${SIM_ORIGIN_PORT:-8000}
# Short heartbeats so that a dead node leaves the answers within a second.
SIM_HEARTBEAT_MS=${SIM_HEARTBEAT_MS:-250}
SIM_DOWN_AFTER=${SIM_DOWN_AFTER:-2}
# The name DNS steering answers for, and the Host of every proxied request.
SIM_NAME=cdn.example.test

# Region of node N (1-based), "COUNTRY CONTINENT": the first three match the loopback
# GeoIP overrides (127.0.1.0/24 CN/AS, 127.0.2.0/24 US/NA, 127.0.3.0/24 DE/EU).
SIM_REGIONS=("CN AS" "US NA" "DE EU" "JP AS" "BR SA" "AU OC" "ZA AF" "CA NA" "FR EU")
SIM_MAX_NODES=${#SIM_REGIONS[@]}

node_ip() { echo "127.0.0.$((20 + $1))"; }
node_dir() { echo "$SIM_STATE/node$1"; }
node_region() { echo "${SIM_REGIONS[$((($1 - 1) % SIM_MAX_NODES))]}"; }
node_admin() { echo "http://$(node_ip "$1"):$SIM_ADMIN_PORT"; }

# Whether PID is alive and its command line contains FRAGMENT (a PID file never makes us signal
# a process that merely reused the number).
is_ours() {
    local pid=$1 fragment=$2
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # The process may exit between any two steps: then the read fails quietly.
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$fragment"
}

# Waits until COMMAND... succeeds, retrying every 0.1 s for at most SECONDS; returns 1 at the
# deadline.
wait_for() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# How many peers the node N's admin API shows up (empty when it does not answer).
peers_up() {
    curl -sf --max-time 1 "$(node_admin "$1")/admin/cluster" |
        jq '[.peers[] | select(.up)] | length' 2>/dev/null
}
