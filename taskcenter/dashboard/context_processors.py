"""The top bar of every page (dashboard and account pages alike): task counts, the user's
role and the admin links. Lazy, so a partial that does not show the top bar costs nothing."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from taskcenter.accounts import access, roles
from taskcenter.tasks import selectors


def top_bar(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_counts": SimpleLazyObject(lambda: _top_counts(user)),
        "nav_role": SimpleLazyObject(lambda: roles.role_label(user)),
        "nav_is_admin": SimpleLazyObject(lambda: access.can_open_django_admin(user)),
        "nav_account_admin": SimpleLazyObject(lambda: access.can_manage_accounts(user)),
    }


def _top_counts(user) -> dict:
    """Running and failed counts with the change cursor the top bar's poll starts from."""
    visible = access.visible_tasks(user)
    cursor = selectors.task_changes(visible=visible).cursor
    return {**selectors.task_top_counts(visible=visible), "cursor": cursor}
