"""A cursor for the few statements every API request runs: prepared once per connection.

The ORM's statements travel as text with their values inlined (psycopg's client-side binding,
Django's default), so PostgreSQL parses and plans each one every time. For the token lookup and
the queue's statements that planning cost about as much server CPU as running them. A
``hot_cursor()`` binds values on the server and prepares a statement after a connection has run
it twice (statements run once are not worth a prepare round trip); later runs skip parse and
plan. Callers keep their statements' text independent of the values (an array parameter rather
than ``IN (%s, %s, ...)``), so each statement is prepared once. Statements still go through
Django's cursor wrapper, so they are logged (with their values, when queries are logged),
counted by ``CaptureQueriesContext`` and their errors translated.

``DB_PREPARED_STATEMENTS=false`` turns this off (plain cursor): needed behind a connection pooler
in transaction mode that does not track prepared statements (PgBouncer before 1.21).
Other databases get the plain cursor.
"""

from __future__ import annotations

import contextlib
import functools
import json

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorWrapper

MAX_ID = 2**63 - 1  # ids are bigint; a larger number names no row (and SQLite cannot bind it)


def json_value(value):
    """A JSON column as read by a raw cursor: text on both databases (Django's PostgreSQL
    connection loads ``jsonb`` as text, as ``JSONField`` expects), parsed; None stays None."""
    return json.loads(value) if isinstance(value, str) else value


@functools.cache
def _classes() -> tuple[type, type]:
    from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor

    class LoggedCursor(CursorDebugWrapper):
        # psycopg keeps no text of a prepared statement's run, so log the statement with its
        # values inlined, as Django does for server-side binding.
        def execute(self, sql, params=None):
            with self.debug_sql(self.db.ops.compose_sql(sql, params) if params else sql):
                return CursorWrapper.execute(self, sql, params)

    return ServerBindingCursor, LoggedCursor


def preparing() -> bool:
    """True when ``hot_cursor()`` binds on the server and prepares (PostgreSQL, not turned off)."""
    return settings.IS_POSTGRES and settings.DB_PREPARED_STATEMENTS


@functools.cache
def _pipeline_supported() -> bool:
    import psycopg

    return psycopg.Pipeline.is_supported()  # libpq 14 or later


def pipelining() -> bool:
    """True when ``pipeline()`` may be used: ``preparing()``, and psycopg's libpq has pipeline mode."""
    return preparing() and _pipeline_supported()


@contextlib.contextmanager
def pipeline():
    """Send the statements executed on hot cursors inside this block together, in one round trip
    (psycopg's pipeline mode). The server still runs them one after the other, each a statement
    of its own (with its own snapshot, under READ COMMITTED). Fetch their rows after the block,
    one cursor per statement; a statement's error is raised at the end of the block, translated
    as Django translates its own. Only when ``pipelining()``; otherwise send the statements as one
    string on a plain cursor (a server-binding cursor takes one statement at a time)."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.wrap_database_errors, db.connection.pipeline():
        yield


def hot_cursor():
    """A cursor (use it in ``with``) whose statements are prepared on PostgreSQL; see the module."""
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself, not the per-thread proxy
    if not preparing():
        return db.cursor()
    server_binding, logged = _classes()
    # As Django's own cursor() does: with DB_CONN_HEALTH_CHECKS, a kept connection broken by a
    # database restart is replaced here rather than failing the request's first statement.
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw = db.connection
    # Only server-binding cursors prepare: the ORM's client-side cursors never do, whatever this says.
    raw.prepare_threshold = 2
    cursor = server_binding(raw)
    return logged(cursor, db) if db.queries_logged else CursorWrapper(cursor, db)


class ModelColumns:
    """A model's concrete columns in a hand-written ``SELECT``, and the instance built from a row
    of them as the ORM builds it: ``Model.from_db`` after the same value converters (JSON text
    parsed, SQLite's dates and booleans). For statements run so often that building them with the
    ORM costs more than running them; the text is composed once, from the model's fields.
    """

    def __init__(self, model, alias: str) -> None:
        self.model = model
        self.fields = tuple(model._meta.concrete_fields)
        self.names = tuple(f.attname for f in self.fields)
        self.alias = alias
        self.width = len(self.fields)

    def select(self, connection) -> str:
        qn = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{qn(f.column)}" for f in self.fields)

    def _converters(self, connection) -> list[tuple[int, list, object]]:
        # Kept on the connection wrapper (one per thread): backend converters are its methods.
        cache = connection.__dict__.setdefault("_annotator_model_converters", {})
        found = cache.get(self.model)
        if found is None:
            found = []
            for i, field in enumerate(self.fields):
                col = field.get_col(self.model._meta.db_table)
                converters = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
                if converters:
                    found.append((i, converters, col))
            cache[self.model] = found
        return found

    def build(self, connection, row, start: int = 0):
        """The instance made of ``row[start:start + width]``."""
        values = list(row[start : start + self.width])
        for i, converters, col in self._converters(connection):
            value = values[i]
            for converter in converters:
                value = converter(value, col, connection)
            values[i] = value
        return self.model.from_db(connection.alias, self.names, values)


def build_row(connection, row, *columns: ModelColumns) -> tuple[list, int]:
    """The instances of ``columns`` selected one after the other in ``row``, and the index of the
    row's first value after them."""
    built, start = [], 0
    for model_columns in columns:
        built.append(model_columns.build(connection, row, start))
        start += model_columns.width
    return built, start
