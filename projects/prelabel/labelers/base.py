"""The labeler plugin interface and its registry.

A labeler takes a batch of tasks and returns, for each, either a ``LabelerOutput`` (a result in
the project's schema, a score in [0, 1] and optionally a margin for active learning) or a
``LabelerError`` (why that task got nothing). A labeler that cannot answer for the whole batch
(endpoint down, malformed response) raises ``LabelerUnavailable``: nothing of that batch is stored.
Outputs are validated against the schema by the caller before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from projects.core.exceptions import ValidationFailed


@dataclass(frozen=True)
class TaskInput:
    id: int
    text: str
    payload: dict = field(default_factory=dict)


@dataclass
class LabelerOutput:
    task_id: int
    result: dict
    score: float | None = None
    margin: float | None = None


@dataclass
class LabelerError:
    task_id: int
    message: str


class LabelerUnavailable(Exception):
    """The labeler could not answer for the batch; every task in it is recorded as failed."""


class LabelerConfigError(ValidationFailed):
    code = "invalid_labeler_config"


@dataclass
class LabelerContext:
    project_id: int
    schema: dict
    model_version: str


class BaseLabeler:
    kind: ClassVar[str] = ""
    #: Remote labelers are all-or-nothing per batch (see module docstring).
    remote: ClassVar[bool] = False

    def __init__(self, *, config: dict, context: LabelerContext) -> None:
        self.config = config
        self.context = context

    @classmethod
    def validate_config(cls, config: Any, schema: dict) -> dict:
        """Return the normalized config or raise ``LabelerConfigError`` naming the bad key."""
        raise NotImplementedError

    @classmethod
    def default_model_version(cls, *, name: str, config: dict, project_id: int) -> str:
        return name

    @classmethod
    def cache_token(cls, context: LabelerContext) -> str | None:
        """What, besides the run and its config, identifies this labeler's built state; ``None``
        means "build it anew for every chunk". Local labelers are built once per worker process and
        run (rules compile their automata and patterns, the model loads its artefact) and reused."""
        return ""

    def setup(self) -> None:
        """Called once per run before the first batch (remote labelers announce the schema)."""

    def predict(self, tasks: list[TaskInput]) -> list[LabelerOutput | LabelerError]:
        raise NotImplementedError


REGISTRY: dict[str, type[BaseLabeler]] = {}


def register(cls: type[BaseLabeler]) -> type[BaseLabeler]:
    REGISTRY[cls.kind] = cls
    return cls


def labeler_class(kind: str) -> type[BaseLabeler]:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise LabelerConfigError(
            f"Unknown labeler {kind!r}; known: {', '.join(sorted(REGISTRY))}.", fields={"labeler": "unknown"}
        ) from None


def build_labeler(kind: str, *, config: dict, context: LabelerContext) -> BaseLabeler:
    return labeler_class(kind)(config=config, context=context)


def fields_of(schema: dict, *types: str) -> dict[str, dict]:
    return {f["name"]: f for f in schema.get("fields", []) if not types or f["type"] in types}


def require_dict(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise LabelerConfigError(f"{where} must be an object.", fields={where: "must be an object"})
    return value
