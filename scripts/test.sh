#!/usr/bin/env bash
# Every check FerrumDB has, in the order CI runs them. Installs what it needs.
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== install: the package (editable, release build) and the test dependencies"
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

echo "== rust: format, lints, tests"
cargo fmt --check
cargo clippy --all-targets --all-features --quiet -- -D warnings
cargo test --quiet

echo "== python: tests (including the stub check and the CLI)"
python3 -m pytest -q
