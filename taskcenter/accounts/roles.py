"""The built-in roles: Django groups holding one permission per operation.

Kept in sync by a post_migrate hook, so an upgrade that adds a permission gives it to the
built-in roles without a hand-written migration each time.
"""

VIEWER = "TASK_VIEWER"
MANAGER = "TASK_MANAGER"
ADMIN = "ADMIN"

VIEW_PERMISSIONS = [
    "tasks.view_taskinstance",
    "tasks.view_subtaskinstance",
    "tasks.view_taskdefinition",
    "tasks.view_auditentry",
]
OPERATE_PERMISSIONS = [
    "tasks.retry_taskinstance",
    "tasks.rollback_taskinstance",
    "tasks.skip_subtaskinstance",
    "tasks.cancel_subtaskinstance",
    "tasks.cancel_taskinstance",
    "tasks.approve_subtaskinstance",
    "tasks.run_taskinstance",
    "tasks.manage_schedules",
]
ADMIN_PERMISSIONS = [
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.view_group",
    "auth.add_group",
    "auth.change_group",
    "auth.delete_group",
    "accounts.view_accesskey",
    "accounts.manage_all_accesskeys",
    "notifications.manage_notifications",
]

ROLE_PERMISSIONS = {
    VIEWER: VIEW_PERMISSIONS,
    MANAGER: VIEW_PERMISSIONS + OPERATE_PERMISSIONS,
    ADMIN: VIEW_PERMISSIONS + OPERATE_PERMISSIONS + ADMIN_PERMISSIONS,
}


def sync_builtin_roles(group_model, permission_model) -> None:
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = []
        for name in names:
            app_label, codename = name.split(".")
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is not None:
                wanted.append(permission)
        group.permissions.add(*wanted)


BUILTIN_ORDER = (ADMIN, MANAGER, VIEWER)


def role_names(user) -> list[str]:
    """The user's roles by the names the Admin pages give them: built-in roles first
    (ADMIN, TASK_MANAGER, TASK_VIEWER), then custom roles by name."""
    names = [group.name for group in user.groups.all()]
    builtin = [role for role in BUILTIN_ORDER if role in names]
    return builtin + sorted((n for n in names if n not in BUILTIN_ORDER), key=str.casefold)


def role_badge(user) -> dict[str, str]:
    """The top bar's badge: the first role's name, "+N" for the others; all of them (and
    the clusters a role is limited to) in its tooltip."""
    if user.is_superuser:
        return {"text": "Superuser", "title": "Superuser: every permission"}
    names = role_names(user)
    if not names:
        return {"text": "No role", "title": "No role: ask an administrator for one"}
    from taskcenter.accounts.models import RoleScope

    scopes = {
        scope.group.name: sorted(c.name for c in scope.clusters.all())
        for scope in RoleScope.objects.filter(user=user)
        .select_related("group")
        .prefetch_related("clusters")
    }
    described = [
        f"{name} on {', '.join(scopes[name]) or 'no cluster'}" if name in scopes else name
        for name in names
    ]
    text = names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"
    label = "Your role" if len(names) == 1 else "Your roles"
    return {"text": text, "title": f"{label}: {'; '.join(described)}"}
