#!/usr/bin/env bash
# Installs the build tools the workspace needs, each only when missing or at the wrong version,
# so a second run takes a second. Versions: ../shared/reference/stack.md (rustc 1.95 pins).
set -euo pipefail
cd "$(dirname "$0")/.."

# The wasm-bindgen CLI is installed at the version Cargo.lock pins for the crate.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print}' Cargo.lock)
# 0.3.11 does not build on rustc 1.95.
CARGO_LEPTOS_VERSION=0.3.10

# The browser bundle, and the static supervisor that Kubernetes jobs run inside users' images.
static="$(uname -m)-unknown-linux-musl"
for target in wasm32-unknown-unknown "$static"; do
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done
# musl-gcc: the supervisor's TLS (aws-lc) compiles C for the static target. bubblewrap: the
# sandbox every local job runs in (`make run`'s embedded mode); rclone and fuse3's fusermount
# mount services' `mount` folders into it.
apt_missing=()
command -v musl-gcc >/dev/null || apt_missing+=(musl-tools)
command -v bwrap >/dev/null || apt_missing+=(bubblewrap)
command -v rclone >/dev/null || apt_missing+=(rclone)
command -v fusermount3 >/dev/null || command -v fusermount >/dev/null || apt_missing+=(fuse3)
if [ ${#apt_missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

# The CLI must equal the wasm-bindgen crate in Cargo.lock exactly, or every front build fails.
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  # No --locked: this release's own lockfile names a crate the index lacks (stack.md §2).
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# no_downloads: a missing external tool fails loudly instead of fetching from the network.
# Unoptimised and without debug info: cargo-leptos only runs cargo, wasm-bindgen and wasm-opt
# and minifies one small CSS file, and its release build was most of a first `make run`
# (README, Set-up).
if [ "$(cargo-leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  CARGO_PROFILE_DEV_DEBUG=0 cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" \
    --locked --features no_downloads --debug --force
fi
