#!/usr/bin/env bash
# The demo: build hookrun and the busybox demo bundle, run the demo container (busybox httpd
# with a PostStart Exec hook and a PreStop HTTP GET hook declared in its annotations), fetch its
# page from inside its network namespace, show what the hooks did (describe), stop it (PreStop,
# then SIGTERM), show describe again, and delete it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "demo: run as root (the demo container uses namespaces that need it)" >&2
  exit 1
fi
# What building hookrun needs on a fresh Debian 12 (libseccomp is linked); busybox-static is
# installed by build.sh itself.
for p in libseccomp-dev pkg-config; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libseccomp-dev pkg-config; break; }
done
cargo build --release --quiet
bash rootfs-fixtures/build.sh target/fixtures >/dev/null
h() { echo "+ hookrun $*" >&2; target/release/hookrun --root /run/hookrun-demo "$@"; }
trap 'target/release/hookrun --root /run/hookrun-demo delete --force demo 2>/dev/null || true' EXIT

h run --detach --bundle target/fixtures/demo demo
h state demo
h list
pid=$(target/release/hookrun --root /run/hookrun-demo state demo | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
echo "+ GET http://127.0.0.1:8080/ from inside the container's network namespace" >&2
for _ in $(seq 50); do
  if nsenter --net="/proc/$pid/ns/net" busybox wget -qO- http://127.0.0.1:8080/index.html; then
    break
  fi
  sleep 0.1
done
h describe demo
h stop demo
h describe demo
h delete demo
