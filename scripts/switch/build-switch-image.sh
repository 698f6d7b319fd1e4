#!/usr/bin/env bash
# Builds the images of the real lab switch, offline except Debian's mirror, into a cache
# directory outside git, keyed by version; an artifact already in the cache is reused.
#
# Output: <dir>/switch.tar and <dir>/images/{telemetry,pause}.tar (the images a switch loads).
#   switch.tar     docker archive `kubesonic/switch:<key>`: Debian bookworm (debootstrap) with
#                  systemd, dbus, redis-server, containerd, runc, CNI plugins, docker.io, monit,
#                  socat, plus the kubelet and crictl (scripts/build-kube.sh) and the switch's
#                  units/configs (scripts/switch/rootfs/). No Deno and no ks-* tool: Kubernetes
#                  brings those (the ks-tools image; the sidecar installs the host runtime).
#   telemetry.tar  docker archive `kubesonic/telemetry:{v0,v1,v2,v3}`: a plain feature image as
#                  SONiC builds one (supervisord and the examples/telemetry daemon, nothing of
#                  ours), loaded into each switch's containerd (`ctr -n k8s.io images import`)
#                  and Docker.
#   pause.tar      docker archive `kubesonic/pause:1` (busybox-static, sleeps), the sandbox image;
#                  also `kubesonic/busybox-static:1`, a feature image without glibc.
#   ks-tools.tar   docker archive `kubesonic/ks-tools:<version>` and `:<version>-<tree hash>`: the
#                  relocatable ks tree (dist/ks-tree: the pinned Deno, the one bundle, launchers)
#                  at /opt/kubesonic, plus what it needs to start: glibc's loader and the libraries
#                  Deno links, /bin/sh (dash) for the launchers, nsenter for the sidecar's host
#                  commands. The watchdog and sidecar containers and the v2 pod's init container
#                  (which copies the tree into the pod for the unmodified feature image) run it.
#   later/ks-tools-next.tar  `kubesonic/ks-tools:next`: the same with one more line in the bundle (a
#                  new tree hash; its index in <dir>/ks-tree-next/lib/tree.json), the lab's tools
#                  upgrade; not loaded at boot (the upgrade step imports it).
#
# Usage: scripts/switch/build-switch-image.sh [--print-dir] [--base-only]
#   KS_CACHE   cache root (default /var/cache/kubesonic)
#   KS_MIRROR  Debian mirror (default: the one this machine's apt uses)
# Progress on stderr; the output directory on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${KS_CACHE:-/var/cache/kubesonic}
SUITE=bookworm
START=$(date +%s)
log() { echo "build-switch: $(date +%H:%M:%S) +$(($(date +%s) - START))s $*" >&2; }
die() { echo "build-switch: $*" >&2; exit 1; }

mirror() {
  if [ -n "${KS_MIRROR:-}" ]; then echo "$KS_MIRROR"; return; fi
  local m
  m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    head -1 | tr -d ' ') || true
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(mirror)

# The switch's Debian packages. Changing this list changes the base key (a new debootstrap).
SWITCH_PACKAGES=systemd,systemd-sysv,dbus,redis-server,redis-tools,containerd,runc,containernetworking-plugins,docker.io,monit,socat,iproute2,procps,psmisc,ca-certificates,curl,kmod,less
FEATURE_PACKAGES=supervisor,procps,redis-tools,iproute2
sha() { sha256sum | cut -c1-12; }
SWITCH_BASE_KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "$SWITCH_PACKAGES" "v1" | sha)
FEATURE_BASE_KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "$FEATURE_PACKAGES" "v1" | sha)
BASE_DIR="$CACHE/switch/debian"

# debootstrap a minbase rootfs with $2 included, as a tar at $1 (atomic: tmp dir, then rename).
debootstrap_tar() {
  local out=$1 include=$2 what=$3
  if [ -s "$out" ]; then
    log "$what: reusing $out"
    return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing: run scripts/setup.sh"
  local tmp="$out.build.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "$what: debootstrap $SUITE from $MIRROR (minbase + $include); a few minutes"
  # Progress: debootstrap prints one line per phase (Retrieving/Validating/Unpacking/Configuring).
  if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$tmp/rootfs" "$MIRROR" 2>&1 |
    grep --line-buffered -E '^I: (Retriev|Validat|Unpack|Configur|Base system)' |
    awk -v w="$what" '{ c++; if ($2 != last && $2 != "Validating" || c % 40 == 0) { print "build-switch:   " w ": " $0 " (" c " steps)"; fflush(); last = $2 } }' >&2; then
    rm -rf "$tmp"
    die "$what: debootstrap failed (is $MIRROR reachable?)"
  fi
  [ -x "$tmp/rootfs/bin/sh" ] || { rm -rf "$tmp"; die "$what: debootstrap produced no rootfs"; }
  # Smaller and reproducible: no apt lists or package caches in the image.
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*
  log "$what: packing $(du -sh "$tmp/rootfs" | cut -f1) rootfs"
  tar -C "$tmp/rootfs" --numeric-owner -cf "$tmp/rootfs.tar" .
  mv "$tmp/rootfs.tar" "$out"
  rm -rf "$tmp"
}


build_bases() {
  mkdir -p "$BASE_DIR"
  debootstrap_tar "$BASE_DIR/switch-base-$SWITCH_BASE_KEY.tar" "$SWITCH_PACKAGES" "switch base" &
  local sw_pid=$!
  debootstrap_tar "$BASE_DIR/feature-base-$FEATURE_BASE_KEY.tar" "$FEATURE_PACKAGES" "feature base" &
  local ft_pid=$!
  wait $sw_pid || die "switch base failed"
  wait $ft_pid || die "feature base failed"
}
if [ "${1:-}" = "--base-only" ]; then build_bases; exit 0; fi

# ---- inputs of the final images ---------------------------------------------------------------
KUBE_BIN=$(bash "$ROOT/scripts/build-kube.sh" --print-dir)
for b in kubelet crictl; do
  [ -x "$KUBE_BIN/$b" ] || die "$KUBE_BIN/$b is missing: run scripts/build-kube.sh first"
done
command -v deno >/dev/null || die "deno is not on PATH: run scripts/setup.sh"
log "bundling the ks-* tools (deno task bundle)"
if ! (cd "$ROOT" && deno run -A scripts/bundle.ts >/dev/null 2>&1); then
  ls "$ROOT"/dist/ks-*.js >/dev/null 2>&1 || die "deno task bundle failed and dist/ holds no bundle"
  log "WARNING: deno task bundle failed; the images carry the bundles already in dist/"
fi
BUSYBOX=$(command -v busybox) || die "busybox is missing (Debian busybox-static)"
file_sums() { [ -d "$1" ] || return 0; (cd "$1" && find . -path ./ks-tree/lib/cache -prune -o \( -type f -o -type l \) -print | LC_ALL=C sort | xargs -d '\n' sha256sum 2>/dev/null) || true; }
TREE="$ROOT/dist/ks-tree"
[ -x "$TREE/bin/deno" ] && [ -s "$TREE/lib/tree.json" ] || die "$TREE is not built (deno task bundle)"
# What the ks-tools image carries besides the tree: each binary and the libraries it links.
TOOLS_IMAGE_BINS="$TREE/bin/deno $(command -v dash) $(command -v nsenter)"
runtime_files() { for b in $TOOLS_IMAGE_BINS; do ldd "$b" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'; done | LC_ALL=C sort -u; }
example_dir="$ROOT/examples/telemetry"
INPUT_KEY=$( {
  echo "$SWITCH_BASE_KEY $FEATURE_BASE_KEY format-2"
  sha256sum "$KUBE_BIN/kubelet" "$KUBE_BIN/crictl" "$BUSYBOX" $TOOLS_IMAGE_BINS $(runtime_files) | cut -d' ' -f1
  file_sums "$ROOT/scripts/switch/rootfs"
  file_sums "$ROOT/scripts/switch/feature"
  sha256sum "$ROOT/scripts/tree_index.ts" "$ROOT/src/build/tree.ts" | cut -d' ' -f1
  file_sums "$ROOT/dist"
  [ -d "$example_dir" ] && file_sums "$example_dir"
  sha256sum "$0" | cut -d' ' -f1
} | sha)
OUT="$CACHE/switch/$INPUT_KEY"
if [ "${1:-}" = "--print-dir" ]; then echo "$OUT"; exit 0; fi
# One build of an image set at a time: parallel test files (and parallel runs) that need the same
# set wait here for the first build, then reuse it. Two builders of one set raced on its final
# moves (one's rm -rf of ks-tree-next under the other's mv). The lock is released at exit.
mkdir -p "$CACHE/switch"
exec 9>"$CACHE/switch/.build-$INPUT_KEY.lock"
flock -n 9 || { log "another build of $OUT is running: waiting for it"; flock 9; }
if [ -s "$OUT/switch.tar" ] && [ -s "$OUT/images/telemetry.tar" ] && [ -s "$OUT/images/pause.tar" ] &&
  [ -s "$OUT/images/ks-tools.tar" ] && [ -s "$OUT/images/later/ks-tools-next.tar" ] &&
  [ -s "$OUT/ks-tree-next/lib/tree.json" ]; then
  log "reusing $OUT"
  touch "$OUT/last-used"
  echo "$OUT"
  exit 0
fi
build_bases
WORK="$CACHE/switch/work.$$"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$WORK"
mkdir -p "$WORK"

# Writes a docker archive (`docker load` / `ctr images import` format) of rootfs dir $1 to $2.
# $3: the image config JSON object ("config" field); the rest: tags.
docker_archive() {
  local rootfs=$1 out=$2 cfg=$3 dir diff cfgsha tags=""
  shift 3
  for t in "$@"; do tags+="${tags:+,}\"$t\""; done
  dir=$(mktemp -d "$WORK/archive.XXXX")
  tar -C "$rootfs" --numeric-owner -cf "$dir/layer.tar" .
  diff=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  mkdir "$dir/$diff"
  mv "$dir/layer.tar" "$dir/$diff/layer.tar"
  printf '{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$cfg" "$diff" >"$dir/config.json"
  cfgsha=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
  mv "$dir/config.json" "$dir/$cfgsha.json"
  printf '[{"Config":"%s.json","RepoTags":[%s],"Layers":["%s/layer.tar"]}]' "$cfgsha" "$tags" "$diff" >"$dir/manifest.json"
  tar -C "$dir" -cf "$out.tmp" manifest.json "$cfgsha.json" "$diff"
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

# ---- the switch image ---------------------------------------------------------------------------
log "switch image: assembling rootfs"
R="$WORK/switch"
mkdir -p "$R"
tar -C "$R" -xf "$BASE_DIR/switch-base-$SWITCH_BASE_KEY.tar"
cp -a "$ROOT/scripts/switch/rootfs/." "$R/"
# git keeps only the executable bit: monit refuses a control file readable by others.
chmod 600 "$R/etc/monit/monitrc"
install -m 755 "$KUBE_BIN/kubelet" "$KUBE_BIN/crictl" "$R/usr/local/bin/"
printf 'runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\n' >"$R/etc/crictl.yaml"
mkdir -p "$R/etc/kubernetes" "$R/var/lib/monit/events"
chroot "$R" /bin/sh -c 'getent passwd admin >/dev/null || useradd -m -s /bin/bash -G docker admin'
# Units: ours on, Debian's redis-server off (database.service runs it), nothing that cannot work
# in a container.
systemctl --root="$R" enable ks-switch-init.service ks-apiserver-bridge.service ks-load-images.service database.service \
  containerd.service docker.service kubelet.service monit.service sonic.target telemetry.service >/dev/null 2>&1
systemctl --root="$R" mask redis-server.service systemd-networkd-wait-online.service \
  e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer \
  systemd-timesyncd.service getty@tty1.service console-getty.service >/dev/null 2>&1
systemctl --root="$R" set-default multi-user.target >/dev/null 2>&1
echo "kubesonic-switch $INPUT_KEY" >"$R/etc/kubesonic/image-version"
log "switch image: packing ($(du -sh "$R" | cut -f1))"
docker_archive "$R" "$WORK/switch.tar" \
  '{"Cmd":["/lib/systemd/systemd"],"Env":["container=docker","PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"StopSignal":"SIGRTMIN+3"}' \
  "kubesonic/switch:$INPUT_KEY"
rm -rf "$R"

# ---- the feature image (the telemetry example as SONiC would build it) ------------------------
log "feature image: assembling rootfs"
F="$WORK/feature"
mkdir -p "$F"
tar -C "$F" -xf "$BASE_DIR/feature-base-$FEATURE_BASE_KEY.tar"
[ -d "$ROOT/scripts/switch/feature" ] && cp -a "$ROOT/scripts/switch/feature/." "$F/"
# The bundled telemetry example, laid out as its README says: the daemon, Debian's supervisord
# with the example's config, a writable /var/run/telemetry. The lab adds SONiC's critical-process
# rule (scripts/switch/feature/etc/supervisor/critical-exit.conf): the daemon's death ends the
# container, so an OOM kill of the daemon is an OOMKilled (137) container for the kubelet; and, as
# in SONiC's images, the critical program is not restarted by supervisord (autorestart=false).
[ -f "$example_dir/telemetry.py" ] && [ -f "$example_dir/supervisord.conf" ] ||
  die "examples/telemetry/{telemetry.py,supervisord.conf} are missing"
mkdir -p "$F/opt/kubesonic/examples" "$F/run/telemetry"
cp -a "$example_dir" "$F/opt/kubesonic/examples/telemetry"
install -m 755 "$example_dir/telemetry.py" "$F/usr/local/bin/telemetry.py"
{
  sed '/^\[program:telemetry\]/,/^\[/ s/^autorestart=.*/autorestart=false/' "$example_dir/supervisord.conf"
  echo
  cat "$ROOT/scripts/switch/feature/etc/supervisor/critical-exit.conf"
} >"$F/etc/supervisor/supervisord.conf"
sed -n '/^\[program:telemetry\]/,/^\[/p' "$F/etc/supervisor/supervisord.conf" | grep -qx 'autorestart=false' ||
  die "the feature image's supervisord.conf: [program:telemetry] autorestart=false not set"
log "feature image: packing ($(du -sh "$F" | cut -f1))"
docker_archive "$F" "$WORK/telemetry.tar" \
  '{"Cmd":["/usr/bin/supervisord","-n","-c","/etc/supervisor/supervisord.conf"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' \
  kubesonic/telemetry:v0 kubesonic/telemetry:v1 kubesonic/telemetry:v2 kubesonic/telemetry:v3 \
  docker-sonic-telemetry:latest
rm -rf "$F"

# ---- the pause image --------------------------------------------------------------------------
P="$WORK/pause"
mkdir -p "$P/bin"
cp "$BUSYBOX" "$P/bin/busybox"
ln -s busybox "$P/bin/sleep"
ln -s busybox "$P/bin/sh"
docker_archive "$P" "$WORK/pause.tar" '{"Cmd":["/bin/sleep","2147483647"]}' kubesonic/pause:1 \
  kubesonic/busybox-static:1

# ---- the ks-tools image: the ks tree and what its runtime needs to start -----------------------
# tools_image TREE OUT TAG...: the tree at /opt/kubesonic, glibc's loader and the libraries Deno,
# dash and nsenter link, dash as /bin/sh (the launchers), nsenter (the sidecar's host commands).
tools_image() {
  local tree=$1 out=$2 k="$WORK/ks-tools" lib
  shift 2
  rm -rf "$k"
  mkdir -p "$k/opt" "$k/bin" "$k/usr/bin" "$k/tmp"
  chmod 1777 "$k/tmp"
  cp -a "$tree" "$k/opt/kubesonic"
  rm -rf "$k/opt/kubesonic/lib/cache"
  for lib in $(runtime_files); do install -D -m 755 "$(readlink -f "$lib")" "$k$lib"; done
  install -m 755 "$(command -v dash)" "$k/bin/sh"
  install -m 755 "$(command -v nsenter)" "$k/usr/bin/nsenter"
  # Deno's module analysis cache for the tree at /opt/kubesonic (the path is part of every entry;
  # the pod mounts the image's root read-only, where Deno would parse every module again at each
  # start into memory each tool keeps): `ks prime-cache` in a chroot of the image, with a /proc and
  # a /dev (null, urandom) of a private mount namespace that go away with it.
  mkdir -p "$k/proc" "$k/dev"
  unshare --mount --propagation private --fork sh -c '
    mount -t proc proc "$1/proc" && mount -t tmpfs -o size=64k,mode=755 dev "$1/dev" &&
      mknod -m 666 "$1/dev/null" c 1 3 && mknod -m 444 "$1/dev/urandom" c 1 9 &&
      exec chroot "$1" /opt/kubesonic/bin/ks prime-cache' sh "$k" ||
    die "ks-tools image: ks prime-cache in a chroot of the image failed"
  log "ks-tools image: packing ($(du -sh "$k" | cut -f1)) as $*"
  docker_archive "$k" "$out" \
    '{"Cmd":["/opt/kubesonic/bin/ks","--help"],"Env":["PATH=/opt/kubesonic/bin:/usr/bin:/bin"]}' "$@"
  rm -rf "$k"
}
tree_field() { sed -n "s/^  \"$1\": \"\\([^\"]*\\)\",\$/\\1/p" "$2/lib/tree.json"; }
TREE_HASH=$(tree_field hash "$TREE")
TOOLS_VERSION=$(tree_field version "$TREE")
[ -n "$TREE_HASH" ] && [ -n "$TOOLS_VERSION" ] || die "$TREE/lib/tree.json names no version or hash"
log "ks-tools image: assembling (tree $TREE_HASH)"
tools_image "$TREE" "$WORK/ks-tools.tar" "kubesonic/ks-tools:$TOOLS_VERSION" \
  "kubesonic/ks-tools:$TOOLS_VERSION-$TREE_HASH"
# The lab's tools upgrade (v2 -> v2'): the same tree with one more line in its bundle, so a new
# tree hash; its lib/tree.json is kept beside the images for ks-render --tools-tree.
N="$WORK/ks-tree-next"
cp -a "$TREE" "$N"
rm -rf "$N/lib/cache"
printf '// the next ks-tools (the lab'"'"'s tools upgrade)\n' >>"$N/lib/ks/ks.js"
NEXT_HASH=$(cd "$ROOT" && deno run -A scripts/tree_index.ts "$N") || die "tree index of the next ks-tools failed"
tools_image "$N" "$WORK/ks-tools-next.tar" "kubesonic/ks-tools:next" \
  "kubesonic/ks-tools:$TOOLS_VERSION-$NEXT_HASH"
mkdir -p "$WORK/ks-tree-next-index/lib"
cp "$N/lib/tree.json" "$WORK/ks-tree-next-index/lib/tree.json"
rm -rf "$N"

mkdir -p "$OUT/images"
rm -rf "$OUT/ks-tree-next"
mv "$WORK/ks-tree-next-index" "$OUT/ks-tree-next"
mkdir -p "$OUT/images/later"
mv "$WORK/telemetry.tar" "$WORK/pause.tar" "$WORK/ks-tools.tar" "$OUT/images/"
mv "$WORK/ks-tools-next.tar" "$OUT/images/later/"
mv "$WORK/switch.tar" "$OUT/"
ls -la "$OUT" "$OUT/images" >&2
# Keep the cache bounded: the three most recently used image sets stay, and so does any set used in
# the last six hours (another checkout's run may be booting switches from it); older ones go. A
# work.<pid> directory is another build in progress (its switch.tar may already be there), never a
# set: pruning it made a parallel run's build fail at its final mv.
touch "$OUT/last-used"
for old in $(ls -1dt "$CACHE"/switch/*/last-used "$CACHE"/switch/*/switch.tar 2>/dev/null |
  xargs -r -n1 dirname | grep -v '/work\.[0-9]*$' | awk '!seen[$0]++' | tail -n +4); do
  [ -n "$(find "$old" -maxdepth 1 -name last-used -mmin -360)" ] && continue
  log "pruning old image set $old"
  rm -rf "$old"
done
log "done: $OUT"
echo "$OUT"
