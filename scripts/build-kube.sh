#!/usr/bin/env bash
# Builds the pinned Kubernetes binaries the tests and the lab run (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kubelet, kwok, crictl) from the Go module
# proxy into a cache directory outside git, keyed by version. A binary already in the cache is
# reused. No product code is Go: these are Kubernetes' own binaries, built because no release
# binary can be downloaded here.
#
# Usage: scripts/build-kube.sh [--print-dir]
#   KS_CACHE   cache root (default /var/cache/kubesonic)
# Prints progress lines to stderr and, at the end, the bin directory on stdout.
set -euo pipefail

K8S_VERSION=1.37.2
ETCD_VERSION=3.6.16
KWOK_VERSION=0.8.0
CRI_TOOLS_VERSION=1.37.0

CACHE=${KS_CACHE:-/var/cache/kubesonic}
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_crictl-${CRI_TOOLS_VERSION}"
BIN="$CACHE/kube/$KEY/bin"
WORK="$CACHE/kube/$KEY/modules"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$BIN"
  exit 0
fi

log() { echo "build-kube: $(date +%H:%M:%S) $*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  echo "build-kube: go is not on PATH; install Go (1.26 is known to work) to build the Kubernetes binaries" >&2
  exit 1
fi

mkdir -p "$BIN" "$WORK"
# One build at a time: a second caller (the lab and the tests started together on a fresh machine,
# or two clones' CI) waits here and then finds the binaries built; two builders would share the
# build modules' go.mod and each binary's .tmp file. The lock is released at exit.
exec 9>"$CACHE/kube/.build-$KEY.lock"
flock -n 9 || { log "another build into $BIN is running: waiting for it"; flock 9; }
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

have() { [ -x "$BIN/$1" ]; }

# Version stamp so kubectl and the kubelet do not report v0.0.0-master.
k8s_ldflags() {
  local minor=${K8S_VERSION#*.}
  minor=${minor%%.*}
  local date=2026-01-01T00:00:00Z flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  echo "$flags"
}

build_k8s() {
  local missing=()
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do
    have "$c" || missing+=("$c")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local dir="$WORK/k8s"
  mkdir -p "$dir"
  cd "$dir"
  if [ ! -f go.mod ] || ! grep -q "k8s.io/kubernetes v$K8S_VERSION" go.mod; then
    log "preparing the build module for k8s.io/kubernetes v$K8S_VERSION"
    rm -f go.mod go.sum
    go mod init example.invalid/ks-k8s-tools >/dev/null 2>&1
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    local m
    for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => \./staging/.*|\1|p' "$gomod"); do
      go mod edit -replace="$m=$m@v0.${K8S_VERSION#1.}"
    done
    for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do
      go get -tool "k8s.io/kubernetes/cmd/$c@v$K8S_VERSION" >&2
    done
  fi
  local ldflags
  ldflags=$(k8s_ldflags)
  local note=" (the first one builds most shared packages: 5-10 minutes on 2 cores)"
  for c in "${missing[@]}"; do
    log "building $c v$K8S_VERSION$note"
    note=""
    local t0=$SECONDS
    go build -trimpath -ldflags "$ldflags" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$BIN/$c.tmp" "$BIN/$c"
    log "built $c in $((SECONDS - t0)) s"
  done
}

# build_tool NAME MODULE@VERSION PACKAGE
build_tool() {
  local name=$1 modver=$2 pkg=$3
  have "$name" && return 0
  local dir="$WORK/$name"
  mkdir -p "$dir"
  cd "$dir"
  if [ ! -f go.mod ]; then
    go mod init "example.invalid/ks-$name" >/dev/null 2>&1
  fi
  log "fetching $modver"
  go get -tool "$modver" >&2
  log "building $name"
  local t0=$SECONDS
  go build -trimpath -ldflags "-s -w" -o "$BIN/$name.tmp" "$pkg"
  mv "$BIN/$name.tmp" "$BIN/$name"
  log "built $name in $((SECONDS - t0)) s"
}

START=$SECONDS
log "cache: $BIN"
build_tool etcd "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" go.etcd.io/etcd/server/v3
build_k8s
build_tool kwok "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
build_tool crictl "sigs.k8s.io/cri-tools/cmd/crictl@v$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
log "all binaries present after $((SECONDS - START)) s"
echo "$BIN"
