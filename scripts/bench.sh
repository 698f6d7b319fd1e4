#!/usr/bin/env bash
# `deno task bench`: runs every benchmark under bench/ (each prints its figures beside its anchor).
# A name narrows the run: `deno task bench watchdog`.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export NO_COLOR=1
KS_KUBE_BIN=$(bash scripts/build-kube.sh --print-dir)
export KS_KUBE_BIN
deno run -A scripts/bundle.ts >&2 || exit 1
status=0
for f in bench/*_bench.ts; do
  [ -n "${1:-}" ] && [[ "$f" != *"$1"* ]] && continue
  echo "== $f"
  deno run -A "$f" || status=1
done
exit $status
