#!/usr/bin/env bash
# Runs every issue-11 measurement against one flowgated binary and writes the
# result lines to a file (see bench/security/README.md).
#
#   bench/security/run_all.sh --flowgated PATH [--out FILE] [--only 1,2,...]
#
# PYTHON (default: .venv/bin/python at the repository root if present, else
# python3) must have botocore. Each script bounds its own run time and stops
# what it started by PID; this driver also bounds each script with `timeout`.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
flowgated="${FLOWGATED:-}" out="" only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --flowgated) flowgated="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        *) echo "usage: $0 --flowgated PATH [--out FILE] [--only 1,2,...]" >&2; exit 2 ;;
    esac
done
[ -n "$flowgated" ] && [ -x "$flowgated" ] || { echo "run_all: --flowgated PATH (an executable) is required" >&2; exit 2; }
flowgated=$(cd "$(dirname "$flowgated")" && pwd)/$(basename "$flowgated")
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
out="${out:-$repo/bench/results/security-$(date -u +%Y%m%dT%H%M%SZ).txt}"
mkdir -p "$(dirname "$out")"

# item | script and its arguments | driver timeout (s), above the script's own --time-limit
scripts=(
    "1|sigv4_replay.py|90"
    "2|dribble.py|150"
    "3|emfile.py|120"
    "4|keepalive_403.py|90"
    "5|metrics_poison.py|150"
    "6|alias_bomb.py|430"
    "7|empty_config.py|90"
    "8|pipelining.py|630"
    "8|pipelining.py --half-close|630"
    "9|patch_method.py|90"
    "10|kill9_temporaries.py|330"
)
{
    echo "# bench/security/run_all.sh  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# flowgated: $flowgated ($(sha256sum "$flowgated" | cut -c1-16))"
    echo "# scripts: bench/security at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) CPUs; $(uname -r)"
} | tee "$out"
status=0
for entry in "${scripts[@]}"; do
    IFS='|' read -r item command limit <<<"$entry"
    read -r -a argv <<<"$command"
    script=${argv[0]}
    if [ -n "$only" ] && [[ ",$only," != *",$item,"* ]]; then continue; fi
    start=$(date +%s)
    errors="$out.${script%.py}.stderr"
    timeout -k 10 "$limit" "$PYTHON" "$here/$script" "${argv[@]:1}" --flowgated "$flowgated" 2>>"$errors" | tee -a "$out"
    rc=${PIPESTATUS[0]}
    echo "#   ($command: exit $rc, $(( $(date +%s) - start )) s)" | tee -a "$out"
    [ "$rc" -eq 0 ] || status=1
    [ -s "$errors" ] || rm -f "$errors"
done
echo "# written to $out" >&2
exit "$status"
