#!/bin/bash
# The native telemetry container under systemd, as SONiC's docker_image_ctl.j2 generates it:
# start creates (or starts) the Docker container `telemetry$DEV`, wait follows it, stop stops it.
# $2 = DEV, the ASIC id of a per-namespace instance (empty for the host's): the container is then
# telemetry<DEV> with namespace asic<DEV>'s database at /var/run/redis (and /var/run/redis<DEV>)
# and SONiC's NAMESPACE_* variables. The lab's ASICs share the switch's network namespace (SONiC:
# each container in its ASIC's), so ASIC N's daemon listens on 127.0.0.1:5006N instead of 50051.
DEV=${2:-}
case "$DEV" in '' | [0-9]) ;; *) echo "Usage: $0 {start|wait|stop} [asic 0-9]"; exit 1 ;; esac
CONTAINER=telemetry$DEV
IMAGE=${KS_NATIVE_IMAGE:-docker-sonic-telemetry:latest}
log() { logger -t "$CONTAINER" "$*" 2>/dev/null || echo "$*" >&2; }

start() {
  if docker inspect --type container "$CONTAINER" >/dev/null 2>&1; then
    log "starting existing $CONTAINER container"
    docker start "$CONTAINER" >/dev/null
    return
  fi
  local ns=()
  if [ -n "$DEV" ]; then
    ns=(-v "/var/run/redis$DEV:/var/run/redis$DEV:rw"
      --env "NAMESPACE_ID=$DEV" --env NAMESPACE_PREFIX=asic
      --env "NAMESPACE_COUNT=$(/usr/local/sbin/ks-num-asic)"
      --env "TELEMETRY_LISTEN=127.0.0.1:5006$DEV")
  fi
  log "creating new $CONTAINER container with $IMAGE"
  docker create --name "$CONTAINER" --net=host --uts=host \
    -e RUNTIME_OWNER=local \
    -v "/var/run/redis$DEV:/var/run/redis:rw" "${ns[@]}" -v /etc/sonic:/etc/sonic:ro \
    --tmpfs /tmp --tmpfs /var/tmp \
    "$IMAGE" >/dev/null || exit 1
  docker start "$CONTAINER" >/dev/null
}

case "${1:-}" in
start) start ;;
wait) exec docker wait "$CONTAINER" >/dev/null ;;
stop) docker stop "$CONTAINER" >/dev/null ;;
*)
  echo "Usage: $0 {start|wait|stop} [asic]"
  exit 1
  ;;
esac
