#!/usr/bin/env bash
# The README's test command (`npm test`): provisions what the tests need on a fresh machine, then runs
# every check: proto lint, generated code up to date, typecheck, and the whole vitest suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/vitest ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing npm dependencies"
  npm ci --no-audit --no-fund
fi

# MariaDB and Redis: test/global-setup.ts runs them as plain processes on free ports (no Docker, no system
# service); only the binaries are needed. Install them when missing (Debian, as in CI).
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
missing=()
{ has mariadbd && has mariadb-install-db; } || missing+=(mariadb-server)
has redis-server || missing+=(redis-server)
# Podman's Docker-compatible API for the DOCKER runner (runc, and a static busybox for the local test image).
has podman || missing+=(podman)
has runc || missing+=(runc)
{ [ -x /bin/busybox ] || [ -x /usr/bin/busybox ]; } || missing+=(busybox-static)
# Headless Chromium for the gRPC-Web browser test (playwright-core drives /usr/bin/chromium).
has chromium || missing+=(chromium)
# PostgreSQL (the store's contract and the e2e-postgres project); Debian keeps initdb/postgres off PATH.
has_postgres() { compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || { has postgres && has initdb; }; }
has_postgres || missing+=(postgresql)
# pip, to install moto server below (the AWS-mode tests' local endpoint) when it is missing.
has_moto() { has moto_server || python3 -c 'import moto.server' >/dev/null 2>&1; }
{ has_moto || python3 -m pip --version >/dev/null 2>&1; } || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (test services)"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  if ! command -v apt-get >/dev/null 2>&1 || { [ ${#sudo[@]} -gt 0 ] && ! sudo -n true 2>/dev/null; }; then
    echo "The tests need ${missing[*]} (mariadbd, mariadb-install-db, redis-server, podman, runc, busybox, chromium, postgres) and this script can install" >&2
    echo "them only with apt-get as root (or passwordless sudo). Install them, then run it again." >&2
    exit 1
  fi
  apt_log=$(mktemp)
  # Wait for a concurrent apt/dpkg (another run installing the same) instead of failing on its lock.
  apt_install() {
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y "${missing[@]}" >>"$apt_log" 2>&1
  }
  # Package lists are refreshed only when the install fails without them (fresh machine, stale lists).
  if ! apt_install && ! { "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update >>"$apt_log" 2>&1 && apt_install; }; then
    tail -n 25 "$apt_log" >&2
    echo "Could not install ${missing[*]} with apt-get (full log: $apt_log)." >&2
    exit 1
  fi
  rm -f "$apt_log"
  { has mariadbd && has mariadb-install-db && has redis-server && has podman && has runc && has chromium && has_postgres; } || {
    echo "apt-get installed ${missing[*]} but mariadbd / mariadb-install-db / redis-server / podman / runc / chromium / postgres are still missing" >&2
    exit 1
  }
fi

# moto server (test/helpers/moto.ts) from PyPI; Debian's Python is "externally managed", hence the fallbacks.
if ! has_moto; then
  echo "== installing moto[server] (local AWS endpoint for the tests)"
  pip_log=$(mktemp)
  pip_install() { python3 -m pip install --quiet --disable-pip-version-check "$@" 'moto[server]' >>"$pip_log" 2>&1; }
  if ! pip_install && ! pip_install --break-system-packages && ! pip_install --user --break-system-packages && ! pip_install --user; then
    tail -n 25 "$pip_log" >&2
    echo "Could not install moto[server] with pip (full log: $pip_log). Install it (python3 -m pip install 'moto[server]') and run again." >&2
    exit 1
  fi
  rm -f "$pip_log"
fi

echo "== buf lint"
npx buf lint

echo "== generated code matches proto/"
gen_tmp=$(mktemp -d)
trap 'rm -rf "$gen_tmp"' EXIT
npx buf generate -o "$gen_tmp"
if ! diff -r "$gen_tmp/worker-container/src/gen" worker-container/src/gen >/dev/null; then
  echo "worker-container/src/gen is stale: run 'npm run gen' and commit the result" >&2
  exit 1
fi

echo "== typecheck"
npx tsc --noEmit -p .

echo "== tests"
report="$gen_tmp/vitest.json"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
if [ -f "$report" ]; then
  # One plain summary line, whatever the reporter prints. A file that fails before its tests run (e.g. a server
  # that did not start) counts as a failure; skipped tests are reported (there should be none).
  node -e 'const r=require(process.argv[1]);const failed=r.numFailedTests+r.numFailedTestSuites;const skipped=r.numPendingTests+r.numTodoTests;console.log(`tests: ${r.numPassedTests} passed, ${failed} failed${skipped?`, ${skipped} skipped`:""}`)' "$report"
fi
exit $status
