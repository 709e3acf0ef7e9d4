"""Labeler plugins. Importing this package registers the built-in ones."""

from projects.prelabel.labelers import remote, rules, sklearn_model  # noqa: F401
from projects.prelabel.labelers.base import (  # noqa: F401
    REGISTRY,
    BaseLabeler,
    LabelerConfigError,
    LabelerContext,
    LabelerError,
    LabelerOutput,
    LabelerUnavailable,
    TaskInput,
    build_labeler,
    labeler_class,
)
