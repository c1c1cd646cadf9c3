"""Forms of the dashboard.

The filter forms only *render* the filter bars (their names are the OCP list parameters,
so a filtered URL is the API's URL too); validating and applying the filters is the job of
the FilterSets behind taskcenter.tasks.selectors, which turn bad values into one clear
message. ActionForm validates what an operator sends with an operation.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from taskcenter.core.forms import form_field
from taskcenter.dashboard.presenters import TASK_TYPE_CHOICES
from taskcenter.tasks.models import TaskStatus

PAGE_SIZES = (10, 20, 50, 100, 200)
DEFAULT_PAGE_SIZE = 20


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def format_value(self, value):
        """Show an ISO value (with seconds or an offset) the way the browser's picker reads it."""
        if not value:
            return None
        try:
            parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
            if parsed is not None and timezone.is_aware(parsed):
                parsed = timezone.localtime(parsed)
        except (OverflowError, ValueError):  # out of range: the page says so in its error
            return None
        return parsed.strftime("%Y-%m-%dT%H:%M") if parsed is not None else None


def _split_commas(data: QueryDict, names: list[str]) -> QueryDict:
    """status=RUNNING,FAILED reads like status=RUNNING&status=FAILED (as in the API)."""
    data = data.copy()
    for name in names:
        values = [part.strip() for v in data.getlist(name) for part in v.split(",") if part.strip()]
        data.setlist(name, values)
    return data


class TaskFilterForm(forms.Form):
    name = forms.CharField(
        required=False,
        label="Name",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Task name"}),
    )
    status = forms.MultipleChoiceField(
        required=False,
        label="Status",
        choices=TaskStatus.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    type = forms.ChoiceField(required=False, label="Type")
    clusterId = forms.ChoiceField(required=False, label="Cluster")
    tenantName = forms.CharField(
        required=False,
        label="Tenant",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Tenant name"}),
    )
    hostId = forms.ChoiceField(required=False, label="Host")
    creator = forms.ChoiceField(required=False, label="Creator")
    createdFrom = forms.DateTimeField(
        required=False, label="Created from", widget=DateTimeLocalInput
    )
    createdTo = forms.DateTimeField(
        required=False, label="Created before", widget=DateTimeLocalInput
    )
    size = forms.TypedChoiceField(
        required=False,
        label="Per page",
        coerce=int,
        choices=[(n, str(n)) for n in PAGE_SIZES],
    )

    def __init__(self, data: QueryDict, *, clusters, hosts, creators):
        # A mutable copy that stays a QueryDict, so that active_count can read lists.
        self.query = _split_commas(data, ["status"])
        if not self.query.get("size"):
            self.query["size"] = str(DEFAULT_PAGE_SIZE)
        super().__init__(self.query)
        choices = {
            "type": [("", "Any type"), *TASK_TYPE_CHOICES],
            "clusterId": [("", "Any cluster"), *clusters],
            "hostId": [("", "Any host"), *hosts],
            "creator": [("", "Anyone"), *[(n, n) for _, n in creators]],
        }
        for name, options in choices.items():
            form_field(self, name, forms.ChoiceField).choices = options

    @property
    def active_count(self) -> int:
        """How many filters are set (the page and the size are not filters)."""
        names = [n for n in self.fields if n != "size"]
        return sum(1 for n in names if any(v for v in self.query.getlist(n)))


class AuditFilterForm(forms.Form):
    user = forms.CharField(
        required=False,
        label="User",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Username"}),
    )
    action = forms.ChoiceField(required=False, label="Action")
    task = forms.CharField(
        required=False,
        label="Task id",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "e.g. 42"}),
    )
    bulk = forms.CharField(
        required=False,
        label="Bulk id",
        widget=forms.TextInput(
            attrs={"placeholder": "A bulk operation's id", "spellcheck": "false"}
        ),
    )
    createdFrom = forms.DateTimeField(required=False, label="From", widget=DateTimeLocalInput)
    createdTo = forms.DateTimeField(required=False, label="Before", widget=DateTimeLocalInput)

    def __init__(self, data, *, actions, users):
        super().__init__(data)
        form_field(self, "action", forms.ChoiceField).choices = [
            ("", "Any action"),
            # The audit's action codes, as its rows tag them (and its `action` parameter).
            *[(a, a) for a in actions],
        ]
        self.users = users

    @property
    def active_count(self) -> int:
        return sum(1 for n in self.fields if self.data.get(n))


class ActionForm(forms.Form):
    """What comes with a verb: the reason (required for Skip and Roll back), and the audit
    mark the page was rendered with (to tell "already done by X")."""

    reason = forms.CharField(required=False, max_length=2000, strip=True)
    seen = forms.IntegerField(required=False, min_value=0)

    def __init__(self, *args, reason_required: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.reason_required = reason_required

    def clean_reason(self):
        reason = self.cleaned_data["reason"]
        if self.reason_required and len(reason) < 3:
            raise forms.ValidationError(
                "A reason is required for this operation (at least 3 characters); "
                "it is kept in the audit trail."
            )
        return reason
