# Sourced by bench/run.sh and bench/callgrind/run.sh: a temporary work
# directory, and a cleanup trap that ends the driver process ($driver_pid)
# and every process group recorded in $pid_file (each process the Python
# driver starts leads its own group), by PID only, on any exit.
# Needs: a `log` function; sets: workdir, pid_file, driver_pid.
workdir=$(mktemp -d "/tmp/${WORKDIR_PREFIX:-flowgate-bench}.XXXXXX")
pid_file="$workdir/pids"
driver_pid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
        kill -TERM "$driver_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$driver_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$driver_pid" 2>/dev/null || true
    fi
    if [ -s "$pid_file" ]; then
        while read -r pid; do [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true; done <"$pid_file"
        sleep 1
        while read -r pid; do [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true; done <"$pid_file"
    fi
    if [ "$status" -eq 0 ] && [ -z "${KEEP_WORKDIR:-}" ]; then rm -rf "$workdir"; else log "files kept in $workdir"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
