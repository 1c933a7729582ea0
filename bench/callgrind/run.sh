#!/usr/bin/env bash
# Instruction counts of the proxy's forwarding path under valgrind's callgrind:
# Ir per forwarded MiB (TCP) and per forwarded 64-byte UDP datagram, minus an
# idle baseline, plus the top functions and the calls to retain/release/malloc.
#
#   TARGET=flowgated|haproxy|haproxy-splice TCP_MIB=64 TCP_CONNECTIONS=500 UDP_DATAGRAMS=20000 \
#   PORT_BASE=25000 UPDATE_BASELINE=0 FLOWGATED=path/to/flowgated bench/callgrind/run.sh
#
# Without FLOWGATED it builds flowgated in release mode (the same build as
# bench/run.sh; its symbols name the functions). UPDATE_BASELINE=1 rewrites
# bench/callgrind/baseline.txt (or baseline-<target>.txt).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
log() { echo "callgrind: $*" >&2; }
command -v valgrind >/dev/null || timeout 600 apt-get install -y valgrind

WORKDIR_PREFIX=flowgate-callgrind
# shellcheck source=/dev/null
source "$here/../lib/workdir.sh"

export TARGET="${TARGET:-flowgated}" FLOWGATED="${FLOWGATED:-}" FLOWGATED_UNAVAILABLE=""
if [ "$TARGET" = flowgated ] && [ -z "$FLOWGATED" ]; then
    log "building flowgated (swift build -c release --product flowgated)"
    if timeout 3600 swift build -c release --product flowgated >"$workdir/build.log" 2>&1; then
        FLOWGATED="$(swift build -c release --show-bin-path)/flowgated"
    else
        log "release build failed (log: $workdir/build.log)"; exit 1
    fi
fi
if [ "$TARGET" = flowgated ]; then
    # Valgrind 3.19 (bookworm) cannot read the DWARF 5 that Swift 6 emits and
    # gives up; a copy without debug sections keeps the symbol table, which is
    # all callgrind needs to name functions.
    mkdir -p "$workdir/bin" && objcopy --strip-debug "$FLOWGATED" "$workdir/bin/flowgated"
    FLOWGATED="$workdir/bin/flowgated"
fi
export CALLGRIND_WORKDIR="$workdir" CALLGRIND_PID_FILE="$pid_file"
python3 "$here/measure.py" &
driver_pid=$!
wait "$driver_pid"
