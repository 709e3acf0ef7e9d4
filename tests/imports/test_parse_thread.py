"""Rows are parsed on a second thread while the previous batch is written: the hand-over keeps
order, re-raises a parse error in the writer's thread, stops the parser when the import stops, and
holds the next batch back until the writer has sent its COPY (``proceed``) or asks for it."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from projects.imports import services
from projects.imports.errors import ImportFileError

JOB = SimpleNamespace(pk=0)


def _parser_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith("-parse")]


def test_batches_arrive_in_order_and_the_thread_ends(monkeypatch):
    def fake(job, path, options, schema, *, resume_at):
        for i in range(5):
            yield services._Parsed(rows=[i], read=1)
        yield services._Parsed(read=2, errors=[(7, "", "bad")], last=True)

    monkeypatch.setattr(services, "_parse_batches", fake)
    got = list(services._parsed_batches(JOB, "", None, None, resume_at=0))
    assert [p.rows for p in got] == [[0], [1], [2], [3], [4], []]
    assert sum(p.read for p in got) == 7 and got[-1].errors == [(7, "", "bad")] and got[-1].last
    assert not _parser_threads()


def test_a_parse_error_is_raised_in_the_writing_thread_after_the_batches_before_it(monkeypatch):
    def fake(job, path, options, schema, *, resume_at):
        yield services._Parsed(rows=[1], read=1)
        raise ImportFileError("The file is not valid UTF-8 after line 2.")

    monkeypatch.setattr(services, "_parse_batches", fake)
    seen = []
    with pytest.raises(ImportFileError, match="UTF-8"):
        for package in services._parsed_batches(JOB, "", None, None, resume_at=0):
            seen.append(package.rows)
    assert seen == [[1]]
    assert not _parser_threads()


def test_stopping_early_stops_the_parser(monkeypatch):
    produced = []

    def endless(job, path, options, schema, *, resume_at):
        while True:
            produced.append(1)
            yield services._Parsed(rows=[len(produced)], read=1)

    monkeypatch.setattr(services, "_parse_batches", endless)
    packages = services._parsed_batches(JOB, "", None, None, resume_at=0)
    assert next(packages).rows == [1]
    packages.close()  # the import was cancelled: the caller stops reading
    assert not _parser_threads()
    assert len(produced) <= 4  # the parser ran at most a batch or two ahead, then stopped


def test_a_run_waiting_for_rows_beats_until_they_come_and_stops_when_told(monkeypatch, settings):
    settings.JOB_STALL_SECONDS = 1  # a heartbeat every 0.2 s of waiting
    release = threading.Event()

    def slow(job, path, options, schema, *, resume_at):
        release.wait(timeout=30)
        yield services._Parsed(read=1, last=True)

    monkeypatch.setattr(services, "_parse_batches", slow)
    beats = []

    def beat() -> bool:
        beats.append(1)
        if len(beats) == 3:
            release.set()
        return True

    got = list(services._parsed_batches(JOB, "", None, None, resume_at=0, on_wait=beat))
    assert [p.read for p in got] == [1] and len(beats) >= 3

    release.clear()

    def taken_over() -> bool:
        release.set()  # the parser may go on; the caller has stopped listening
        return False

    stopped = list(services._parsed_batches(JOB, "", None, None, resume_at=0, on_wait=taken_over))
    assert stopped == []  # the job went to another run: no batch is handed over


def test_the_next_batch_waits_until_the_writer_proceeds_or_asks_for_it(monkeypatch):
    parsed = []

    def fake(job, path, options, schema, *, resume_at):
        for i in range(3):
            parsed.append(i)
            yield services._Parsed(rows=[i], read=1)
        yield services._Parsed(last=True)

    monkeypatch.setattr(services, "_parse_batches", fake)
    packages = services._parsed_batches(JOB, "", None, None, resume_at=0)
    assert next(packages).rows == [0]
    time.sleep(0.2)
    assert parsed == [0]  # the caller is sending batch 0: the parser keeps out of its way
    packages.proceed()
    deadline = time.monotonic() + 10
    while parsed != [0, 1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert parsed == [0, 1]
    packages.proceed()  # once per batch: a second call lets nothing more through
    time.sleep(0.2)
    assert parsed == [0, 1]
    assert next(packages).rows == [1]
    assert next(packages).rows == [2]  # asking is enough without proceed()
    assert next(packages).last
    assert list(packages) == [] and parsed == [0, 1, 2]
    assert not _parser_threads()
