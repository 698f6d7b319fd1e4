#!/usr/bin/env bash
# The test command (`deno task test`): makes sure the Kubernetes binaries are built (cached), the
# tools are bundled, runs every test under test/ with real redis, kube-apiserver, dockerd,
# containerd and systemd, and ends with one line `N passed, N failed, N skipped`.
# Extra arguments go to `deno test` (e.g. a test file or `--filter NAME`).
# `--unit` first (`deno task test:unit`): only the tests that start no service (no Kubernetes
# build, no redis, docker, containerd, monit or kube; chosen by scripts/unit_tests.ts from their
# imports), for a fast loop; the same summary line. The patcher's model test runs 50 schedules
# there instead of 500 (KS_MODEL_SCHEDULES overrides).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export NO_COLOR=1

unit=0
if [ "${1:-}" = "--unit" ]; then
  unit=1
  shift
  export KS_MODEL_SCHEDULES=${KS_MODEL_SCHEDULES:-50}
fi
if [ "$unit" -eq 0 ]; then
  KS_KUBE_BIN=$(bash scripts/build-kube.sh) || { echo "test: building the Kubernetes binaries failed" >&2; echo "0 passed, 1 failed"; exit 1; }
  export KS_KUBE_BIN
fi
deno run -A scripts/bundle.ts >&2 || { echo "test: bundling failed" >&2; echo "0 passed, 1 failed"; exit 1; }

LOG=$(mktemp /tmp/ks-test-XXXXXX.log)
if [ "$unit" -eq 1 ]; then
  list=$(deno run --allow-read scripts/unit_tests.ts) || { echo "test: cannot list the unit tests" >&2; echo "0 passed, 1 failed"; exit 1; }
  mapfile -t units <<<"$list"
  targets=("${units[@]}" "$@")
else
  targets=("$@")
  [ ${#targets[@]} -eq 0 ] && targets=(test/)
fi
DENO_JOBS=${DENO_JOBS:-2} deno test -A --parallel "${targets[@]}" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}

summary=$(grep -a -E '^(ok|FAILED) \| ' "$LOG" | tail -1)
passed=$(sed -n 's/.*| \([0-9]*\) passed.*/\1/p' <<<"$summary")
failed=$(sed -n 's/.*| \([0-9]*\) failed.*/\1/p' <<<"$summary")
skipped=$(sed -n 's/.*| \([0-9]*\) ignored.*/\1/p' <<<"$summary")
if [ -z "$summary" ]; then
  passed=0
  failed=1
  echo "test: deno test printed no summary (exit $rc)" >&2
fi
[ "$rc" -ne 0 ] && [ "${failed:-0}" -eq 0 ] && failed=1
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
rm -f "$LOG"
exit "$rc"
