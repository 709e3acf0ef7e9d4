"""API plumbing shared by every app: pagination and the one error body.

Every error response has the shape ``{"error": {"code": "...", "message": "...", "fields": {}}}``.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django.conf import settings
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
    """A paginator that counts exactly up to ``COUNT_CAP`` rows and estimates beyond.

    Counting a million matching rows costs far more than fetching a page of them (the count walks
    every row; the page stops after 50). Up to the cap the count is exact (``SELECT count(*)`` over
    a ``LIMIT``ed subquery); past it, on PostgreSQL, it is the planner's row estimate for the
    query, never below the cap. ``count_is_estimate`` tells which.
    """

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        capped = self.object_list.order_by()[: self.COUNT_CAP + 1].count()
        self.count_is_estimate = False
        if capped <= self.COUNT_CAP or not settings.IS_POSTGRES:
            if capped > self.COUNT_CAP:
                return self.object_list.count()
            return capped
        query = self.object_list.order_by().values("pk").query
        sql, params = query.get_compiler(using=self.object_list.db).as_sql()
        with connections[self.object_list.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        self.count_is_estimate = True
        return max(self.COUNT_CAP + 1, int(plan[0]["Plan"]["Plan Rows"]))


class EstimatedCountPagination(Pagination):
    """Pagination for lists that can reach millions of rows (the task manager): see
    ``CappedCountPaginator``. The body adds ``count_is_estimate``."""

    django_paginator_class = CappedCountPaginator

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


def error_body(code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


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
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
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
