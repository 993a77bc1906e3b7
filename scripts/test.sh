#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs and starts what the tests need
# (each setup script is idempotent and quick when already done), then format, lint, build, test.
# Usage: scripts/test.sh            # everything
#        SKIP_LINT=1 scripts/test.sh  # skip fmt/clippy (local iterations)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export AZLOG_TOOLS="$root/.tools"
mkdir -p "$AZLOG_TOOLS"

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }

step "test environment"
scripts/setup-test-env.sh
# shellcheck disable=SC1091
source "$AZLOG_TOOLS/env.sh"

if [ -z "${SKIP_LINT:-}" ]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

step "cargo build (plugins are loaded as built .so files by the tests)"
cargo build --workspace --locked

# The plugin libraries the tests load are the ones just built (no nested cargo build inside tests).
export AZLOG_PLUGIN_DIR="${CARGO_TARGET_DIR:-$root/target}/debug"

step "cargo test"
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"
