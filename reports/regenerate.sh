#!/usr/bin/env bash
# Regenerates the shipped HTML reports (reports/partition/, reports/transactions/) with the
# release build: the same command gives the same bytes. About a minute of one core for
# partition (twopc's runs are most of it), less for transactions.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
for s in partition transactions; do
    ./target/release/simkv report "scenarios/$s.toml" --seeds 1..=20 --jobs "${JOBS:-2}" \
        --out "reports/$s" --force
done
