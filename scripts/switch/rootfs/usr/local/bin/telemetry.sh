#!/bin/bash
# Native (v0) launcher: hands the verb and the ASIC id ($DEV, per-namespace units) to the
# docker_image_ctl-generated /usr/bin/telemetry.sh.
SERVICE=telemetry
DEV=$2
case "${1:-}" in
start | wait | stop) exec /usr/bin/$SERVICE.sh "$1" $DEV ;;
*)
  echo "Usage: $0 {start|wait|stop} [asic]"
  exit 1
  ;;
esac
