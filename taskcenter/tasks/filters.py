"""Parsing and applying the task list filters, shared by the API and the dashboard.

The parameter names are OCP's (name, status, type, clusterName, clusterId, tenantName,
tenantId, hostId, creator, keyword) plus a time range (createdFrom, createdTo). List
parameters arrive repeated (status=A&status=B) or comma-separated (status=A,B).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, NamedTuple

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import DurationField, ExpressionWrapper, F, Lookup, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.db.models.functions import Coalesce, Now
from django.db.models.lookups import In
from django_filters import rest_framework as filters

from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter
from taskcenter.tasks.models import (
    AuditEntry,
    Cluster,
    TaskInstance,
    TaskName,
    TaskStatus,
    TaskType,
    Tenant,
)
from taskcenter.tasks.sql import text_array

SORT_FIELDS = {
    "id": "id",
    "name": "name",
    "status": "status",
    "type": "type",
    "createTime": "create_time",
    "startTime": "start_time",
    "finishTime": "finish_time",
}

# A task's elapsed time: to its finish, or to now while it runs (finish_time is NULL then,
# and a retried task's is cleared until it ends again). Computed per row: no index can
# hold a value that grows with the clock, so sort=duration reads every matching task
# and keeps the top of the page (a top-N sort); see docs/benchmarks.md, "Sorting by duration".
DURATION = ExpressionWrapper(
    Coalesce(F("finish_time"), Now()) - F("start_time"), output_field=DurationField()
)
# Sortable by an expression rather than a column.
SORT_EXPRESSIONS = {"duration": DURATION}


class CommaSeparatedMultipleField(forms.MultipleChoiceField):
    """A multiple choice that also accepts one comma-separated value."""

    def to_python(self, value):
        values = super().to_python(value)
        return [part.strip() for item in values for part in item.split(",") if part.strip()]


class CommaMultipleChoiceFilter(filters.MultipleChoiceFilter):
    field_class = CommaSeparatedMultipleField

    def __init__(self, *args, **kwargs):
        # MultipleChoiceFilter adds DISTINCT by default; on a column of the row itself it
        # cannot duplicate rows, and DISTINCT over every column makes the count sort the
        # whole match (a third of a second for 200,000 tasks).
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


class CommaCharListField(forms.Field):
    def to_python(self, value):
        if not value:
            return []
        values = value if isinstance(value, list) else [value]
        return [
            _bounded(part.strip())
            for item in values
            for part in str(item).split(",")
            if part.strip()
        ]


def _parsed(parser, value):
    """`value` read by one of the parameter parser's functions; a refusal is the form's
    error (named after the field by _invalid)."""
    try:
        return parser(value, "value")
    except InvalidParameter as exc:
        raise forms.ValidationError(exc.reason) from None


def _bounded(value: str) -> str:
    """A text filter of at most parse.TEXT_MAX characters (SQLite refuses longer patterns)."""
    return _parsed(parse.text, value)


class ParsedField(forms.Field):
    """A field read by the one parameter parser (`parser`); empty is None."""

    parser: Callable[[Any, str], Any] = staticmethod(parse.identifier)

    def to_python(self, value):
        return None if value in self.empty_values else _parsed(self.parser, value)


class TextFilter(filters.CharFilter):
    """A text filter of bounded length."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", parse.TEXT_MAX)
        super().__init__(*args, **kwargs)


class DateTimeField(ParsedField):
    """An ISO 8601 date-time read by the one parameter parser: out of range is a 400."""

    parser = staticmethod(parse.date_time)


class DateTimeFilter(filters.Filter):
    field_class = DateTimeField


class CommaCharListFilter(filters.Filter):
    field_class = CommaCharListField

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class MultiValueWidget(forms.SelectMultiple):
    """Reads every value of a repeated parameter."""


class IdField(ParsedField):
    """An id, read by the one parameter parser (a larger one would be a database error)."""

    parser = staticmethod(parse.identifier)


class IdFilter(filters.Filter):
    field_class = IdField


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet, its form class made once per filter set.

    django-filter builds the form class anew for every filter set it reads: a form field
    per filter, each with a label looked up from the model and translated. That was a
    fifth of a short task list call's Python time. The class depends on the filters
    alone, which no instance changes, and each form copies its fields anyway.
    """

    def get_form_class(self):
        form_class = _FORM_CLASSES.get(type(self))
        if form_class is None:
            form_class = _FORM_CLASSES[type(self)] = super().get_form_class()
        return form_class


# Each FilterSet subclass's form class, made by its first instance.
_FORM_CLASSES: dict[type, type] = {}


class TaskInstanceFilter(FilterSet):
    name = TextFilter(method="filter_name")
    status = CommaMultipleChoiceFilter(field_name="status", choices=TaskStatus.choices)
    type = CommaMultipleChoiceFilter(field_name="type", choices=TaskType.choices)
    clusterName = TextFilter(field_name="cluster__name", lookup_expr="icontains")
    clusterId = IdFilter(field_name="cluster_id")
    tenantName = TextFilter(field_name="tenant__name", lookup_expr="icontains")
    tenantId = IdFilter(field_name="tenant_id")
    hostId = IdFilter(method="filter_host")
    creator = CommaCharListFilter(field_name="creator__username", widget=MultiValueWidget)
    keyword = TextFilter(method="filter_keyword")
    createdFrom = DateTimeFilter(field_name="create_time", lookup_expr="gte")
    createdTo = DateTimeFilter(field_name="create_time", lookup_expr="lt")

    class Meta:
        model = TaskInstance
        fields: list[str] = []

    def filter_name(self, qs, name, value):
        return qs.filter(self.name_match(value))

    def name_match(self, value: str) -> Q:
        """name_contains(value), its names looked up once for the list and its total."""
        if value not in self._name_matches:
            self._name_matches[value] = name_contains(value)
        return self._name_matches[value]

    @cached_property
    def _name_matches(self) -> dict[str, Q]:
        return {}

    def filter_host(self, qs, name, value):
        # A subquery instead of a join keeps one row per task without DISTINCT.
        return qs.filter(
            pk__in=TaskInstance.hosts.through.objects.filter(host_id=value).values(
                "taskinstance_id"
            )
        )

    def filter_keyword(self, qs, name, value):
        # The clusters, tenants and creators whose name contains the keyword are found
        # first, among their few rows, then the tasks by those ids. Testing the joined
        # names of every task instead read all of them: 1.16 s on a million tasks, where
        # id lists let PostgreSQL combine index scans.
        match = (
            name_contains(value)
            | Q(cluster_id__in=ids_containing(Cluster, "name", value))
            | Q(tenant_id__in=ids_containing(Tenant, "name", value))
            | Q(creator_id__in=ids_containing(get_user_model(), "username", value))
        )
        digits = value.strip()
        # ASCII digits only: "²" is a digit that int() refuses, and "１" one that int() reads
        # as 1; and ids fit 64 bits.
        if digits.isascii() and digits.isdecimal() and len(digits) <= 18:
            match |= Q(pk=int(digits))
        return qs.filter(match)


# Beyond this many matching names, names are not "few" and listing them in the SQL stops
# paying for itself (10,000 names are ~300 KB of SQL and ~7 ms of planning on PostgreSQL).
NAME_LIST_MAX = 10_000


def name_contains(value: str) -> Q:
    """Tasks whose name contains `value`, case-insensitive: OCP's name filter.

    The same icontains test as on the task's own column, but on the few distinct names in
    TaskName (one query); the tasks are then found by name through the (name, id) index.
    Testing every task's name instead costs a full scan for the count and a walk of every
    match before a deep page's offset (~0.25 and ~0.5 s on a million tasks).

    The names go into the SQL as a list, not as a subquery: PostgreSQL then estimates the
    matches from each name's statistics, and picks an index walk for a first page and the
    (name, id) index plus a top-N sort for a deep one. Behind a subquery it cannot see
    which names match: it guessed 1 name where 1,001 matched, 2,000 where 10,000 rare ones
    did, and then walked half of a million tasks for a deep page (0.4 s instead of 0.15).
    Past NAME_LIST_MAX names the subquery it is, still cheaper than testing every task.
    """
    names = list(
        TaskName.objects.filter(name__icontains=value)
        .order_by()
        .values_list("name", flat=True)[: NAME_LIST_MAX + 1]
    )
    if len(names) > NAME_LIST_MAX:
        return Q(name__in=TaskName.objects.filter(name__icontains=value).values("name"))
    return Q(AnyOf(F("name"), Texts(names)))


def ids_containing(model, field: str, value: str) -> list[int] | QuerySet:
    """The ids of `model`'s rows whose `field` contains `value` (case-insensitive): a list,
    or past NAME_LIST_MAX matches the query itself, as name_contains does for names."""
    rows = model.objects.filter(**{f"{field}__icontains": value}).order_by()
    ids = list(rows.values_list("pk", flat=True)[: NAME_LIST_MAX + 1])
    return rows.values("pk") if len(ids) > NAME_LIST_MAX else ids


class AnyOf(Lookup):
    """`field IN (list)`, sent to PostgreSQL as one array parameter: `field = ANY(%s)`.

    The planner sees the same constant list either way; but a thousand %s placeholders
    cost Django and psycopg ~35 ms per list request to build, quote and parse (three
    statements carry the filter: count, page ids, page rows). Other databases get IN.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        return In(self.lhs, self.rhs).as_sql(compiler, connection)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if isinstance(self.rhs, Texts):
            return f"{lhs} = ANY(%s::text[])", [*lhs_params, self.rhs.literal]
        return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]


class Texts(tuple):
    """Texts for AnyOf, written once as the text of a PostgreSQL array: psycopg escaped each
    of a name filter's names for every statement that carries the filter (the total, the
    page, its rows: five with sort=duration's three parts), a few ms for a thousand names.
    The cache is the values' own: each statement resolves a copy of the lookup."""

    @cached_property
    def literal(self) -> str:
        return text_array(list(self))


def read_task_filters(queryset: QuerySet, params) -> TaskInstanceFilter:
    """The list filters in `params` (a QueryDict) read once, over `queryset`, or
    InvalidParameter: `.qs` is the filtered queryset, and counted_filters reads the same
    values for the total."""
    filterset = TaskInstanceFilter(params, queryset=queryset)
    if not filterset.is_valid():
        raise _invalid(filterset.errors)
    return filterset


def filter_tasks(queryset: QuerySet, params) -> QuerySet:
    """Apply the list filters in `params` (a QueryDict) or raise InvalidParameter."""
    return read_task_filters(queryset, params).qs


# What one sort value may be, as the OpenAPI schema states it (an empty value is no sort):
# a field, then optionally a comma and asc or desc in any case; nothing around them.
SORT_PATTERN = (
    "^(?:(?:"
    + "|".join([*SORT_FIELDS, *SORT_EXPRESSIONS])
    + ")(?:,(?:[aA][sS][cC]|[dD][eE][sS][cC])?)?)?$"
)


def parse_sort(values: list[str]) -> list[str | OrderBy]:
    """OCP's sort=field,asc|desc (repeatable) as ORDER BY terms, always ending with -id.
    Besides OCP's fields, `duration` (SORT_EXPRESSIONS); tasks not started sort last.
    Exactly SORT_PATTERN is accepted (no blanks around the field or the direction)."""
    order: list[str | OrderBy] = []
    for value in values:
        if not value:
            continue
        field, _, direction = value.partition(",")
        direction = direction.lower() or "asc"
        if field not in SORT_FIELDS and field not in SORT_EXPRESSIONS:
            sortable = ", ".join([*SORT_FIELDS, *SORT_EXPRESSIONS])
            raise InvalidParameter.because(
                "sort", f"unknown field '{field}'; sortable fields are {sortable}."
            )
        if direction not in ("asc", "desc"):
            raise InvalidParameter.because(
                "sort", f"direction must be asc or desc, got '{direction}'."
            )
        if field in SORT_EXPRESSIONS:
            expression = SORT_EXPRESSIONS[field]
            order.append(
                expression.desc(nulls_last=True)
                if direction == "desc"
                else expression.asc(nulls_last=True)
            )
            continue
        order.append(("-" if direction == "desc" else "") + SORT_FIELDS[field])
    if not any(isinstance(term, str) and term.lstrip("-") == "id" for term in order):
        order.append("-id")
    return order


def duration_sort(order) -> str | None:
    """ "asc" or "desc" when `order` (a queryset's ORDER BY terms) is parse_sort's for
    sort=duration alone (the duration, then id DESC); None for any other order."""
    if len(order) != 2 or order[1] not in ("-id", "-pk"):
        return None
    term = order[0]
    if not isinstance(term, OrderBy) or term.expression != DURATION:
        return None
    return "desc" if term.descending else "asc"


# The filters a total can be read for from TaskCount, or with a name from TaskNameCount
# (selectors.task_list_with_tally), and the keyword, whose matching clusters they can
# total (the rest is counted).
COUNTED_FILTERS = frozenset({"status", "type", "clusterId", "name"})
KEYWORD = "keyword"


class CountedFilters(NamedTuple):
    statuses: list[str] | None
    types: list[str] | None
    cluster_id: int | None
    keyword: str | None
    # The name filter's match (name_contains), or None without one.
    names: Q | None


def counted_filters(filterset: TaskInstanceFilter) -> CountedFilters | None:
    """The statuses, types, cluster id, name match and keyword of a task list whose only
    filters are those (None for one not given), or None when it has any other filter.
    `filterset` is read_task_filters'."""
    given = {
        name for name, value in filterset.form.cleaned_data.items() if value not in (None, "", [])
    }
    if given - COUNTED_FILTERS - {KEYWORD}:
        return None
    cleaned = filterset.form.cleaned_data
    return CountedFilters(
        statuses=cleaned.get("status") or None,
        types=cleaned.get("type") or None,
        cluster_id=cleaned.get("clusterId"),
        keyword=cleaned.get(KEYWORD) or None,
        names=filterset.name_match(cleaned["name"]) if cleaned.get("name") else None,
    )


def clusters_named_like(keyword: str) -> tuple[list[int], list[int]] | None:
    """(ids of the clusters whose name contains `keyword`, ids of the others), or None
    when it names none, or either is more than a few (NAME_LIST_MAX)."""
    matching = ids_containing(Cluster, "name", keyword)
    if not isinstance(matching, list) or not matching:
        return None
    others = list(
        Cluster.objects.exclude(pk__in=matching).values_list("pk", flat=True)[: NAME_LIST_MAX + 1]
    )
    return (matching, others) if len(others) <= NAME_LIST_MAX else None


def _invalid(errors) -> InvalidParameter:
    """A filter form's errors as one refusal, named after the first parameter at fault."""
    parts = []
    for field, messages in errors.items():
        text = " ".join(str(m) for m in messages)
        parts.append(f"Invalid parameter '{field}': {text}")
    return InvalidParameter(next(iter(errors)), " ".join(parts))


class OperationFilter(FilterSet):
    """The audit trail's filters: user, action (repeat or comma), task, bulk operation,
    time range."""

    user = TextFilter(field_name="actor_name", lookup_expr="iexact")
    action = CommaCharListFilter(field_name="action", widget=MultiValueWidget)
    task = IdFilter(field_name="task_id")
    bulk = filters.UUIDFilter(field_name="bulk_id")
    createdFrom = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    createdTo = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields: list[str] = []


def filter_operations(queryset: QuerySet, params) -> QuerySet:
    """Apply the audit filters in `params` (a QueryDict) or raise InvalidParameter."""
    filterset = OperationFilter(params, queryset=queryset)
    if not filterset.is_valid():
        raise _invalid(filterset.errors)
    return filterset.qs
