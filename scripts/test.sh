#!/usr/bin/env bash
# Every check FerrumDB has, in the order CI runs them. Installs what it needs,
# and says what it is about to install before it does.
#   bash scripts/test.sh          # print the plan, then install and run everything
#   bash scripts/test.sh --plan   # print the plan only: installs and runs nothing
set -euo pipefail
cd "$(dirname "$0")/.."

plan_only=0
case "${1:-}" in
    --plan) plan_only=1 ;;
    "") ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$1' (usage: bash scripts/test.sh [--plan])" >&2; exit 2 ;;
esac

have_browser() {
    command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || [ -n "${CHROMIUM:-}" ]
}
have_postgres() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}
can_apt() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

echo "== plan"
echo "  pip ($(command -v python3)): this package, editable (a release build of the Rust core),"
echo "    and its [test] extra: pytest, hypothesis, mypy, playwright, pexpect, uvloop, psycopg[binary]"
if ! command -v cargo >/dev/null 2>&1; then
    echo "  cargo is not on PATH: the build backend (maturin) downloads a Rust toolchain into"
    echo "    ~/.cache/puccinialin unless MATURIN_NO_INSTALL_RUST=1; the Rust checks below need cargo itself"
fi
if have_browser; then
    echo "  browser (Chromium, for the Studio browser test): found, nothing to install"
elif can_apt; then
    echo "  apt-get: chromium (Debian's, for the Studio browser test tests_py/test_studio_browser.py)"
else
    echo "  browser: chromium is missing and cannot be installed here: the browser test skips (it fails under CI=true)"
fi
if have_postgres; then
    echo "  postgresql: found, nothing to install"
elif can_apt; then
    echo "  apt-get: postgresql (a throwaway server for tests_py/test_postgres*.py, scripts/pg.sh)"
else
    echo "  postgresql: missing and cannot be installed here: scripts/pg.sh will stop with an error"
fi
echo "  then run: cargo fmt --check, cargo clippy, cargo test, a throwaway PostgreSQL, pytest"
if [ "$plan_only" = 1 ]; then
    exit 0
fi

echo "== install: the package (editable, release build) and the test dependencies"
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

echo "== browser: Debian's Chromium for the Studio end-to-end test (tests_py/test_studio_browser.py)"
if ! have_browser; then
    if can_apt; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is missing and cannot be installed here: the browser test skips (it fails under CI=true)"
    fi
fi

echo "== rust: format, lints, tests"
cargo fmt --check
cargo clippy --all-targets --all-features --quiet -- -D warnings
cargo test --quiet

echo "== postgresql: a throwaway server for tests_py/test_postgres*.py (scripts/pg.sh)"
pg_dir=$(mktemp -d)
trap 'bash scripts/pg.sh stop "$pg_dir"' EXIT
FERRUMDB_TEST_PG_URL=$(bash scripts/pg.sh start "$pg_dir")
export FERRUMDB_TEST_PG_URL

echo "== python: tests (including the stub check and the CLI)"
python3 -m pytest -q
