"""Template context for the top bar: whether to link the admin pages (lazy: one check)."""

from django.utils.functional import SimpleLazyObject

from taskcenter.accounts import access


def account_nav(request) -> dict:
    user = getattr(request, "user", None)
    return {"nav_account_admin": SimpleLazyObject(lambda: access.can_manage_accounts(user))}
