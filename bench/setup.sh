#!/usr/bin/env bash
# Installs what the benchmark suite needs on a fresh Debian machine: ngircd (the IRC anchor)
# and, when missing, the release build of meshchat. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ngircd >/dev/null 2>&1 && [ ! -x /usr/sbin/ngircd ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    # The package would start a system-wide daemon on every interface; the suite runs its own
    # on 127.0.0.1, so keep the service from starting while it installs.
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$guard" >/dev/null
        "${as_root[@]}" chmod +x "$guard"
    fi
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq ngircd
    [ -z "$guard" ] || "${as_root[@]}" rm -f "$guard"
fi
ngircd --version 2>/dev/null | head -1 || /usr/sbin/ngircd --version | head -1

if [ ! -x target/release/meshchat ]; then
    cargo build --release --bin meshchat
fi
