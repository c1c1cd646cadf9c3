"""Django's admin site, for superusers only.

The product's own Admin pages (/manage/) are where admins work; Django's admin edits users
and groups with no regard for roles, so a staff member there could set a superuser's
password or tick is_superuser on their own record. Only a superuser (who has every right
anyway) may sign in to it or use it, and every change made there is copied to the audit
trail (accounts.admin).
"""

from __future__ import annotations

from django import forms
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm


class SuperuserAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": "Please enter the correct user name and password of a superuser.",
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not user.is_superuser:
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class SuperuserAdminSite(AdminSite):
    login_form = SuperuserAuthenticationForm

    def has_permission(self, request):
        user = request.user
        return user.is_active and user.is_superuser
