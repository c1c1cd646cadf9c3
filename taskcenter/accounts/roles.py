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
    "tasks.view_operation",
]
OPERATE_PERMISSIONS = [
    "tasks.retry_taskinstance",
    "tasks.rollback_taskinstance",
    "tasks.skip_subtaskinstance",
    "tasks.cancel_subtaskinstance",
    "tasks.cancel_taskinstance",
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


ROLE_LABELS = {VIEWER: "Viewer", MANAGER: "Operator", ADMIN: "Admin"}


def role_label(user) -> str:
    """What the top bar calls the user: their highest built-in role."""
    if user.is_superuser:
        return "Superuser"
    names = {group.name for group in user.groups.all()}
    for role in (ADMIN, MANAGER, VIEWER):
        if role in names:
            return ROLE_LABELS[role]
    return "No role"
