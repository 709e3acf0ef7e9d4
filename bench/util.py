"""Small helpers shared by scenarios: timing, medians, percentiles, peak memory, CPU of processes, a gunicorn server."""

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


CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int | str) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (``None`` once the process is gone).

    fields[0] is the state (field 3 of proc(5)), [1] the parent, [2] the process group, [11] and [12]
    utime and stime in clock ticks, summed over all the process's threads."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_s(pid: int | str) -> float | None:
    """User + system CPU seconds of a process (all its threads) so far; ``None`` if it is not visible."""
    fields = stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / CLK_TCK


def group_cpu_s(pgid: int) -> float:
    """CPU seconds so far of the live processes of a process group (gunicorn's master and workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(entry.name)) and int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds all cores of this machine have spent busy since boot (``/proc/stat``: all but idle, iowait)."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK


class Gunicorn:
    """``gunicorn annotator.wsgi`` on a loopback port, in a process group of its own.

    ``start()`` returns once a worker answers ``/healthz`` (any status: a 503 still means the app
    is up); ``stop()`` sends SIGTERM, ``kill()`` SIGKILL to the master and its workers. The same
    port can be started again after a stop or kill. ``worker_class`` is gunicorn's ``-k`` (``threads`` apply to
    ``gthread`` only; ``sync`` closes the connection after each response). Used by the bench scenarios
    and fault tests; ``group_cpu_s(server.proc.pid)`` is the CPU its processes have used.
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        threads: int = 1,
        worker_class: str = "gthread",
        env: dict | None = None,
        port: int | None = None,
        timeout: int = 600,
        log: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.workers, self.threads, self.timeout = workers, threads, timeout
        self.worker_class = worker_class
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
        args += [
            "-k",
            self.worker_class,
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            "--timeout",
            str(self.timeout),
        ]
        if self.worker_class == "gthread":  # gunicorn turns any other class with --threads > 1 into gthread
            args += ["--threads", str(self.threads)]
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
