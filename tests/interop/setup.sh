#!/usr/bin/env bash
# Installs and builds the interop peers (issue 6). Idempotent; used by .ci/run and developers:
#
#   bash tests/interop/setup.sh && MODBUS_INTEROP_REQUIRED=1 cargo test --test interop
#
# * Debian packages: libmodbus-dev, socat, pkg-config, gcc (apt-get only when one is missing).
# * A Python virtualenv with the pinned tests/interop/requirements.txt (pymodbus, pyserial).
# * The libmodbus C peer compiled to target/interop/libmodbus_peer.
#
# Paths follow CARGO_TARGET_DIR when it is set (the test harness looks in the same place), else
# <repo>/target. Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
out="$target/interop"
venv="$target/interop-venv"
mkdir -p "$out"

# --- Debian packages --------------------------------------------------------------------------
need=()
for pkg in libmodbus-dev socat pkg-config gcc; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        need+=("$pkg")
    fi
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}"
fi

# --- Python virtualenv ------------------------------------------------------------------------
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv"
    "$python" -m venv "$venv"
fi
# Reinstall only when the requirements changed since the last successful install.
stamp="$venv/.requirements.stamp"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi
"$venv/bin/python" -c 'import pymodbus, serial; print("setup: pymodbus", pymodbus.__version__)'

# --- libmodbus C peer -------------------------------------------------------------------------
src="$here/peers/libmodbus_peer.c"
bin="$out/libmodbus_peer"
if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    echo "setup: compiling $bin"
    # shellcheck disable=SC2046 # pkg-config output is a list of flags.
    gcc -std=c11 -O1 -Wall -Wextra -Werror -o "$bin.tmp" "$src" $(pkg-config --cflags --libs libmodbus)
    mv "$bin.tmp" "$bin"
fi
echo "setup: libmodbus $(pkg-config --modversion libmodbus), peer at $bin"
echo "setup: ok"
