"""Errors raised while reading an import file (pure module: no ORM)."""

from __future__ import annotations

from projects.core.exceptions import DomainError, ValidationFailed


class ImportFileError(ValidationFailed):
    """The file as a whole cannot be imported (empty, not UTF-8, binary, a zip bomb...).

    Raised before anything is written, so nothing stored changes. ``code`` names the problem.
    """

    code = "bad_file"


class RowError(Exception):
    """One row cannot be imported; the others go on (unless the job is all-or-nothing)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IdempotencyKeyReused(DomainError):
    """An Idempotency-Key already used, within its lifetime, for a different request."""

    code = "idempotency_key_reused"
    status = 422
