"""Small helpers shared by scenarios: timing, medians, percentiles, peak memory, a gunicorn server."""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """``gunicorn annotator.wsgi`` on a loopback port, in a process group of its own.

    ``start()`` returns once a worker answers ``/healthz`` (any status: a 503 still means the app
    is up); ``stop()`` sends SIGTERM, ``kill()`` SIGKILL to the master and its workers. The same
    port can be started again after a stop or kill. Used by the bench scenarios and fault tests.
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        threads: int = 1,
        env: dict | None = None,
        port: int | None = None,
        timeout: int = 600,
        log: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.workers, self.threads, self.timeout = workers, threads, timeout
        self.env = {
            **os.environ,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, *, wait: float = 60) -> Gunicorn:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        args = [gunicorn, "annotator.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers)]
        args += ["--threads", str(self.threads), "-k", "gthread", "--keep-alive", "30", "--log-level", "warning"]
        args += ["--timeout", str(self.timeout)]
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.time() + wait
        while time.time() < deadline and self.proc.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                return self
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"gunicorn did not start on port {self.port}")

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the master and every worker: requests in flight get no answer."""
        self._signal(signal.SIGKILL)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
