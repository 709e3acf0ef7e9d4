"""The PostgreSQL health check asks the socket before it sends ``SELECT 1`` (``annotator/postgresql``)."""

from __future__ import annotations

import select
import time

import pytest
from django.conf import settings
from django.db import connection, connections

from annotator.db import hot_cursor

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs a PostgreSQL connection to check"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def kept(monkeypatch):
    """A kept connection after a request ended (the next use health-checks it); its backend pid,
    and the number of ``SELECT 1`` checks sent from then on."""
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    connection.close_if_unusable_or_obsolete()
    checks = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or is_usable())
    return pid, checks


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def from_another_connection(sql: str, params: list) -> None:
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        other.close()


def wait_readable(seconds: float = 10) -> None:
    fd = connection.connection.fileno()
    assert select.select([fd], [], [], seconds)[0], "nothing arrived on the connection"


def test_a_quiet_idle_connection_is_used_without_a_round_trip(kept):
    pid, checks = kept
    assert connection.vendor == "postgresql" and type(connections["default"]).__module__ == "annotator.postgresql.base"
    assert backend_pid() == pid
    assert checks == []


def test_a_connection_the_server_dropped_is_replaced_before_the_first_query(kept):
    pid, checks = kept
    from_another_connection("SELECT pg_terminate_backend(%s)", [pid])
    wait_readable()  # the server's "terminating connection" and end of file
    assert backend_pid() != pid
    assert checks == [1]  # SELECT 1 failed, so the connection was replaced


def test_the_hot_cursor_checks_the_connection_as_djangos_cursor_does(kept):
    pid, checks = kept
    from_another_connection("SELECT pg_terminate_backend(%s)", [pid])
    wait_readable()
    with hot_cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_bytes_waiting_on_a_live_connection_take_the_full_check_and_keep_it(kept):
    pid, checks = kept
    with connection.cursor() as cursor:
        cursor.execute("LISTEN health_probe")
    connection.close_if_unusable_or_obsolete()
    from_another_connection("NOTIFY health_probe", [])
    deadline = time.monotonic() + 10
    while not select.select([connection.connection.fileno()], [], [], 0.1)[0]:
        assert time.monotonic() < deadline
    assert backend_pid() == pid
    assert checks == [1]
