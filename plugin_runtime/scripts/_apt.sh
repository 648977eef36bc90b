# shellcheck shell=bash
# Sourced by docker-engine.sh and base-image.sh (which define log and die).
# apt output is long; keep it out of the way unless something fails.

apt_install() {
    local apt_log
    apt_log="$(mktemp)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$apt_log" 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >"$apt_log" 2>&1; then
            tail -n 25 "$apt_log" | sed 's/^/    /' >&2
            rm -f "$apt_log"
            die "could not install: $*"
        fi
    fi
    rm -f "$apt_log"
}
