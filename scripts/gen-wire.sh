#!/usr/bin/env bash
# Regenerates wire/src/generated/ from wire/schema/*.fbs.
#
# flatc is built from source by the pinned `flatc` crate (flatc 23.5.26) in
# wire/codegen/, so every machine generates byte-identical code. The output is
# flatc's, unformatted (the generated modules are #[rustfmt::skip]), so it does
# not depend on the rustfmt version either. Running this twice changes nothing.
#
# Needs: cargo, a C++ compiler and cmake (installed through apt-get if absent).
# CODEGEN_TARGET_DIR overrides where flatc is built (default: target/wire-codegen).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
schema="$root/wire/schema"
out="$root/wire/src/generated"
target="${CODEGEN_TARGET_DIR:-$root/target/wire-codegen}"

if ! command -v cmake >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y cmake || { $sudo apt-get update && $sudo apt-get install -y cmake; }
fi

# The codegen crate prints the path of the flatc it built.
flatc="$(CARGO_TARGET_DIR="$target" cargo run --quiet --release --locked \
  --manifest-path "$root/wire/codegen/Cargo.toml")"
version="$("$flatc" --version)"
if [ "$version" != "flatc version 23.5.26" ]; then
  echo "gen-wire: expected flatc 23.5.26, got: $version" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# rpc.fbs includes the per-service schemas; --gen-all puts them in one module.
"$flatc" --rust --gen-all -o "$tmp" "$schema/rpc.fbs"
"$flatc" --rust -o "$tmp" "$schema/peer.fbs"

mkdir -p "$out"
for f in rpc_generated.rs peer_generated.rs; do
  # Replace only when changed, so file times stay put on a no-op run.
  if ! cmp -s "$tmp/$f" "$out/$f"; then
    cp "$tmp/$f" "$out/$f"
    echo "gen-wire: wrote wire/src/generated/$f"
  fi
done
# Nothing else belongs in the generated directory.
for f in "$out"/*; do
  case "$(basename "$f")" in
    rpc_generated.rs | peer_generated.rs | mod.rs) ;;
    *) rm -f "$f"; echo "gen-wire: removed stale $f" ;;
  esac
done
