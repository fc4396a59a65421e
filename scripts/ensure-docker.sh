#!/usr/bin/env bash
# Make sure a Docker engine answers and debootstrap is installed, so that rebuild's container
# tests and the image bootstrap can run on a fresh machine or CI runner.
#
# Idempotent: does nothing when `docker info` already answers. Needs root to install packages
# and to start dockerd. Prints one line per thing it does; exits non-zero with a reason if it
# cannot get an engine up.
set -euo pipefail

log() { printf 'rebuild: %s\n' "$*"; }
die() { printf 'rebuild: error: %s\n' "$*" >&2; exit 1; }

DOCKERD_LOG=/var/log/rebuild-dockerd.log
WAIT_SECONDS=60
apt_updated=0

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (run this script as root or install sudo)"
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found: install $* with this system's package manager"
    if [ "$apt_updated" -eq 0 ]; then
        log "updating the package lists (apt-get update)…"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            || die "apt-get update failed; check the network or the apt sources"
        apt_updated=1
    fi
    log "installing $* (apt-get install)…"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || die "apt-get install $* failed"
}

# debootstrap makes the build images where no registry can be reached; check it first so that
# a machine with a running engine still gets it.
if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
    apt_install debootstrap
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ]; then
    apt_install docker.io
fi
DOCKERD=$(command -v dockerd || echo /usr/sbin/dockerd)

# The engine may be starting already (another shell ran this script a moment ago); only start
# a second one if no dockerd process exists.
if pgrep -x dockerd >/dev/null 2>&1; then
    log "a dockerd process exists; waiting for it to answer…"
else
    log "starting the Docker engine (dockerd), log in $DOCKERD_LOG…"
    # setsid: the engine outlives the shell (and the job group) that started it.
    as_root setsid -f nohup "$DOCKERD" >>"$DOCKERD_LOG" 2>&1 </dev/null
fi

for _ in $(seq "$WAIT_SECONDS"); do
    if docker info >/dev/null 2>&1; then
        log "the Docker engine answers."
        exit 0
    fi
    sleep 1
done

tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
die "no answer from the Docker engine after ${WAIT_SECONDS}s; see $DOCKERD_LOG"
