"""Inviting someone who has no account yet: a manager creates the account and gets a link.

The account starts with an unusable password. The link is Django's password-reset token for it
(``/invite/<uidb64>/<token>/``): the invitee opens it and chooses a password. The token is
single-use (it is bound to the password hash, so setting a password voids it) and expires after
``PASSWORD_RESET_TIMEOUT`` (3 days by default). The manager never learns a password, and nothing
secret is stored: the link is shown once to the manager, who passes it on.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from projects.core.exceptions import Conflict, ValidationFailed
from projects.core.models import Membership, Project
from projects.core.services import audit_log, membership_add

User = get_user_model()


def invite_token(user) -> tuple[str, str]:
    """(uidb64, token) for the user's invite link."""
    return urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)


@transaction.atomic
def member_invite(
    *, project: Project, actor, actor_membership: Membership, username: str, email: str, role: str
) -> tuple[Membership, str, str]:
    """Create an account for a new person and add them to the project with ``role``.

    Returns (membership, uidb64, token); build the link with the ``web-invite-accept`` URL.
    """
    username = (username or "").strip()
    email = (email or "").strip()
    errors = {}
    try:
        if not username:
            raise ValidationError("empty")
        User._meta.get_field(User.USERNAME_FIELD).run_validators(username)
    except ValidationError:
        errors["username"] = "letters, digits and @/./+/-/_ only, at most 150 characters"
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = "a valid email address"
    if errors:
        raise ValidationFailed("The invitation needs a valid username and email.", fields=errors)
    if User.objects.filter(Q(username__iexact=username) | Q(email__iexact=email)).exists():
        raise Conflict(
            "A user with this username or email already exists: add them as a member instead.", code="user_exists"
        )
    user = User(username=username, email=email)
    user.set_unusable_password()
    user.save()
    membership = membership_add(project=project, actor=actor, actor_membership=actor_membership, user=user, role=role)
    audit_log(
        actor=actor, action="member.invite", project=project, target=membership, data={"user": username, "role": role}
    )
    uidb64, token = invite_token(user)
    return membership, uidb64, token
