#!/usr/bin/env bash
# Emulator throughput (release build): one sender, one raw AMQP receiver, one official Rust SDK
# receiver; ~100 KB events of 100 x 1 KB records. Args: [EVENTS] [RECORDS_PER_EVENT].
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo run --release --locked -p azlog-emulator --example throughput -- "$@"
