"""Named fault points, so crash tests can stop a process at an exact line and kill it there.

Off unless the environment sets ``FAULT_HANG_AT`` (never in production): a comma-separated list
of ``point[:n]`` (``n`` defaults to 1). The ``n``-th time this process reaches ``point`` it writes
the file ``$FAULT_MARKER_DIR/<point>`` and then sleeps until it is killed. The test waits for the
marker, sends SIGKILL, and checks that a restarted process finishes the work correctly.

Points: ``import.batch`` (inside a batch's transaction, rows written, not committed),
``export.write`` (half-way through writing a snapshot file), ``annotation.submit`` (inside the
submit transaction) and ``annotation.submitted`` (committed, before the HTTP answer).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in spec.split(","):
        name, _, nth = item.strip().partition(":")
        if name:
            points[name] = int(nth or 1)
    return points


_POINTS = _parse(os.environ.get("FAULT_HANG_AT", ""))
_hits: dict[str, int] = {}
_lock = threading.Lock()


def fault_point(name: str) -> None:
    """Hang here forever when ``FAULT_HANG_AT`` names this point (test-only; a no-op otherwise)."""
    if not _POINTS or name not in _POINTS:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] != _POINTS[name]:
            return
    marker = Path(os.environ.get("FAULT_MARKER_DIR", "/tmp")) / name
    marker.write_text(str(os.getpid()))
    while True:
        time.sleep(3600)
