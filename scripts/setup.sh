#!/usr/bin/env bash
# Install everything ariel needs on a Debian/Ubuntu machine: the Arm GNU toolchain with
# newlib, QEMU for Arm, CMake (apt, only what is missing), and a virtual environment at .venv
# with ariel installed editable, so that .venv/bin/ariel exists; with a Renode copy beside the
# repository (../shared/renode), what it needs too (scripts/setup_renode.sh). Safe to run
# again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v arm-none-eabi-gcc >/dev/null || missing+=(gcc-arm-none-eabi)
if ! command -v arm-none-eabi-gcc >/dev/null ||
    [ ! -f "$(arm-none-eabi-gcc -print-file-name=libc_nano.a)" ]; then
    missing+=(libnewlib-arm-none-eabi)
fi
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v make >/dev/null || missing+=(make)
command -v gcc >/dev/null || missing+=(gcc)
# The exported libraries' tests build them the way a user's CMake project does.
command -v cmake >/dev/null || missing+=(cmake)
# ... and an exported Arduino library's sketch with Debian's Arduino builder and AVR core,
# run in simavr (the only Arduino core Debian packages).
command -v arduino-builder >/dev/null || missing+=(arduino-builder)
[ -d /usr/share/arduino/hardware/arduino/avr ] || missing+=(arduino-core-avr)
command -v simavr >/dev/null || missing+=(simavr)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing ${missing[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: ariel needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
scripts/setup_renode.sh
echo "setup: ready ($(.venv/bin/ariel --version))"
