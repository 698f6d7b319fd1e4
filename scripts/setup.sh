#!/usr/bin/env bash
# One-time (idempotent, fast when already done) set-up of a fresh machine for kubesonic-migrate:
# Debian packages (redis-server, monit, docker.io, containerd, runc, debootstrap, CNI plugins, ...),
# Deno pinned from the npm registry onto PATH, the npm modules the tools import, and the bundled
# `dist/ks-*.js` artifacts. The Kubernetes binaries are built by scripts/build-kube.sh (long on a
# cold machine), which the test task and `deno task lab` call themselves.
set -euo pipefail

DENO_VERSION=2.9.6
CACHE=${KS_CACHE:-/var/cache/kubesonic}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "setup: $*" >&2; }

# g++, libzmq3-dev, libboost-serialization-dev, nlohmann-json3-dev: the test subscriber that decodes
# the checkers' events as SONiC's event framework does (sandbox/harness/eventd.ts).
APT_PACKAGES=(redis-server redis-tools monit docker.io containerd runc debootstrap
  containernetworking-plugins iproute2 openssl procps psmisc util-linux systemd hyperfine
  busybox-static ca-certificates curl supervisor
  g++ libzmq3-dev libboost-serialization-dev nlohmann-json3-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# The Debian units may have started services we do not use: the tests run private instances.
for svc in redis-server docker containerd monit; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
  fi
done

if ! command -v deno >/dev/null 2>&1 || [ "$(deno --version 2>/dev/null | head -1 | cut -d' ' -f2)" != "$DENO_VERSION" ]; then
  log "installing Deno $DENO_VERSION from the npm registry"
  dir="$CACHE/deno/$DENO_VERSION"
  mkdir -p "$dir"
  (cd "$dir" && npm install --no-audit --no-fund --silent "@deno/linux-x64-glibc@$DENO_VERSION" >&2)
  ln -sf "$dir/node_modules/@deno/linux-x64-glibc/deno" /usr/local/bin/deno
fi
deno --version | head -1 >&2

cd "$ROOT"
log "caching npm modules"
deno install --quiet >&2 2>/dev/null || deno install >&2
log "bundling bin/ks-*.ts into dist/"
deno run -A scripts/bundle.ts >&2
log "ready"
