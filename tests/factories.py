"""factory_boy factories for the domain models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from projects.annotations.models import Annotation, AnnotationStatus
from projects.assignment.models import Task
from projects.core.models import AnnotatorProfile, Membership, Project, Role
from projects.documents.models import Article
from projects.prelabel.models import Prediction

SIMPLE_SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "options": ["politics", "business", "technology"]},
        {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]},
    ]
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pass-word-123")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    label_schema = factory.LazyFunction(lambda: dict(SIMPLE_SCHEMA))


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ANNOTATOR


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AnnotatorProfile
        django_get_or_create = ("user",)

    user = factory.SubFactory(UserFactory)
    skills = factory.LazyFunction(dict)


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"ext-{n}")
    title = factory.Sequence(lambda n: f"Article {n}")
    text = "Elena Marchetti met Quantix in Lyon on Tuesday."


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    article = factory.SubFactory(ArticleFactory)
    project = factory.LazyAttribute(lambda t: t.article.project)
    payload = factory.LazyFunction(dict)


class PredictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prediction

    task = factory.SubFactory(TaskFactory)
    project = factory.LazyAttribute(lambda p: p.task.project)
    model_version = "rules-v1"
    result = factory.LazyFunction(lambda: {"topic": "technology"})
    score = 0.8


class AnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Annotation

    task = factory.SubFactory(TaskFactory)
    project = factory.LazyAttribute(lambda a: a.task.project)
    user = factory.SubFactory(UserFactory)
    result = factory.LazyFunction(lambda: {"topic": "politics"})
    status = AnnotationStatus.SUBMITTED
