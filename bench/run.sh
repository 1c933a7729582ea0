#!/usr/bin/env bash
# Flowgate benchmark: one command (`make bench` calls it).
#
#   ROUNDS=3 DURATION=5 PIN=0 ONLY=tcp1,tcp4,udp,udpw,cps,rps,hka,hcps,lat,ulat,mem \
#   PROXIES=direct,flowgated,haproxy,haproxy-splice,nginx bench/run.sh
#
# Installs the load tools and peers it needs (Debian packages, only when
# missing), builds flowgated in release mode unless FLOWGATED names a binary,
# then runs bench/lib/bench.py, which prints a Markdown table and writes it to
# bench/results/<timestamp>.md. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

log() { echo "bench: $*" >&2; }

# --- tools -------------------------------------------------------------------
missing=()
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v nginx >/dev/null || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
command -v wrk >/dev/null || missing+=(wrk)
command -v sockperf >/dev/null || missing+=(sockperf)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get install -y "${missing[@]}" ||
        { timeout 600 apt-get update && timeout 600 apt-get install -y "${missing[@]}"; }
fi

# --- work directory and cleanup ----------------------------------------------
WORKDIR_PREFIX=flowgate-bench
# shellcheck source=/dev/null
source "$here/lib/workdir.sh"

# --- flowgated ---------------------------------------------------------------
proxies=${PROXIES:-direct,flowgated,haproxy,haproxy-splice,nginx}
export FLOWGATED="${FLOWGATED:-}"
export FLOWGATED_UNAVAILABLE=""
if [[ ",$proxies," == *",flowgated,"* ]] && [ -z "$FLOWGATED" ]; then
    log "building flowgated (swift build -c release --product flowgated)"
    if timeout 3600 swift build -c release --product flowgated >"$workdir/build.log" 2>&1; then
        FLOWGATED="$(swift build -c release --show-bin-path)/flowgated"
    else
        FLOWGATED_UNAVAILABLE="release build failed: $(grep -m1 -E 'error:' "$workdir/build.log" || tail -n1 "$workdir/build.log")"
        log "$FLOWGATED_UNAVAILABLE (log: $workdir/build.log)"
    fi
fi
if [ -n "$FLOWGATED" ] && [ ! -x "$FLOWGATED" ]; then
    FLOWGATED_UNAVAILABLE="no executable at FLOWGATED=$FLOWGATED"
fi

# --- run ---------------------------------------------------------------------
export BENCH_WORKDIR="$workdir" BENCH_PID_FILE="$pid_file"
python3 "$here/lib/bench.py" &
driver_pid=$!
wait "$driver_pid"
