#!/usr/bin/env bash
# Installs the Linux cross toolchain `npm run pack` uses, from PyPI alone, and prints its bin dir:
# cargo-zigbuild (a prebuilt wheel, so nothing to compile) and zig (the `ziglang` wheel), in a
# virtualenv under the user's cache dir. Idempotent: a second run only checks the versions.
# Rust targets come from rustup (`rustup target add`), also idempotent.
set -euo pipefail

CARGO_ZIGBUILD=0.24.1
ZIGLANG=0.17.1
VENV="${MNA_CROSS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-needs-auth/cross-venv}"

if ! "$VENV/bin/python3" -m pip show cargo-zigbuild ziglang 2>/dev/null \
  | grep -qzE "Name: cargo-zigbuild.Version: $CARGO_ZIGBUILD.*Name: ziglang.Version: $ZIGLANG|Name: ziglang.Version: $ZIGLANG.*Name: cargo-zigbuild.Version: $CARGO_ZIGBUILD"; then
  echo "cross-toolchain: installing cargo-zigbuild $CARGO_ZIGBUILD and ziglang $ZIGLANG into $VENV" >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check \
    "cargo-zigbuild==$CARGO_ZIGBUILD" "ziglang==$ZIGLANG" >&2
fi

targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t" >&2
done

# cargo-zigbuild runs zig as `python3 -m ziglang` when no `zig` is on PATH: the venv's python3.
echo "$VENV/bin"
