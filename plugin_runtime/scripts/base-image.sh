#!/usr/bin/env bash
# Build (once) the local base image plugin containers run in.
#
#   plugin_runtime/scripts/base-image.sh [IMAGE_NAME]   (or: plugin-runtime base-image)
#
# No container registry is reachable here, so `FROM python:...` is not an
# option: the root filesystem is made with debootstrap from the machine's own
# Debian mirror and turned into an image with `docker import`. The image holds
# Debian bookworm (minbase) + python3 and nothing a Python runtime does not
# need; plugin packages are added later as pre-built wheels, so there is no pip,
# venv or ca-certificates (containers run with --network none anyway).
#
# It is cached: if the image already exists the script exits 0 at once.
# Progress goes to stderr; stdout stays empty.
#
# Image name: first argument, else $PLUGIN_RUNTIME_BASE_IMAGE, else
# plugin-runtime-base:bookworm.
#
# Environment:
#   PLUGIN_RUNTIME_BASE_IMAGE     image name when no argument is given
#   PLUGIN_RUNTIME_DEBIAN_MIRROR  override the mirror read from apt's sources
set -euo pipefail

readonly SUITE=bookworm
readonly FALLBACK_MIRROR=http://deb.debian.org/debian
readonly PLUGIN_UID=10001
readonly PLUGIN_GID=10001
readonly LOCK_FILE=/var/lock/plugin-runtime-base-image.lock
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

IMAGE="${1:-${PLUGIN_RUNTIME_BASE_IMAGE:-plugin-runtime-base:$SUITE}}"
readonly IMAGE

WORK=""
STEP_NAME=""
STEP_START=0

log() { printf '[base-image +%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# Each step reports how long the previous one took, so a slow build shows
# where the time went.
end_step() {
    if [[ -n "$STEP_NAME" ]]; then
        log "$STEP_NAME: done in $((SECONDS - STEP_START))s"
    fi
    STEP_NAME=""
}
step() {
    end_step
    STEP_NAME="$1"
    STEP_START=$SECONDS
    log "$STEP_NAME..."
}

# debootstrap bind-mounts /proc and /sys into the target while configuring
# packages; if it was interrupted they can still be mounted, and a plain
# `rm -rf` would then walk into the host's /proc and /sys. Unmount first and
# never cross a filesystem boundary while deleting.
cleanup() {
    local status=$? mnt
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if ((status != 0)); then
            log "aborted (exit $status); removing $WORK"
        fi
        while read -r mnt; do
            umount -l "$mnt" 2>/dev/null || true
        done < <(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r)
        rm -rf --one-file-system "$WORK" || log "warning: could not fully remove $WORK"
    fi
    exit "$status"
}

# shellcheck source=_apt.sh
source "$SCRIPT_DIR/_apt.sh"

# First http(s)/file URI apt uses for "$SUITE" itself (not -updates or
# -security), looked up in the same order apt reads its sources. Prints
# nothing if there is none.
configured_mirror() {
    local f uri
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        # One-line format: deb [options] URI suite components...
        uri="$(awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f")"
        if [[ "$uri" =~ ^(https?|file):/ ]]; then
            printf '%s\n' "$uri"
            return 0
        fi
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        # deb822 format: blank-line separated stanzas, values may continue on
        # indented lines.
        uri="$(awk -v suite="$SUITE" '
            BEGIN { RS = ""; FS = "\n" }
            {
                delete v; key = ""
                for (n = 1; n <= NF; n++) {
                    line = $n
                    if (line ~ /^#/) continue
                    if (line ~ /^[ \t]/ && key != "") { v[key] = v[key] " " line; continue }
                    if (match(line, /^[A-Za-z0-9-]+:/)) {
                        key = tolower(substr(line, 1, RLENGTH - 1))
                        v[key] = substr(line, RLENGTH + 1)
                    }
                }
                if (tolower(v["enabled"]) ~ /no/) next
                if ((" " v["types"] " ") !~ /[ \t]deb[ \t]/) next
                if ((" " v["suites"] " ") !~ ("[ \t]" suite "[ \t]")) next
                nu = split(v["uris"], u, /[ \t]+/)
                for (k = 1; k <= nu; k++) if (u[k] != "") { print u[k]; exit }
            }' "$f")"
        if [[ "$uri" =~ ^(https?|file):/ ]]; then
            printf '%s\n' "$uri"
            return 0
        fi
    done
}

# debootstrap prints a line per package; show only each new kind of line and
# the phase markers, keeping the full output in a log for failures.
filter_debootstrap() {
    local line verb
    local -A seen=()
    while IFS= read -r line; do
        case "$line" in
        I:\ *)
            verb="${line#I: }"
            verb="${verb%% *}"
            # Index files count as their own kind, so the start of the
            # (long) package download phase is shown too.
            if [[ "$line" =~ ^I:\ (Retrieving|Validating)\ (In)?(Release|Packages) ]]; then
                verb="$verb ${BASH_REMATCH[3]}"
            fi
            if [[ -z "${seen[$verb]:-}" || "$line" =~ (packages\.\.\.|base\ system|successfully) ]]; then
                seen[$verb]=1
                log "  debootstrap: ${line#I: }"
            fi
            ;;
        W:* | E:*) log "  debootstrap: $line" ;;
        *) ;;
        esac
    done
}

strip_rootfs() {
    local root="$1" entry
    rm -rf "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/cache/apt/*.bin \
        "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* \
        "$root"/usr/share/info/* \
        "$root"/usr/share/lintian \
        "$root"/var/cache/debconf/*-old \
        "$root"/var/log/*.log "$root"/var/log/apt/* \
        "$root"/debootstrap
    # debootstrap copies the build host's resolver and hostname in; Docker
    # bind-mounts its own over both, so keep the files (as mount targets) but
    # not the host's details.
    : >"$root/etc/resolv.conf"
    printf 'localhost\n' >"$root/etc/hostname"
    # Translations are useless to a C-locale runtime; keep the C locales and
    # locale.alias (a file glibc reads).
    for entry in "$root"/usr/share/locale/*; do
        [[ -d "$entry" ]] || continue
        case "${entry##*/}" in
        C | C.*) ;;
        *) rm -rf "$entry" ;;
        esac
    done
}

add_plugin_user() {
    local root="$1"
    # Fixed ids, so the runtime can pass --user 10001:10001 and own host-side
    # files with the same numbers. No home, no login shell, no lastlog entry.
    chroot "$root" groupadd --gid "$PLUGIN_GID" plugin
    chroot "$root" useradd --uid "$PLUGIN_UID" --gid "$PLUGIN_GID" --no-create-home \
        --no-log-init --home-dir /nonexistent --shell /usr/sbin/nologin \
        --comment 'plugin runtime' plugin
}

main() {
    bash "$SCRIPT_DIR/docker-engine.sh"

    if docker image inspect "$IMAGE" >/dev/null 2>&1; then
        log "image $IMAGE already present; nothing to do"
        exit 0
    fi

    [[ "$(id -u)" -eq 0 ]] || die "building $IMAGE needs root (debootstrap, chroot)"

    # Concurrent callers would each spend a minute building the same image.
    exec 8>"$LOCK_FILE"
    if ! flock -n 8; then
        log "another build holds $LOCK_FILE; waiting for it"
        flock 8
    fi
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then
        log "image $IMAGE was built meanwhile; nothing to do"
        exit 0
    fi

    log "building $IMAGE (Debian $SUITE minbase + python3)"

    if ! command -v debootstrap >/dev/null 2>&1; then
        step "installing debootstrap"
        apt_install debootstrap
    fi

    local mirror
    mirror="${PLUGIN_RUNTIME_DEBIAN_MIRROR:-$(configured_mirror)}"
    if [[ -z "$mirror" ]]; then
        mirror=$FALLBACK_MIRROR
        log "no $SUITE mirror found in /etc/apt; using $mirror"
    fi

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/plugin-runtime-base.XXXXXX")"
    local rootfs="$WORK/rootfs" bootstrap_log="$WORK/debootstrap.log"

    step "debootstrap $SUITE from $mirror (about a minute)"
    if ! debootstrap --variant=minbase --include=python3 "$SUITE" "$rootfs" "$mirror" 2>&1 |
        tee "$bootstrap_log" | filter_debootstrap; then
        log "last lines of the debootstrap log:"
        tail -n 25 "$bootstrap_log" | sed 's/^/    /' >&2
        if [[ -f "$rootfs/debootstrap/debootstrap.log" ]]; then
            tail -n 25 "$rootfs/debootstrap/debootstrap.log" | sed 's/^/    /' >&2
        fi
        die "debootstrap failed"
    fi

    step "stripping docs, man pages, translations and apt caches"
    local before after
    before="$(du -sm "$rootfs" | cut -f1)"
    strip_rootfs "$rootfs"
    after="$(du -sm "$rootfs" | cut -f1)"
    log "rootfs ${before} MB -> ${after} MB"

    step "adding user plugin ($PLUGIN_UID:$PLUGIN_GID)"
    add_plugin_user "$rootfs"

    step "reading the Python version"
    local py_full py_minor
    # A clean environment: the host's PYTHON* variables must not leak in.
    py_full="$(env -i PATH=/usr/bin:/bin "$(command -v chroot)" "$rootfs" python3 -c \
        'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
    py_minor="${py_full%.*}"
    [[ "$py_minor" =~ ^3\.[0-9]+$ ]] || die "unexpected python3 version: '$py_full'"
    log "python $py_full"

    step "importing the rootfs into docker"
    local image_id
    # Imported untagged and tagged only after the smoke test, so a broken build
    # never sits in the cache under the name every later run trusts.
    image_id="$(tar -C "$rootfs" --numeric-owner -c . |
        docker import \
            --message "debootstrap $SUITE minbase + python3 $py_full" \
            --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change "USER $PLUGIN_UID:$PLUGIN_GID" \
            --change 'WORKDIR /' \
            --change 'CMD ["python3"]' \
            --change "LABEL org.plugin-runtime.python=$py_minor" \
            --change "LABEL org.plugin-runtime.python.full=$py_full" \
            --change "LABEL org.plugin-runtime.debian=$SUITE" \
            - 2>"$WORK/import.err")" || die "docker import failed: $(cat "$WORK/import.err")"

    step "smoke test (--network none --read-only as $PLUGIN_UID)"
    local out
    if ! out="$(docker run --rm --network none --read-only --user "$PLUGIN_UID:$PLUGIN_GID" "$image_id" \
        python3 -c 'import json, os, sys; print(os.getuid(), sys.version_info[0])' 2>&1)" ||
        [[ "$out" != "$PLUGIN_UID 3" ]]; then
        docker image rm "$image_id" >/dev/null 2>&1 || true
        die "smoke test failed: $out"
    fi
    docker tag "$image_id" "$IMAGE"
    end_step

    log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'), python $py_full) in ${SECONDS}s"
}

main "$@"
