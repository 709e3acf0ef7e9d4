#!/usr/bin/env bash
# Run the whole test suite. Uses DATABASE_URL and REDIS_URL when set (PostgreSQL, Redis);
# by default SQLite with no broker. Browser tests need /usr/bin/chromium (apt-get install chromium)
# and are skipped, with the reason, without it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements-dev.sha" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$VENV/.requirements-dev.sha"
fi
exec "$VENV/bin/python" -m pytest "$@"
