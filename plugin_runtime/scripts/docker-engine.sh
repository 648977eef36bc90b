#!/usr/bin/env bash
# Make sure a Docker engine is usable for the plugin runtime.
#
# Silent and fast (exit 0) when `docker info` already works. Otherwise, on a
# machine with no init system and no container registry, install docker.io from
# Debian and start a dockerd that never touches the host network: no default
# bridge (so no 172.17.0.0/16 docker0), no iptables/NAT rules, no ip_forward.
# Plugin containers are run with `--network none`, so nothing is lost.
#
# Progress goes to stderr only, so callers may capture stdout freely.
#
# Environment:
#   DOCKER_HOST                     use that engine; never start a local one
#   PLUGIN_RUNTIME_DOCKERD_LOG      dockerd log (default /var/log/plugin-runtime-dockerd.log)
#   PLUGIN_RUNTIME_DOCKERD_TIMEOUT  seconds to wait for the engine (default 60)
set -euo pipefail

readonly LOG_FILE="${PLUGIN_RUNTIME_DOCKERD_LOG:-/var/log/plugin-runtime-dockerd.log}"
readonly TIMEOUT="${PLUGIN_RUNTIME_DOCKERD_TIMEOUT:-60}"
readonly PID_FILE=/var/run/docker.pid
readonly CONTAINERD_PID_FILE=/var/run/docker/containerd/containerd.pid
readonly SOCKET=/var/run/docker.sock
readonly LOCK_FILE=/var/run/plugin-runtime-docker-engine.lock

log() { printf 'docker-engine: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

engine_ok() { docker info >/dev/null 2>&1; }

# A killed daemon can linger as a zombie when PID 1 is slow to reap orphans
# (it does here); it still shows up in pgrep and kill -0, but owns nothing.
is_live() {
    local state
    state="$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != [ZX] ]]
}

# Reads /proc directly: a minimal Debian has no procps (pgrep, ps).
live_dockerd_pids() {
    local dir pid
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        if [[ "$(cat "$dir/comm" 2>/dev/null)" == dockerd ]] && is_live "$pid"; then
            printf '%s\n' "$pid"
        fi
    done
}

show_log_tail() {
    if [[ -s "$LOG_FILE" ]]; then
        log "last lines of $LOG_FILE:"
        tail -n 25 "$LOG_FILE" | sed 's/^/    /' >&2
    fi
}

# Wait for the engine to answer. Returns 2 as soon as no live dockerd is left,
# rather than sitting out the whole timeout. Watching "any dockerd" instead of
# $! also covers a daemon someone else started, and a setsid that had to fork.
wait_for_engine() {
    local waited=0
    log "waiting up to ${TIMEOUT}s for the engine to answer"
    until engine_ok; do
        if ((waited >= TIMEOUT)); then
            show_log_tail
            die "Docker engine not ready after ${TIMEOUT}s; see $LOG_FILE"
        fi
        sleep 1
        waited=$((waited + 1))
        # Checked only after a sleep: just after launch the process is still
        # setsid/nohup and not yet called dockerd.
        if [[ -z "$(live_dockerd_pids)" ]]; then
            return 2
        fi
        if ((waited % 5 == 0)); then
            log "still waiting (${waited}s)"
        fi
    done
    log "engine ready after ${waited}s"
}

# shellcheck source=_apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/_apt.sh"

install_docker() {
    command -v apt-get >/dev/null 2>&1 || die "dockerd not found and apt-get unavailable; install Docker manually"
    log "Docker is not installed; installing docker.io with apt-get (about 30s)"
    # The package's postinst would start a stock dockerd (default bridge and
    # iptables rules) through invoke-rc.d; a policy-rc.d that answers 101
    # forbids that. Only add one if the machine has none.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt_install docker.io
    if ((added_policy)); then
        rm -f "$policy"
        trap - EXIT
    fi
    command -v dockerd >/dev/null 2>&1 || die "docker.io installed but dockerd is still not on PATH"
    command -v docker >/dev/null 2>&1 || die "docker.io installed but the docker client is still not on PATH"
    log "installed $(dockerd --version 2>/dev/null || echo dockerd)"
}

# A pid file outlives a killed daemon and makes the next one refuse to start.
# dockerd's own containerd has the same problem: it dies with dockerd, and
# dockerd 20.10 trusts kill -0 on its recorded pid, so a zombie containerd makes
# the new dockerd wait for a socket nobody serves and give up after ~15s.
# Only remove a pid file whose process is gone, a zombie, or another program
# (pid reuse), so a live daemon is never disowned.
remove_stale_pid_file() {
    local file="$1" name="$2" pid comm=""
    [[ -e "$file" ]] || return 0
    pid="$(tr -dc '0-9' <"$file" || true)"
    if [[ -n "$pid" ]] && is_live "$pid"; then
        comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    fi
    if [[ "$comm" == "$name" ]]; then
        return 0
    fi
    log "removing stale $file (pid ${pid:-?} is not a live $name)"
    rm -f "$file"
}

# Flags are probed rather than assumed, so the script keeps working with a
# dockerd that has dropped or renamed one of them.
dockerd_flags() {
    local help flag
    help="$(dockerd --help 2>&1 || true)"
    DOCKERD_FLAGS=()
    for flag in --bridge=none --iptables=false --ip-forward=false --ip-masq=false; do
        if grep -q -- "${flag%%=*}[ =]" <<<"$help"; then
            DOCKERD_FLAGS+=("$flag")
        elif [[ "$flag" == --bridge=none ]]; then
            # Without it dockerd would create docker0 on 172.17.0.0/16.
            die "this dockerd does not accept --bridge; refusing to start it with a default bridge"
        else
            log "note: dockerd does not accept ${flag%%=*}; skipping it"
        fi
    done
}

start_dockerd() {
    remove_stale_pid_file "$PID_FILE" dockerd
    remove_stale_pid_file "$CONTAINERD_PID_FILE" containerd
    if [[ -S "$SOCKET" || -e "$SOCKET" ]]; then
        log "removing stale $SOCKET (no dockerd is running)"
        rm -f "$SOCKET"
    fi
    dockerd_flags
    mkdir -p "$(dirname "$LOG_FILE")"
    # Keep the previous run's log: it is what explains a crash.
    if [[ -e "$LOG_FILE" ]]; then
        mv -f "$LOG_FILE" "$LOG_FILE.1"
    fi
    log "starting dockerd ${DOCKERD_FLAGS[*]} (log: $LOG_FILE)"
    # setsid+nohup detach it from our session and terminal so it outlives this
    # script; closing fd 9 stops it from holding our lock forever, and the
    # redirections stop it from holding a caller's stdout/stderr pipe open.
    setsid nohup dockerd "${DOCKERD_FLAGS[@]}" </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    disown 2>/dev/null || true
}

main() {
    if [[ -n "${DOCKER_HOST:-}" ]]; then
        command -v docker >/dev/null 2>&1 || die "DOCKER_HOST=$DOCKER_HOST is set but the docker client is not installed (apt-get install docker.io)"
        # Someone chose an engine explicitly; starting a local daemon would
        # silently bypass that choice, so only check it and report.
        engine_ok || die "DOCKER_HOST=$DOCKER_HOST is set but 'docker info' fails; not starting a local dockerd"
        exit 0
    fi

    engine_ok && exit 0

    [[ "$(id -u)" -eq 0 ]] || die "no usable Docker engine and not root; cannot install or start dockerd (install docker.io, or run as root)"

    # Two callers starting at once must not both launch a daemon.
    exec 9>"$LOCK_FILE"
    if ! flock -w "$((TIMEOUT + 30))" 9; then
        die "timed out waiting for another docker-engine.sh run (lock $LOCK_FILE)"
    fi
    engine_ok && exit 0

    # A fresh Debian has neither the client nor the daemon; docker.io brings both.
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        install_docker
    fi

    # A dockerd that is still initialising does not answer `docker info` yet
    # but already owns the pid file and socket: starting another would fail.
    local running status=0
    running="$(live_dockerd_pids | tr '\n' ' ')"
    if [[ -n "$running" ]]; then
        log "dockerd is already running (pid ${running% }); not starting another"
        wait_for_engine || status=$?
        if ((status == 0)); then
            exit 0
        fi
        log "that dockerd exited before answering; starting a new one"
    fi

    start_dockerd
    status=0
    wait_for_engine || status=$?
    if ((status != 0)); then
        show_log_tail
        die "dockerd exited during startup; see $LOG_FILE"
    fi
}

main "$@"
