"""API plumbing shared by every app: pagination and the one error body.

Every error response has the shape ``{"error": {"code": "...", "message": "...", "fields": {}}}``.
"""

from __future__ import annotations

import json
from functools import cached_property, partial
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.db import DataError, connections
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from projects.core.exceptions import DomainError


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CappedCountPaginator(Paginator):
    """A paginator for lists that can reach millions of rows (the task manager).

    - Counting a million matching rows costs far more than fetching a page of them (the count
      walks every row; the page stops after 50). When PostgreSQL's planner expects more than
      ``ESTIMATE_FROM`` rows its estimate is the count; otherwise rows are counted exactly up to
      ``COUNT_CAP`` (``count(*)`` over a ``LIMIT``ed subquery), and estimated past it.
      ``count_is_estimate`` tells which.
    - ``ids``, when given, is the same list as bare ids (no joins): counts run on it, and every
      page is found on it first, then only its rows are loaded. Deep in the list that is an
      index walk past the offset instead of joining every skipped row; on a key with no index
      (``ordering=agreement``) it is a top-N sort of bare ids in a few kilobytes, where the join
      made PostgreSQL sort every full row, spilling to disk (1,000,000 tasks: 0.8 s → 0.2 s).
    """

    COUNT_CAP = 10_000
    ESTIMATE_FROM = 100_000
    DEFERRED_FROM = 0  # offsets below this load the page directly (with ``ids``)

    def __init__(self, object_list, per_page, *args, ids=None, **kwargs) -> None:
        super().__init__(object_list, per_page, *args, **kwargs)
        self.ids = ids
        self.count_is_estimate = False

    def _estimate(self, queryset) -> int:
        try:
            sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
        except EmptyResultSet:  # a condition nothing can meet (e.g. ``pk__in=[]``): no statement
            return 0
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])

    @cached_property
    def count(self) -> int:
        rows = (self.ids if self.ids is not None else self.object_list.values("pk")).order_by()
        if not settings.IS_POSTGRES:
            return rows.count()
        estimate = self._estimate(rows)
        if estimate > self.ESTIMATE_FROM:
            self.count_is_estimate = True
            return estimate
        capped = rows[: self.COUNT_CAP + 1].count()
        if capped <= self.COUNT_CAP:
            return capped
        self.count_is_estimate = True
        return max(self.COUNT_CAP + 1, estimate)

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        if self.ids is None or bottom < self.DEFERRED_FROM:
            return super().page(number)
        ids = list(self.ids[bottom : bottom + self.per_page])
        rows = {row.pk: row for row in self.object_list.filter(pk__in=ids)}
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)


class EstimatedCountPagination(Pagination):
    """Pagination for lists that can reach millions of rows (the task manager): see
    ``CappedCountPaginator``. The body adds ``count_is_estimate``."""

    django_paginator_class = CappedCountPaginator

    def paginate_queryset(self, queryset, request, view=None):
        # The view may offer the same list as bare ids (``page_ids(queryset)``): see the paginator.
        ids = view.page_ids(queryset) if view is not None and hasattr(view, "page_ids") else None
        self.django_paginator_class = partial(CappedCountPaginator, ids=ids)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data) -> Response:
        response = super().get_paginated_response(data)
        response.data["count_is_estimate"] = getattr(self.page.paginator, "count_is_estimate", False)
        return response

    def get_paginated_response_schema(self, schema: dict) -> dict:
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["count_is_estimate"] = {
            "type": "boolean",
            "description": f"true when more than {CappedCountPaginator.COUNT_CAP} rows match and count is estimated",
        }
        return schema


def error_body(code: str, message: str, fields: dict | None = None, extra: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}, **(extra or {})}}


def _flatten(detail: Any) -> Any:
    if isinstance(detail, list):
        if len(detail) == 1:
            return _flatten(detail[0])
        return [_flatten(d) for d in detail]
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    return str(detail)


def _first_message(fields: Any) -> str:
    if isinstance(fields, dict):
        for key, value in fields.items():
            inner = _first_message(value)
            return inner if key in ("non_field_errors", "detail") else f"{key}: {inner}"
    if isinstance(fields, list) and fields:
        return _first_message(fields[0])
    return str(fields)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.fields, exc.extra), status=exc.status)
    if isinstance(exc, OverflowError | DataError):
        # A number too large for the database column (an id of 2**70, say) is the client's
        # mistake: answer 400 rather than 500, whichever serializer forgot a max_value.
        return Response(error_body("out_of_range", "A number in the request is out of range."), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        if not isinstance(fields, dict):
            fields = {"non_field_errors": fields}
        response.data = error_body("invalid", _first_message(fields), fields)
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = error_body(code, str(exc.detail))
    return response


def payload_too_large(message: str) -> Response:
    return Response(error_body("too_large", message), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
