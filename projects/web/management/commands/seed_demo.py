"""``manage.py seed_demo``: a demo project with every field type, an admin and two annotators.

Idempotent: a second run finds the users and the project and changes nothing.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from projects.assignment.models import Task
from projects.core.models import AnnotatorProfile, Membership, Project, Role
from projects.core.schema import DEMO_SCHEMA
from projects.core.services import project_create
from projects.documents.models import Article
from projects.documents.synthetic import articles

DEMO_PROJECT = "Demo: news articles"
USERS = [
    # username, password, role, skills
    ("admin", "admin-demo-pass", Role.ADMIN, {}),
    ("alice", "alice-demo-pass", Role.ANNOTATOR, {"technology": "expert", "business": "generalist"}),
    ("bob", "bob-demo-pass", Role.ANNOTATOR, {"health": "expert", "politics": "generalist"}),
]
GUIDELINES = """# How to label news articles

1. **Topic**: pick the one topic the article is mainly about.
2. **Entities**: mark every person (PERSON), organisation (ORG) and place (LOC).
   Select with the mouse, then press the label's key.
3. **Answer**: correct the model's one-line summary so it is accurate and neutral.
4. **Quality**: rate the model summary for relevance, coherence and safety (1 = poor, 5 = excellent).
5. **Better**: choose the better of the two candidate headlines, and say why.
"""


class Command(BaseCommand):
    help = "Create the demo project, users and articles (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--articles", type=int, default=36)

    @transaction.atomic
    def handle(self, *args, articles: int, **options) -> None:
        User = get_user_model()
        users = {}
        for username, password, _, skills in USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_password(password)
                user.is_staff = user.is_superuser = username == "admin"
                user.save()
            profile, _ = AnnotatorProfile.objects.get_or_create(user=user)
            if not profile.skills and skills:
                profile.skills = skills
                profile.languages = ["en"]
                profile.save()
            users[username] = user
        project = Project.objects.filter(name=DEMO_PROJECT).first()
        if project is None:
            project = project_create(
                actor=users["admin"],
                name=DEMO_PROJECT,
                label_schema=DEMO_SCHEMA,
                guidelines=GUIDELINES,
                description="Synthetic news articles with every field type: choice, spans, text, rating and pairwise.",
            )
        for username, _, role, _ in USERS:
            Membership.objects.get_or_create(project=project, user=users[username], defaults={"role": role})
        created_articles = 0
        for row in articles_iter(articles):
            article, created = Article.objects.get_or_create(
                project=project,
                external_id=row["id"],
                defaults={
                    "title": row["title"],
                    "text": row["text"],
                    "source": row["source"],
                    "domain": row["domain"],
                    "published_at": dt.datetime.fromisoformat(row["published"]).replace(tzinfo=dt.UTC),
                },
            )
            if created:
                created_articles += 1
                first_sentence = row["text"].split(". ")[0][:200]
                Task.objects.create(
                    project=project,
                    article=article,
                    required_skill=row["domain"],
                    payload={
                        "response": f"Summary: {first_sentence}.",
                        "response_a": row["title"],
                        "response_b": first_sentence[:80],
                    },
                )
        self.stdout.write(f"Demo project #{project.pk} {project.name!r}: {created_articles} new articles.")
        self.stdout.write("Log in with:")
        for username, password, role, _ in USERS:
            self.stdout.write(f"  {username:<6} / {password}   ({role})")


def articles_iter(n: int):
    return articles(n, seed=11)
