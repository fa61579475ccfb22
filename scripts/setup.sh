#!/usr/bin/env bash
# Installs everything arpix needs on Debian/Ubuntu: the system packages (oneDNN, a C++ toolchain,
# Fashion-MNIST, clang for WebAssembly), the npm dependencies, the native addon and the WebAssembly
# backend. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libdnnl-dev dataset-fashion-mnist g++ make python3 python3-torch clang-14 lld-14)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "arpix setup: installing ${missing[*]} with apt-get"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi
# Debian's chromium, for the browser tests of arpix serve (driven by playwright-core; no browser
# is ever downloaded). Without it those tests are skipped and say why.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'install ok installed'; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "arpix setup: installing chromium with apt-get (for the browser tests)"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
fi

npm ci
# The WebAssembly backend (wasm/*.c → wasm/build/arpix.wasm) with clang-14 and wasm-ld-14.
npm run build:wasm
# npm ci builds the addon through the install script; build again loudly so a failure is visible.
npm run build:native
# Node's entry registers both backends; each must have loaded.
node --import tsx -e "import('./src/backends/node.ts').then(() => import('./src/backends/registry.ts')).then((r) => { for (const b of ['native', 'wasm']) if (!r.registeredBackend(b)) { console.error('arpix setup: the ' + b + ' backend did not load'); process.exit(1); } console.log('arpix setup: native and wasm backends ready'); })"
