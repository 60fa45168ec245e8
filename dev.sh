#!/usr/bin/env bash
# Contact Hub: the two set-up commands.
#   ./dev.sh run    install what the hub needs, migrate, seed demo data, start the hub
#   ./dev.sh test   install what the tests need (system tools, Python deps), lint, run the tests
#   ./dev.sh lock   (maintainers) resolve pyproject.toml again into the pinned requirements files
#                   (--upgrade: to the newest releases)
# Extra arguments after `test` go to pytest; after `run` they go to `contacthub run`.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY=$VENV/bin/python

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  # Install Debian packages that are missing; needs root (or sudo).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_deps() {
  # Install the pinned set from the lock (requirements.txt to run, requirements-test.txt to
  # test), then the project itself without resolving again. A new release on the registry
  # cannot change a fresh install; `./dev.sh lock` upgrades on purpose. Reinstall only when
  # the lock or pyproject.toml changed (their hash is the stamp).
  local extra=$1 lock stamp
  lock=requirements.txt
  [ "$extra" = "test" ] && lock=requirements-test.txt
  stamp="$VENV/.stamp-$extra-$(cat "$lock" pyproject.toml | sha256sum | cut -c1-16)"
  [ -x "$PY" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  if [ ! -f "$stamp" ]; then
    log "installing Python dependencies from $lock"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -r "$lock"
    # setuptools' notice about editable installs reads like a fault to someone starting out
    PYTHONWARNINGS="ignore:Editable installation" "$PY" -m pip install -q --no-deps -e .
    rm -f "$VENV"/.stamp-*
    touch "$stamp"
  fi
}

lock() {
  # Resolve pyproject.toml again into the two locks, keeping the pinned versions that still
  # fit (pass --upgrade to move everything to the newest releases); the test lock is held to
  # the run lock's versions, so both commands run the same code.
  [ -x "$VENV/bin/uv" ] || { python_deps test; "$PY" -m pip install -q uv; }
  local compile=("$VENV/bin/uv" pip compile pyproject.toml -q --python-version 3.11
    --custom-compile-command "./dev.sh lock" "$@")
  "${compile[@]}" -o requirements.txt
  "${compile[@]}" --extra test -c requirements.txt -o requirements-test.txt
  log "requirements.txt and requirements-test.txt updated: review the diff, test, commit"
}

web_assets() {
  # htmx, its SSE extension, Chart.js and CodeMirror come from npm at install time, never from
  # the repo; esbuild bundles the dialog editor (web/editor/) into node_modules/.build.
  if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    log "installing web assets (npm)"
    (cd web && npm ci --silent --no-audit --no-fund)
  fi
  local bundle=web/node_modules/.build/dialog_editor.js
  if [ ! -f "$bundle" ] || [ web/editor/dialog_editor.js -nt "$bundle" ] || [ web/node_modules/.package-lock.json -nt "$bundle" ]; then
    log "bundling the dialog editor (esbuild)"
    (cd web && node_modules/.bin/esbuild editor/dialog_editor.js --bundle --minify --format=iife \
      --log-level=warning --outfile=node_modules/.build/dialog_editor.js)
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  run)
    apt_install tesseract-ocr espeak-ng graphviz
    python_deps run
    web_assets
    exec "$VENV/bin/contacthub" run "$@"
    ;;
  test)
    apt_install sip-tester tesseract-ocr espeak-ng sox chromium kannel-extras dovecot-imapd hylafax-client graphviz
    python_deps test
    web_assets
    log "ruff"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    log "pytest"
    exec "$PY" -m pytest "$@"
    ;;
  lock)
    lock "$@"
    ;;
  *)
    echo "usage: ./dev.sh run|test|lock [args…]" >&2
    exit 2
    ;;
esac
