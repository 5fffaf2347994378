#!/bin/sh
# Installs the Debian packages asymbp needs to build, test and run its demo.
# As root it installs what is missing with apt-get; otherwise it names the
# missing packages and fails.
set -e
PKGS="build-essential libopenblas-openmp-dev libdnnl-dev libyaml-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-protobuf python3-crc32c zlib1g-dev libmatio-dev libstb-dev libjpeg62-turbo-dev python3-pil clang libclang-rt-dev dataset-fashion-mnist python3 python3-numpy python3-torch python3-torchvision python3-cffi pkg-config libopenmpi-dev openmpi-bin valgrind libjs-vega chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "missing Debian packages:$missing" >&2
    echo "install them with: sudo apt-get install$missing" >&2
    exit 1
fi
