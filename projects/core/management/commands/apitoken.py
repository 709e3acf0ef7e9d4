"""``manage.py apitoken <username>``: create an API token and print its key (shown once)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from projects.core.models import TokenScope
from projects.core.services import token_create


class Command(BaseCommand):
    help = "Create a new API token for a user and print the key. Only its hash is stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--scope", default=TokenScope.FULL, choices=TokenScope.values)

    def handle(self, *args, username: str, name: str, scope: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        _, key = token_create(user=user, name=name, scope=scope)
        self.stdout.write(key)
