#!/usr/bin/env bash
# A private Docker engine for the container test on machines without one: dockerd with the vfs storage driver,
# no iptables and no bridge (containers use --network=host), on its own socket under DIR, with the local base
# image (scripts/docker-base.sh) imported as node:<major>-slim.
#   scripts/docker-engine.sh start DIR   # prints the DOCKER_HOST to use (unix://DIR/docker.sock)
#   scripts/docker-engine.sh stop DIR    # stops that engine and removes DIR
set -euo pipefail
action="${1:?start|stop}"
dir="${2:?DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
sock="unix://$dir/docker.sock"

case "$action" in
  start)
    command -v dockerd >/dev/null || { echo "dockerd not installed (apt-get install docker.io)" >&2; exit 3; }
    mkdir -p "$dir/data" "$dir/exec"
    dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
      --data-root="$dir/data" --exec-root="$dir/exec" -H "$sock" --pidfile="$dir/docker.pid" \
      </dev/null >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 1 120); do docker -H "$sock" info >/dev/null 2>&1 && break; sleep 0.5; done
    docker -H "$sock" info >/dev/null 2>&1 || { echo "dockerd did not start:" >&2; tail -n 20 "$dir/dockerd.log" >&2; exit 1; }
    tag="node:$(node -p 'process.versions.node.split(".")[0]')-slim"
    base="$(bash "$here/docker-base.sh")"
    docker -H "$sock" image inspect "$tag" >/dev/null 2>&1 || docker -H "$sock" import "$base" "$tag" >/dev/null
    echo "$sock"
    ;;
  stop)
    if [ -s "$dir/docker.pid" ]; then
      containers="$(docker -H "$sock" ps -aq 2>/dev/null || true)"
      [ -z "$containers" ] || docker -H "$sock" rm -f $containers >/dev/null 2>&1 || true
      pid="$(cat "$dir/docker.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    # dockerd leaves its network namespace mounted under the exec root.
    awk -v dir="$dir/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n 1 umount -l
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
