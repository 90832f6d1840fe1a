#!/usr/bin/env bash
# Local stand-ins for the images compose.yaml pulls (redis:7, postgres:16), on machines that cannot pull images.
# Built on the engine that DOCKER_HOST names, from the local base image (scripts/docker-base.sh, imported as
# node:<major>-slim by scripts/docker-engine.sh), with Debian bookworm's packages:
#   amk-standin/redis:7       redis-server 7.0
#   amk-standin/postgres:15   PostgreSQL 15 (bookworm and its backports have no 16; apt.postgresql.org is not
#                             reachable here), so it is not tagged postgres:16: the compose test swaps the images
#                             in with an override file.
# Each honours what compose.yaml uses of the official image: redis-server as the command (protected mode off, as
# the official build has it) and redis-cli; POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB on first start, data
# in /var/lib/postgresql/data, pg_isready, port 5432 on every interface with password (scram) logins, SIGINT to
# stop. Both run their server as an unprivileged user. The images are saved to one tarball outside the clone
# (AMK_DOCKER_CACHE, default /var/cache/amk-ci), loaded from it when present and rebuilt only when it is missing.
#   DOCKER_HOST=unix://DIR/docker.sock scripts/docker-standins.sh   # prints the tarball's path
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${AMK_DOCKER_CACHE:-/var/cache/amk-ci}"
base_tag="node:$(node -p 'process.versions.node.split(".")[0]')-slim"
base="$(bash "$here/docker-base.sh")"
# Rebuilt when this recipe or the base changes.
key="$(sha256sum "$0" | cut -c1-12)-$(basename "$base" .tar)"
tarball="$cache/standins-$key.tar"
images=(amk-standin/redis:7 amk-standin/postgres:15)

present() { for image in "${images[@]}"; do docker image inspect "$image" >/dev/null 2>&1 || return 1; done; }
# The last line on stderr says where the images came from (the compose test prints it).
if present; then echo 'stand-ins: already on the engine' >&2; echo "$tarball"; exit 0; fi
if [ -s "$tarball" ]; then
  docker load -q -i "$tarball" >&2
  echo 'stand-ins: loaded from the cache' >&2
  echo "$tarball"
  exit 0
fi

docker image inspect "$base_tag" >/dev/null 2>&1 || docker import "$base" "$base_tag" >/dev/null
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"; docker rm -f "amk-standin-build-$$" >/dev/null 2>&1 || true' EXIT
mkdir -p "$work/redis" "$work/postgres"

cat >"$work/redis/entrypoint.sh" <<'EOF'
#!/bin/sh
# redis-server as user redis with protected mode off (the official image builds Redis with it off: clients come
# from other containers); a config file stays the first argument, later arguments override.
set -eu
case "${1:-}" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  shift
  case "${1:-}" in *.conf) conf="$1"; shift; set -- redis-server "$conf" --protected-mode no "$@" ;;
    *) set -- redis-server --protected-mode no "$@" ;; esac
  if [ "$(id -u)" = 0 ]; then
    chown redis:redis .
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
EOF

cat >"$work/postgres/entrypoint.sh" <<'EOF'
#!/bin/sh
# As the official image: on first start (empty PGDATA) initdb with POSTGRES_USER and POSTGRES_PASSWORD, create
# POSTGRES_DB, listen on every interface with scram logins from other hosts; then run postgres as user postgres.
set -eu
case "${1:-}" in -*) set -- postgres "$@" ;; esac
if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set for the first start}"
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres -c "CREATE DATABASE \"$db\""
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo 'PostgreSQL init process complete; ready for start up.'
fi
exec "$@"
EOF
chmod 0755 "$work/redis/entrypoint.sh" "$work/postgres/entrypoint.sh"

# One container per image, then `docker commit` with the metadata: with vfs every Dockerfile step copies the whole
# file system (about 40 s each here), this way an image costs one copy and one commit.
# build TAG DIR INSTALL CHANGE...: runs INSTALL in the base with DIR at /standin, commits with the CHANGEs.
# `docker commit` takes no STOPSIGNAL: that one is set on the container, whose configuration the commit keeps.
build() {
  local tag=$1 dir=$2 install=$3; shift 3
  local name="amk-standin-build-$$"
  local changes=() run=()
  for change in "$@"; do
    case "$change" in STOPSIGNAL\ *) run+=(--stop-signal "${change#STOPSIGNAL }") ;; *) changes+=(--change "$change") ;; esac
  done
  docker run --name "$name" "${run[@]}" --network=host -v "$dir:/standin:ro" "$base_tag" sh -ec \
    "export DEBIAN_FRONTEND=noninteractive; $install; install -m 0755 /standin/entrypoint.sh /usr/local/bin/docker-entrypoint.sh" >&2
  docker commit "${changes[@]}" "$name" "$tag" >/dev/null
  docker rm "$name" >/dev/null
}
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

build amk-standin/redis:7 "$work/redis" \
  'apt-get update
   apt-get install -y --no-install-recommends redis-server
   rm -rf /var/lib/apt/lists/*
   mkdir /data
   chown redis:redis /data' \
  "ENV PATH=$path" 'WORKDIR /data' 'VOLUME /data' 'EXPOSE 6379' \
  'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["redis-server"]'
# Debian's packaging would create a cluster "main" under /var/lib/postgresql/15: the entrypoint makes its own.
build amk-standin/postgres:15 "$work/postgres" \
  'mkdir -p /etc/postgresql-common
   echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
   apt-get update
   apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold postgresql-15
   rm -rf /var/lib/apt/lists/*
   mkdir -p /var/lib/postgresql/data /var/run/postgresql
   chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql
   chmod 700 /var/lib/postgresql/data' \
  "ENV PATH=/usr/lib/postgresql/15/bin:$path" 'ENV PGDATA=/var/lib/postgresql/data' 'ENV LANG=C.UTF-8' \
  'VOLUME /var/lib/postgresql/data' 'EXPOSE 5432' 'STOPSIGNAL SIGINT' \
  'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]'

docker save -o "$tarball.tmp" "${images[@]}"
mv "$tarball.tmp" "$tarball"
echo 'stand-ins: built and cached' >&2
echo "$tarball"
