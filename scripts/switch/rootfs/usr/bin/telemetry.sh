#!/bin/bash
# The native telemetry container under systemd, as SONiC's docker_image_ctl.j2 generates it:
# start creates (or starts) the Docker container `telemetry`, wait follows it, stop stops it.
CONTAINER=telemetry
IMAGE=${KS_NATIVE_IMAGE:-docker-sonic-telemetry:latest}
log() { logger -t "$CONTAINER" "$*" 2>/dev/null || echo "$*" >&2; }

start() {
  if docker inspect --type container "$CONTAINER" >/dev/null 2>&1; then
    log "starting existing $CONTAINER container"
    docker start "$CONTAINER" >/dev/null
    return
  fi
  log "creating new $CONTAINER container with $IMAGE"
  docker create --name "$CONTAINER" --net=host --uts=host \
    -e RUNTIME_OWNER=local \
    -v /var/run/redis:/var/run/redis:rw -v /etc/sonic:/etc/sonic:ro \
    --tmpfs /tmp --tmpfs /var/tmp \
    "$IMAGE" >/dev/null || exit 1
  docker start "$CONTAINER" >/dev/null
}

case "${1:-}" in
start) start ;;
wait) exec docker wait "$CONTAINER" >/dev/null ;;
stop) docker stop "$CONTAINER" >/dev/null ;;
*)
  echo "Usage: $0 {start|wait|stop}"
  exit 1
  ;;
esac
