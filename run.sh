#!/usr/bin/env bash
# Run Annotator on this machine. Needs only Python 3.11+.
# Creates .venv, installs requirements.txt, migrates (SQLite by default), loads the demo project,
# and serves on http://127.0.0.1:8000. With REDIS_URL set it also starts a Celery worker and beat.
# Safe to run again: nothing is reinstalled or duplicated.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$VENV/.requirements.sha"
fi
export DEBUG=${DEBUG:-true}
# A local key kept outside git, so sessions survive restarts of the dev server.
if [ -z "${SECRET_KEY:-}${SECRET_KEY_FILE:-}" ]; then
  [ -s .secret_key ] || "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))' > .secret_key
  export SECRET_KEY_FILE="$PWD/.secret_key"
fi
PY="$VENV/bin/python"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py seed_demo
if [ -n "${REDIS_URL:-}" ]; then
  "$VENV/bin/celery" -A annotator worker --loglevel=INFO --concurrency="${WORKERS:-2}" &
  "$VENV/bin/celery" -A annotator beat --loglevel=INFO --schedule="${TMPDIR:-/tmp}/annotator-beat" &
  trap 'kill $(jobs -p) 2>/dev/null' EXIT
fi
echo "Annotator: http://${HOST:-127.0.0.1}:${PORT:-8000}/"
"$PY" manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
