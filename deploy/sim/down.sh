#!/usr/bin/env bash
# Stops everything deploy/sim/up.sh started, by the PIDs it recorded (never by name), and
# removes its state directory.
#
#   deploy/sim/down.sh
#
# SIGTERM first (nodes drain and exit), SIGKILL for whatever is still running after 5 s.
set -euo pipefail

# shellcheck source=deploy/sim/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ! -e "$SIM_STATE" ]]; then
    echo "down.sh: nothing to stop ($SIM_STATE does not exist)"
    exit 0
fi
if [[ ! -f "$SIM_STATE/.edgenode-sim" ]]; then
    echo "down.sh: $SIM_STATE was not made by up.sh; leaving it alone" >&2
    exit 1
fi

# PID file -> the command-line fragment that proves the process is the one we started.
declare -A started=()
if [[ -f "$SIM_STATE/origin/pid" ]]; then
    started["$SIM_STATE/origin/pid"]="$SIM_DIR/origin.py"
fi
for pidfile in "$SIM_STATE"/node*/pid; do
    [[ -f "$pidfile" ]] || continue
    started["$pidfile"]="$(dirname "$pidfile")/edgenode.toml"
done

running=()
for pidfile in "${!started[@]}"; do
    pid=$(<"$pidfile")
    if is_ours "$pid" "${started[$pidfile]}"; then
        kill -TERM "$pid" 2>/dev/null || true
        running+=("$pid:${started[$pidfile]}")
    fi
done
deadline=$((SECONDS + 5))
for entry in "${running[@]}"; do
    pid=${entry%%:*}
    while is_ours "$pid" "${entry#*:}" && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if is_ours "$pid" "${entry#*:}"; then
        echo "down.sh: $pid still running after 5 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
done
rm -rf "$SIM_STATE"
echo "down.sh: stopped ${#running[@]} process(es), removed $SIM_STATE"
