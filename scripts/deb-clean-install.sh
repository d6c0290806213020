#!/usr/bin/env bash
# The .debs on a clean Debian 12, as a new user gets them: debootstrap a minimal bookworm
# into ROOT (reused when it exists: remove it for a clean run), then in a chroot `apt-get install ./forklift_*.deb`,
# `forklift version`, and the -dev package: examples/consumer built with pkg-config and with
# CMake (shared and static) and run. Needs root, debootstrap and a Debian mirror (MIRROR);
# takes a minute or two, so it is not part of `make test` (tests/install_test.py's
# install_deb_e2e installs with dpkg --root instead).
# usage: scripts/deb-clean-install.sh [DEB_DIR] [ROOT]   (defaults: build/deb, /tmp/forklift-bookworm)
set -euo pipefail
cd "$(dirname "$0")/.."
debs=$(realpath "${1:-build/deb}")
root=${2:-/tmp/forklift-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
ls "$debs"/forklift_*.deb "$debs"/libforklift*.deb >/dev/null
[ "$(id -u)" -eq 0 ] || { echo "deb-clean-install.sh: needs root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "deb-clean-install.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }
if [ ! -x "$root/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
fi
rm -rf "$root/tmp/forklift-check"
mkdir -p "$root/tmp/forklift-check/consumer"
cp "$debs"/*.deb "$root/tmp/forklift-check/"
cp examples/consumer/main.cc examples/consumer/CMakeLists.txt examples/consumer/Makefile \
   "$root/tmp/forklift-check/consumer/"
chroot "$root" /bin/bash -euo pipefail -c '
  export DEBIAN_FRONTEND=noninteractive
  cd /tmp/forklift-check
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ./forklift_*.deb >apt-cli.log
  forklift version
  forklift run --help >/dev/null
  apt-get install -y -qq --no-install-recommends ./libforklift0.2_*.deb ./libforklift-dev_*.deb \
    g++ cmake make pkg-config >apt-dev.log
  make -s -C consumer O=/tmp/forklift-check && ./forklift-consumer j1.db
  cmake -S consumer -B shared >/dev/null && cmake --build shared >/dev/null && shared/forklift-consumer j2.db
  cmake -S consumer -B static -DFORKLIFT_STATIC=ON >/dev/null && cmake --build static >/dev/null
  static/forklift-consumer j3.db
  echo "deb-clean-install.sh: forklift and libforklift-dev work on a clean Debian 12"
'
