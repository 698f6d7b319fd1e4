#!/usr/bin/env bash
# `deno task bench`: runs every benchmark under bench/ (each prints its figures beside its anchor).
# A name narrows the run: `deno task bench watchdog`; what follows it goes to that benchmark.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export NO_COLOR=1
KS_KUBE_BIN=$(bash scripts/build-kube.sh --print-dir)
export KS_KUBE_BIN
deno run -A scripts/bundle.ts >&2 || exit 1
# The arguments after the name go to the benchmark (`deno task bench footprint --real`).
name=
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  name=$1
  shift
fi
status=0
for f in bench/*_bench.ts; do
  [ -n "$name" ] && [[ "$f" != *"$name"* ]] && continue
  echo "== $f"
  deno run -A "$f" "$@" || status=1
done
exit $status
