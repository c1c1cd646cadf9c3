"""Small helpers shared by the forms of the dashboard and the account pages."""

from __future__ import annotations

from typing import TypeVar

from django import forms

FieldT = TypeVar("FieldT", bound=forms.Field)


def form_field(form: forms.BaseForm, name: str, kind: type[FieldT]) -> FieldT:
    """The form's own copy of field `name`, checked to be a `kind`.

    Forms fill choices and querysets in per request; `form.fields` is typed as plain
    fields, so this names the kind once and fails loudly if the declaration changes.
    """
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"{type(form).__name__}.{name} is a {type(field).__name__}, not a {kind}")
    return field
