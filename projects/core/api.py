"""REST API for projects, members, annotator profiles, API tokens and the current user."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from projects.core import invites, selectors, services
from projects.core.exceptions import NotFound, PermissionDenied
from projects.core.models import (
    AnnotatorProfile,
    ApiToken,
    AuditEvent,
    Membership,
    Project,
    Role,
    SkillLevel,
    TokenScope,
)
from projects.core.permissions import ProjectRolePermission

User = get_user_model()


class LabelSchemaField(serializers.JSONField):
    """The label schema, validated by ``projects.core.schema`` in the service."""


class ProjectListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        return super().to_representation(selectors.attach_counts(data.all() if hasattr(data, "all") else data))


class ProjectSerializer(serializers.ModelSerializer):
    """A project with its counts (``selectors.attach_counts``: exact in projects under 20,000
    tasks and articles, up to 15 s old above)."""

    label_schema = LabelSchemaField()
    article_count = serializers.IntegerField(read_only=True)
    task_count = serializers.IntegerField(read_only=True)
    completed_task_count = serializers.IntegerField(read_only=True)
    annotation_count = serializers.IntegerField(read_only=True)
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = (
            "id",
            "name",
            "description",
            "guidelines",
            "guidelines_version",
            "label_schema",
            "schema_version",
            "overlap",
            "assignment_policy",
            "skill_fallback",
            "skill_fallback_minutes",
            "review_policy",
            "review_sample_percent",
            "gold_ratio",
            "lease_minutes",
            "queue_order",
            "annotators_see_others",
            "created_at",
            "updated_at",
            "article_count",
            "task_count",
            "completed_task_count",
            "annotation_count",
            "my_role",
        )
        read_only_fields = ("guidelines_version", "schema_version", "created_at", "updated_at")
        list_serializer_class = ProjectListSerializer

    def to_representation(self, instance: Project) -> dict:
        if not hasattr(instance, "task_count"):
            selectors.attach_counts([instance])
        return super().to_representation(instance)

    def get_my_role(self, project: Project) -> str | None:
        memberships = self.context.get("roles", {})
        return memberships.get(project.pk)

    def validate_overlap(self, value: int) -> int:
        if not 1 <= value <= 100:
            raise serializers.ValidationError("must be between 1 and 100")
        return value

    def validate_gold_ratio(self, value: float) -> float:
        if not 0 <= value <= 1:
            raise serializers.ValidationError("must be between 0 and 1")
        return value

    def validate_review_sample_percent(self, value: int) -> int:
        if not 0 <= value <= 100:
            raise serializers.ValidationError("must be between 0 and 100")
        return value

    def validate_lease_minutes(self, value: int) -> int:
        if not 1 <= value <= 7 * 24 * 60:
            raise serializers.ValidationError("must be between 1 and 10080 minutes")
        return value


class ProjectViewSet(viewsets.ModelViewSet):
    """Projects the user belongs to. Creating one makes its creator the admin."""

    serializer_class = ProjectSerializer
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    project_url_kwarg = "pk"
    read_role = Role.ANNOTATOR
    write_role = Role.MANAGER
    action_roles = {"destroy": Role.ADMIN}
    queryset = Project.objects.none()

    def get_queryset(self):
        return selectors.projects_visible_to(user=self.request.user)

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if self.request and self.request.user.is_authenticated:
            context["roles"] = dict(Membership.objects.filter(user=self.request.user).values_list("project_id", "role"))
            if self.request.user.is_superuser:
                context["roles"] = {
                    pk: context["roles"].get(pk, Role.ADMIN) for pk in Project.objects.values_list("pk", flat=True)
                }
        return context

    def perform_create(self, serializer) -> None:
        user = self.request.user
        if settings.ALLOW_PROJECT_CREATION_BY != "anyone" and not user.is_staff:
            raise PermissionDenied("Only staff users can create projects on this server.")
        data = dict(serializer.validated_data)
        project = services.project_create(
            actor=user,
            name=data.pop("name"),
            label_schema=data.pop("label_schema"),
            guidelines=data.pop("guidelines", ""),
            **data,
        )
        serializer.context["roles"][project.pk] = Role.ADMIN
        serializer.instance = self.get_queryset().get(pk=project.pk)

    def perform_update(self, serializer) -> None:
        project = services.project_update(
            project=serializer.instance, actor=self.request.user, **serializer.validated_data
        )
        serializer.instance = self.get_queryset().get(pk=project.pk)

    def perform_destroy(self, instance: Project) -> None:
        services.project_delete(project=instance, actor=self.request.user)


class ProfileSerializer(serializers.ModelSerializer):
    skills = serializers.DictField(child=serializers.ChoiceField(choices=SkillLevel.choices), required=False)
    languages = serializers.ListField(child=serializers.CharField(max_length=16), required=False)

    class Meta:
        model = AnnotatorProfile
        fields = ("skills", "languages")


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    user_id = serializers.IntegerField(read_only=True)
    skills = serializers.SerializerMethodField()
    languages = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ("id", "user_id", "username", "email", "role", "queue_paused", "skills", "languages", "created_at")
        read_only_fields = fields

    def _profile(self, membership: Membership) -> AnnotatorProfile | None:
        try:
            return membership.user.annotator_profile
        except AnnotatorProfile.DoesNotExist:
            return None

    def get_skills(self, membership: Membership) -> dict[str, str]:
        profile = self._profile(membership)
        return profile.skills if profile else {}

    def get_languages(self, membership: Membership) -> list[str]:
        profile = self._profile(membership)
        return profile.languages if profile else []


class MemberCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, help_text="Username or email of an existing user.")
    email = serializers.EmailField(required=False)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.ANNOTATOR)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("username") and not attrs.get("email"):
            raise serializers.ValidationError({"username": "give a username or an email"})
        return attrs


class MemberInviteInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="The new account's username.")
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.ANNOTATOR)


class MemberInvitedSerializer(MemberSerializer):
    invite_url = serializers.CharField(
        read_only=True, help_text="Shown once: the invitee opens it to choose a password (single use, expires)."
    )

    class Meta(MemberSerializer.Meta):
        fields = (*MemberSerializer.Meta.fields, "invite_url")
        read_only_fields = fields


class MemberUpdateInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    skills = serializers.DictField(child=serializers.ChoiceField(choices=SkillLevel.choices), required=False)
    languages = serializers.ListField(child=serializers.CharField(max_length=16), required=False)
    queue_paused = serializers.BooleanField(required=False)


class MemberViewSet(viewsets.ModelViewSet):
    """Members of a project with their role and skills. Managers and admins manage them."""

    serializer_class = MemberSerializer
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.REVIEWER
    write_role = Role.MANAGER
    queryset = Membership.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.members_of(project=self.request.project)

    @extend_schema(request=MemberCreateInputSerializer, responses={201: MemberSerializer})
    def create(self, request, *args, **kwargs) -> Response:
        data = MemberCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ident = data.validated_data.get("username") or data.validated_data.get("email")
        user = User.objects.filter(Q(username=ident) | Q(email__iexact=ident)).order_by("id").first()
        if user is None:
            raise NotFound(f"No user {ident!r}.", fields={"username": "no such user"})
        membership = services.membership_add(
            project=request.project,
            actor=request.user,
            actor_membership=request.membership,
            user=user,
            role=data.validated_data["role"],
        )
        return Response(
            MemberSerializer(self.get_queryset().get(pk=membership.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=MemberInviteInputSerializer, responses={201: MemberInvitedSerializer})
    @action(detail=False, methods=["post"])
    def invite(self, request, *args, **kwargs) -> Response:
        """Create an account for someone new, add them with a role, and return their invite link."""
        data = MemberInviteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership, uidb64, token = invites.member_invite(
            project=request.project, actor=request.user, actor_membership=request.membership, **data.validated_data
        )
        body = MemberSerializer(self.get_queryset().get(pk=membership.pk)).data
        url = request.build_absolute_uri(reverse("web-invite-accept", args=[uidb64, token]))
        return Response(body | {"invite_url": url}, status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberUpdateInputSerializer, responses=MemberSerializer)
    def partial_update(self, request, *args, **kwargs) -> Response:
        membership = self.get_object()
        data = MemberUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        with transaction.atomic():  # role, skills and pause: all applied and audited, or none
            self._apply_member_changes(request, membership, values)
        return Response(MemberSerializer(self.get_queryset().get(pk=membership.pk)).data)

    def _apply_member_changes(self, request, membership: Membership, values: dict) -> None:
        if "role" in values:
            services.membership_update(
                membership=membership, actor=request.user, actor_membership=request.membership, role=values["role"]
            )
        if "skills" in values or "languages" in values:
            services.profile_update(
                user=membership.user,
                actor=request.user,
                skills=values.get("skills"),
                languages=values.get("languages"),
                project=request.project,
            )
        if "queue_paused" in values:
            services.membership_set_queue_paused(
                membership=membership, actor=request.user, paused=values["queue_paused"]
            )

    @extend_schema(exclude=True)
    def update(self, request, *args, **kwargs) -> Response:
        return self.partial_update(request, *args, **kwargs)

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_remove(
            membership=instance, actor=self.request.user, actor_membership=self.request.membership
        )


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ("id", "name", "prefix", "scope", "created_at", "last_used_at", "expires_at", "revoked_at")
        read_only_fields = ("prefix", "created_at", "last_used_at", "revoked_at")


class TokenCreatedSerializer(TokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(TokenSerializer.Meta):
        fields = (*TokenSerializer.Meta.fields, "key")


class TokenCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.FULL)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class TokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The current user's API tokens. Deleting one revokes it (the row stays for the audit trail)."""

    serializer_class = TokenSerializer
    queryset = ApiToken.objects.none()

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user).order_by("-created_at", "id")

    @extend_schema(request=TokenCreateInputSerializer, responses={201: TokenCreatedSerializer})
    def create(self, request) -> Response:
        data = TokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.token_create(user=request.user, **data.validated_data)
        body = TokenSerializer(token).data | {"key": key}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        services.token_revoke(token=instance, actor=self.request.user)


class MeSerializer(serializers.ModelSerializer):
    profile = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ("id", "username", "email", "first_name", "last_name", "is_staff", "profile")
        read_only_fields = fields

    def get_profile(self, user) -> ProfileSerializer:
        profile, _ = AnnotatorProfile.objects.get_or_create(user=user)
        return ProfileSerializer(profile).data


class MeViewSet(viewsets.GenericViewSet):
    serializer_class = MeSerializer
    queryset = User.objects.none()
    pagination_class = None

    @extend_schema(responses=MeSerializer)
    def list(self, request) -> Response:
        return Response(MeSerializer(request.user).data)


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

    class Meta:
        model = AuditEvent
        fields = ("id", "action", "actor", "target_type", "target_id", "data", "created_at")
        read_only_fields = fields


AUDIT_FILTERS = [
    OpenApiParameter("action", str, description="member.update (exact), or member for every member.* action."),
    OpenApiParameter("actor", str, description="Username of who did it."),
    OpenApiParameter("since", str, description="At or after this ISO date or date-time."),
]


@extend_schema_view(list=extend_schema(parameters=AUDIT_FILTERS))
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The project's audit trail (managers and admins): who changed members, roles and skills,
    assignments, reviews, exports, imports, tokens, webhooks and settings, with old -> new values."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsAuthenticated, ProjectRolePermission]
    read_role = Role.MANAGER
    queryset = AuditEvent.objects.none()

    def get_queryset(self):
        if self.action != "list":
            return selectors.audit_events_for(project=self.request.project)
        params = self.request.query_params
        return selectors.audit_events_for(
            project=self.request.project,
            action=params.get("action", ""),
            actor=params.get("actor", ""),
            since=selectors.parse_since(params.get("since")),
        )


ROUTES = [
    (r"projects", ProjectViewSet, "project"),
    (r"projects/(?P<project_pk>\d+)/members", MemberViewSet, "project-member"),
    (r"projects/(?P<project_pk>\d+)/audit", AuditEventViewSet, "project-audit"),
    (r"tokens", TokenViewSet, "token"),
    (r"me", MeViewSet, "me"),
]
