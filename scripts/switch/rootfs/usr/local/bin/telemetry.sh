#!/bin/bash
# Native (v0) launcher: hands the verb to the docker_image_ctl-generated /usr/bin/telemetry.sh.
SERVICE=telemetry
case "${1:-}" in
start | wait | stop) exec /usr/bin/$SERVICE.sh "$1" ;;
*)
  echo "Usage: $0 {start|wait|stop}"
  exit 1
  ;;
esac
