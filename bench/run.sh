#!/usr/bin/env bash
# The one command for the benchmark suite: installs what it needs (bench/setup.sh), then runs
# every figure beside its anchor and writes BENCHMARKS.md and bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
exec cargo bench --bench suite "$@"
