"""The Data retention page (Administration): for each kind of data, how long it is kept,
how many rows it has, their size and the oldest; the prune itself runs in the scheduler."""

from __future__ import annotations

from django.conf import settings
from django.views.decorators.http import require_GET

from taskcenter.accounts import access
from taskcenter.core.http import page, signed_in_view
from taskcenter.retention.selectors import retention_stats


@signed_in_view(access.require_view_retention)
@require_GET
def retention(request):
    user = request.user
    context = {
        "nav": "admin",
        "tab": "retention",
        "can_users": access.can_manage_users(user),
        "can_roles": access.can_manage_roles(user),
        "can_keys": access.can_manage_all_keys(user),
        "can_retention": True,
        "kinds": retention_stats(),
        "hour": settings.TASKCENTER_RETENTION_HOUR,
        "export_dir": settings.TASKCENTER_RETENTION_EXPORT_DIR,
    }
    response = page(request, "dashboard/retention.html", context)
    response["Cache-Control"] = "no-store"
    return response
