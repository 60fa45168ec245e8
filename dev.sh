#!/usr/bin/env bash
# Contact Hub: the two set-up commands.
#   ./dev.sh run    install what the hub needs, migrate, seed demo data, start the hub
#   ./dev.sh test   install what the tests need (system tools, Python deps), lint, run the tests
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
  # Reinstall only when pyproject.toml changed (its hash is the stamp).
  local extra=$1 stamp
  stamp="$VENV/.stamp-$extra-$(sha256sum pyproject.toml | cut -c1-16)"
  [ -x "$PY" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  if [ ! -f "$stamp" ]; then
    log "installing Python dependencies ($extra)"
    "$PY" -m pip install -q --upgrade pip
    if [ "$extra" = "run" ]; then "$PY" -m pip install -q -e .; else "$PY" -m pip install -q -e ".[$extra]"; fi
    rm -f "$VENV"/.stamp-"$extra"-*
    touch "$stamp"
  fi
}

web_assets() {
  # htmx and its SSE extension come from npm at install time, never from the repo.
  if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    log "installing web assets (npm)"
    (cd web && npm ci --silent --no-audit --no-fund)
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  run)
    apt_install tesseract-ocr espeak-ng
    python_deps run
    web_assets
    exec "$VENV/bin/contacthub" run "$@"
    ;;
  test)
    apt_install sip-tester tesseract-ocr espeak-ng sox chromium kannel-extras dovecot-imapd hylafax-client
    python_deps test
    web_assets
    log "ruff"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    log "pytest"
    exec "$PY" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh run|test [args…]" >&2
    exit 2
    ;;
esac
