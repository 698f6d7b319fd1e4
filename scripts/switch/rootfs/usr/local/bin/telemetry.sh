#!/bin/bash
# Native (v0) launcher, as SONiC's files/scripts/service_mgmt.sh: hands the verb to the
# docker_image_ctl-generated /usr/bin/telemetry.sh. KubeSonic replaces this file with the stub.
SERVICE=telemetry
case "${1:-}" in
start | wait | stop) exec /usr/bin/$SERVICE.sh "$1" ;;
*)
  echo "Usage: $0 {start|wait|stop}"
  exit 1
  ;;
esac
