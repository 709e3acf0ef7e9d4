"""Domain exceptions raised by services; ``annotator.api`` maps them to HTTP responses."""

from __future__ import annotations


class DomainError(Exception):
    """A request that breaks a business rule. Rendered as 400 with ``code``."""

    code = "invalid"
    status = 400

    def __init__(
        self, message: str, *, fields: dict | None = None, code: str | None = None, extra: dict | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra or {}  # more members of the error object, beside code, message and fields
        if code:
            self.code = code


class ValidationFailed(DomainError):
    code = "validation_failed"


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class NoTaskAvailable(DomainError):
    code = "no_task"
    status = 404
