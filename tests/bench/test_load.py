"""The queue benchmarks' load generator and CPU accounting (``bench/load.py``, ``bench/util.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import load
from bench.util import Gunicorn, group_cpu_s, machine_busy_s
from projects.assignment.models import Task
from projects.core.models import Role
from projects.core.services import token_create
from tests import factories
from tests.faults.conftest import server_env

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


def _run(**cpu_s: float) -> dict:
    return {
        "next_ms": [10.0] * 50,
        "submit_ms": [30.0] * 50,
        "cpu_s": cpu_s,
        "wall_s": 2.0,
        "rest_cores": 0.5,
        "load_before": 1.0,
        "client_procs": 1,
    }


def test_cost_figures_split_cpu_per_request_and_bound_the_mean(monkeypatch):
    monkeypatch.setattr(load, "CORES", 2)
    # 100 requests: 0.3 s gunicorn, 0.2 s backends, 0 for PostgreSQL's own processes, 0.05 s client.
    figures = load.cost_figures([_run(gunicorn=0.3, postgres=0.2, pg_other=0.0, client=0.05)], clients=8)
    assert figures["req_per_s"] == 50
    assert (figures["cpu_ms_gunicorn"], figures["cpu_ms_postgres"], figures["cpu_ms_client"]) == (3.0, 2.0, 0.5)
    assert "cpu_ms_pg_other" not in figures  # omitted when nothing was used
    assert figures["cpu_ms_total"] == 5.5
    assert figures["mean_ms"] == 20.0
    assert figures["bound_ms"] == 22.0  # 8 clients x 5.5 ms / 2 cores
    assert figures["bound_left_ms"] == round(8 * 5.5 / 1.5, 2)  # 0.5 cores taken by the rest
    assert figures["mean_over_bound"] == round(20 / 22, 2)


def test_cost_figures_bound_is_at_least_one_request_of_server_cpu(monkeypatch):
    monkeypatch.setattr(load, "CORES", 2)
    figures = load.cost_figures([_run(gunicorn=0.3, postgres=0.2, pg_other=0.01, client=0.05)], clients=1)
    assert figures["cpu_ms_pg_other"] == 0.1
    assert figures["bound_ms"] == 5.1  # one client waits for its own request's server CPU, not half of it


def test_cost_figures_bound_takes_off_the_think_time(monkeypatch):
    monkeypatch.setattr(load, "CORES", 2)
    run = {**_run(gunicorn=0.3, postgres=0.2, pg_other=0.0, client=0.05), "think_ms": 8.0}
    figures = load.cost_figures([run], clients=8)
    assert figures["bound_ms"] == 18.0  # 22 ms of CPU queueing less 4 ms thinking per request (8 per loop)
    run["think_ms"] = 100.0
    assert load.cost_figures([run], clients=8)["bound_ms"] == 5.0  # never below one request's server CPU


@needs_proc
def test_group_cpu_counts_every_process_of_the_group_and_the_machine_busy_time():
    # A process and its child, in a session of their own, each burn 0.3 s of CPU then sleep.
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(30)"
    parent = f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {burn!r}])\n{burn}"
    busy0 = machine_busy_s()
    proc = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while group_cpu_s(proc.pid) < 0.55 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group_cpu_s(proc.pid) >= 0.55
        assert group_cpu_s(proc.pid) < 1.0  # sleeping now: the count stops
        assert machine_busy_s() - busy0 >= 0.55
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def web_env(transactional_db, settings):
    return server_env(settings, "bench-load", REDIS_URL="")


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("client_threads", [0, 2], ids=["threads", "processes"])
def test_run_load_hands_every_task_once_and_accounts_the_cpu(web_env, client_threads):
    from django.db import connection

    project = factories.ProjectFactory()
    project.overlap = 1
    project.save(update_fields=["overlap"])
    for i in range(30):
        factories.TaskFactory(article__project=project, article__text=f"Elena Marchetti in Lyon, report {i}.")
    keys = []
    for i in range(4):
        user = factories.UserFactory(username=f"load{i}")
        factories.MembershipFactory(project=project, user=user, role=Role.ANNOTATOR)
        keys.append(token_create(user=user, name="bench")[1])

    with Gunicorn(workers=1, threads=4, env=web_env, timeout=120) as server:
        result = load.run_load(
            port=server.port,
            keys=keys,
            project_id=project.pk,
            seconds=30,  # ends sooner: every client stops when the queue is empty
            result={"result": {"topic": "business"}},
            server_pgid=server.proc.pid,
            client_threads=client_threads,
        )

    assert result["errors"] == 0, result["first_error"]
    assert result["client_procs"] == (1 if client_threads == 0 else 2)
    assert sorted(result["handed"]) == sorted(Task.objects.filter(project=project).values_list("pk", flat=True))
    assert result["duplicates"] == 0
    # The warm-up loop of each client is not timed: 30 tasks, 4 of them leased in the warm-up.
    assert len(result["submit_ms"]) == 26
    assert len(result["next_ms"]) == 26 + 4  # and each client's last call found the queue empty
    assert result["cpu_s"]["gunicorn"] > 0
    if client_threads:
        assert result["cpu_s"]["client"] > 0  # the children's own CPU, not this process's
    if connection.vendor == "postgresql":
        assert result["cpu_s"]["postgres"] > 0
    else:
        assert "postgres" not in result["cpu_s"]
