#!/usr/bin/env bash
# Idempotent setup for building, running and testing Flowgate on Debian (bookworm).
#
#   .ci/setup.sh            system packages for build + tests, and the Python venv
#   .ci/setup.sh --no-venv  system packages for building only (make run / install)
#   .ci/setup.sh --bench    also the comparison/benchmark tools (make bench)
#
# Each step is skipped when already satisfied: apt-get runs only when a package
# is missing (and `apt-get update` only then), and the venv is rebuilt only
# when Tests/IntegrationTests/requirements.txt or the interpreter changes
# (stamp file .venv/.flowgate-requirements).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want_venv=1
want_tests=1
want_bench=0
for arg in "$@"; do
    case "$arg" in
        --no-venv) want_venv=0; want_tests=0 ;;
        --bench) want_bench=1 ;;
        *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

log() { printf 'setup: %s\n' "$*" >&2; }

# --- system packages --------------------------------------------------------
# libevent-dev + pkg-config: the CLibevent system library target (Package.swift);
# git + ca-certificates: SwiftPM fetches the package dependencies with git.
build_pkgs=(make pkg-config libevent-dev git ca-certificates)
# iperf3: throughput smoke tests; systemd: systemd-analyze verify of the unit;
# python3-venv: the test venv on Debian's python3; prometheus: promtool, which
# checks the /metrics scrape format (installed without recommends); strace:
# test_tcp_syscalls.py counts the proxy's system calls per connection;
# etcd-server (etcd 3.4) + etcd-client (etcdctl): the fleet tests start a real
# 3-member etcd cluster on loopback (Tests/IntegrationTests/harness/etcd.py).
# On a host running systemd the package also enables etcd.service on
# 127.0.0.1:2379; the tests never use that one (their ports are free ones).
test_pkgs=(iperf3 python3-venv systemd prometheus strace etcd-server etcd-client)
bench_pkgs=(haproxy nginx libnginx-mod-stream wrk sockperf)

pkgs=("${build_pkgs[@]}")
(( want_tests )) && pkgs+=("${test_pkgs[@]}")
(( want_bench )) && pkgs+=("${bench_pkgs[@]}")

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${pkgs[@]}"; do
    is_installed "$p" || missing+=("$p")
done

if (( ${#missing[@]} )); then
    if ! command -v apt-get >/dev/null; then
        log "missing packages ${missing[*]} and no apt-get: install them by hand"
        exit 1
    fi
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null; then sudo=(sudo); else
            log "missing packages ${missing[*]}: run as root (or install sudo)"; exit 1
        fi
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
    "${sudo[@]}" apt-get -q -o DPkg::Lock::Timeout=300 update
    "${sudo[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}"
fi

# --- Swift toolchain (not a Debian package: check, do not install) ----------
# The Makefile appends /opt/swift/usr/bin to PATH, so either place will do.
if ! command -v swift >/dev/null && ! [[ -x /opt/swift/usr/bin/swift ]]; then
    log "no Swift toolchain found (need Swift 6 on PATH or in /opt/swift/usr/bin)"
    exit 1
fi

(( want_venv )) || exit 0

# --- Python virtualenv for the integration tests ------------------------------
requirements=Tests/IntegrationTests/requirements.txt
venv=.venv
stamp=$venv/.flowgate-requirements

# A python3 that can make a venv with pip: the one on PATH (e.g. pyenv's),
# else Debian's (python3-venv, installed above).
python=""
for candidate in "${PYTHON:-}" python3 /usr/bin/python3; do
    [[ -n "$candidate" ]] || continue
    command -v "$candidate" >/dev/null || continue
    if "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
        python=$(command -v "$candidate")
        break
    fi
done
if [[ -z "$python" ]]; then
    log "no python3 with venv+ensurepip found (apt-get install python3-venv)"
    exit 1
fi

want_stamp="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [[ -x $venv/bin/python ]] && $venv/bin/python -c 'import sys' 2>/dev/null \
        && [[ -f $stamp && "$(cat "$stamp")" == "$want_stamp" ]]; then
    exit 0
fi

if ! [[ -x $venv/bin/python ]] || ! $venv/bin/python -c 'import sys' 2>/dev/null; then
    log "creating $venv with $python"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
log "installing $requirements into $venv"
$venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements"
printf '%s\n' "$want_stamp" > "$stamp"
