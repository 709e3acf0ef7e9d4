"""The ids met so far in one import file, for in-file duplicate detection in bounded memory.

A repeated id inside one file is an error on the later row, however far apart the two rows are,
so every id read must be remembered until the file ends. A Python set of them grew by about 80
bytes a row (15 MB for 200,000 articles); ``SeenIds`` keeps them in a private temporary SQLite
database instead (``sqlite3.connect("")``: its pages stay in a page cache of ``cache_kib`` and
spill to an anonymous temporary file that SQLite deletes when it is closed), so the worker's
memory is the same for any file size:

- a filter of ``filter_bits`` bits (1 MiB) indexed by the id's hash: a clear bit proves the id is
  new, so most rows never query the database (a set bit may be a hash collision: then the exact
  lookup decides, so the answer is always exact);
- the ids of the last ``flush_every`` new rows, in memory, written to the database in one
  transaction when that many have gathered;
- SQLite's page cache (``cache_kib``).

Why here and not in the project's database (a temporary or unlogged table keyed by job and id):
the check runs in the import's parsing thread, which has time to spare because it waits for the
database writer, whereas the database is the import's bottleneck, and a table there would add a
write per row to it; the validation pass of ``all_or_nothing`` writes nothing to the project's
database; and one piece of code serves PostgreSQL and SQLite alike. Like the set before it, the
database belongs to one run: a run that resumes a job from its checkpoint rebuilds it by reading
the rows before the checkpoint again (``services._parse_batches``).
"""

from __future__ import annotations

import sqlite3


class SeenIds:
    """``add(id)`` is True the first time an id is added, False every later time."""

    def __init__(self, *, filter_bits: int = 1 << 23, flush_every: int = 4096, cache_kib: int = 2048) -> None:
        if filter_bits < 8 or filter_bits & (filter_bits - 1):
            raise ValueError("filter_bits must be a power of two, at least 8")
        self._mask = filter_bits - 1
        self._bits = bytearray(filter_bits // 8)
        self._pending: set[str] = set()
        self._flush_every = flush_every
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID")

    def add(self, external_id: str) -> bool:
        slot = hash(external_id) & self._mask
        byte, bit = slot >> 3, 1 << (slot & 7)
        if not self._bits[byte] & bit:
            self._bits[byte] |= bit
        elif external_id in self._pending or self._stored(external_id):
            return False
        self._pending.add(external_id)
        if len(self._pending) >= self._flush_every:
            self._flush()
        return True

    def _stored(self, external_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM seen WHERE id = ?", (external_id,)).fetchone() is not None

    def _flush(self) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO seen VALUES (?)", [(i,) for i in sorted(self._pending)])
        self._db.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        self._db.close()
        self._pending.clear()

    def __enter__(self) -> SeenIds:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
