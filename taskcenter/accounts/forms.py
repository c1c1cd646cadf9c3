"""Forms of the account pages: they parse and check input; the services decide and write."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib.auth.models import Group

from taskcenter.accounts import selectors, services
from taskcenter.core.forms import form_field


def _permission_choices() -> list[tuple[str, str]]:
    return [
        (f"{p.content_type.app_label}.{p.codename}", p.name)
        for p in services.assignable_permissions().order_by("content_type__app_label", "id")
    ]


class PasswordPairForm(forms.Form):
    password1 = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Repeat the password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class OwnPasswordForm(PasswordPairForm):
    current = forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    field_order = ["current", "password1", "password2"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_current(self):
        value = self.cleaned_data["current"]
        if not self.user.check_password(value):
            raise forms.ValidationError("The current password is not right.")
        return value


class UserCreateForm(PasswordPairForm):
    username = forms.CharField(
        max_length=services.USERNAME_MAX,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )
    email = forms.EmailField(required=False)
    roles = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    clusters = forms.MultipleChoiceField(
        required=False,
        label="Limit the roles to clusters",
        help_text="Leave empty for every cluster.",
        widget=forms.CheckboxSelectMultiple,
    )
    is_staff = forms.BooleanField(
        required=False, label="Staff (superusers only: Django's admin site is for superusers)"
    )
    field_order = ["username", "email", "password1", "password2", "roles", "clusters"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "clusters", forms.MultipleChoiceField).choices = [
            (str(pk), n) for pk, n in selectors.cluster_choices()
        ]
        form_field(self, "roles", forms.ModelMultipleChoiceField).queryset = Group.objects.order_by(
            "name"
        )

    def grants(self) -> dict[int, list[int]]:
        clusters = [int(c) for c in self.cleaned_data["clusters"]]
        return {role.pk: clusters for role in self.cleaned_data["roles"]}


class GrantsForm(forms.Form):
    """One checkbox per role (role_<id>) and, per role, its clusters (clusters_<id>)."""

    def __init__(self, *args, roles_: list[Group], **kwargs):
        super().__init__(*args, **kwargs)
        self.roles = roles_
        cluster_choices = [(str(pk), n) for pk, n in selectors.cluster_choices()]
        for role in roles_:
            self.fields[f"role_{role.pk}"] = forms.BooleanField(required=False, label=role.name)
            self.fields[f"clusters_{role.pk}"] = forms.MultipleChoiceField(
                required=False, choices=cluster_choices, widget=forms.CheckboxSelectMultiple
            )

    def grants(self) -> dict[int, list[int]]:
        return {
            role.pk: [int(c) for c in self.cleaned_data[f"clusters_{role.pk}"]]
            for role in self.roles
            if self.cleaned_data[f"role_{role.pk}"]
        }

    def rows(self):
        """(role, its checkbox, its clusters field) for the template."""
        return [(r, self[f"role_{r.pk}"], self[f"clusters_{r.pk}"]) for r in self.roles]


class RoleForm(forms.Form):
    name = forms.CharField(max_length=150)
    permissions = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "permissions", forms.MultipleChoiceField).choices = _permission_choices()


class KeyCreateForm(forms.Form):
    description = forms.CharField(
        max_length=255, required=False, help_text="What the key is for, e.g. “CI pipeline”."
    )


class AdminKeyCreateForm(KeyCreateForm):
    # The queryset is filled per form: the user model is known only once apps are ready.
    owner: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=None, empty_label="Choose a user"
    )
    field_order = ["owner", "description"]

    def __init__(self, *args, **kwargs):
        from django.contrib.auth import get_user_model

        super().__init__(*args, **kwargs)
        form_field(self, "owner", forms.ModelChoiceField).queryset = (
            get_user_model().objects.filter(is_active=True).order_by("username")
        )


def _zone_choices() -> list[tuple[str, str]]:
    return [("", "The browser's zone")] + [
        (name, name) for name in sorted(zoneinfo.available_timezones())
    ]


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Pages show times in this zone, with UTC when you point at one.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "time_zone", forms.ChoiceField).choices = _zone_choices()
