"""The top bar of every page (dashboard and account pages alike): task counts, the user's
roles, the links they may follow and the no-worker banner. Lazy, so a partial that does not show the top bar costs nothing."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from taskcenter.accounts import access, roles
from taskcenter.dashboard.approvals import awaiting_count
from taskcenter.dashboard.fleet import no_worker_banner
from taskcenter.notifications import selectors as notification_selectors
from taskcenter.tasks import selectors


def top_bar(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_counts": SimpleLazyObject(lambda: _top_counts(user)),
        # "N awaiting your approval": the waiting gates this user may decide.
        "nav_approvals": SimpleLazyObject(lambda: {"count": awaiting_count(user)}),
        "nav_role": SimpleLazyObject(lambda: roles.role_badge(user)),
        # The task pages (and Jobs, Schedules, Audit behind them) only for those who may
        # see tasks; the others get links that lead somewhere they may go.
        "nav_can_view": SimpleLazyObject(lambda: access.can_view(user)),
        "nav_is_admin": SimpleLazyObject(lambda: access.can_open_django_admin(user)),
        "nav_account_admin": SimpleLazyObject(lambda: access.can_manage_accounts(user)),
        "no_worker": SimpleLazyObject(no_worker_banner),
        "nav_unread": SimpleLazyObject(lambda: notification_selectors.unread_count(user)),
        "nav_notify_admin": SimpleLazyObject(lambda: access.can_manage_notifications(user)),
    }


def _top_counts(user) -> dict:
    """Running and failed counts with the change cursor the top bar's poll starts from."""
    visible = access.visible_tasks(user)
    cursor = selectors.task_changes(visible=visible).cursor
    return {**selectors.task_top_counts(visible=visible), "cursor": cursor}
