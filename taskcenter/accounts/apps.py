from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save

# The roles hold permissions of these apps; syncing after each of their post_migrate (the
# signal goes out app by app, in INSTALLED_APPS order) means the last run sees them all,
# also after a flush (transactional tests), where no data migration runs again.
_ROLE_APPS = {"accounts", "tasks", "notifications"}


def _sync_roles(sender, **kwargs) -> None:
    if sender.label not in _ROLE_APPS:
        return
    from django.contrib.auth.models import Group, Permission

    from taskcenter.accounts.roles import sync_builtin_roles

    sync_builtin_roles(Group, Permission)


class AccountsConfig(AppConfig):
    name = "taskcenter.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Runs after every migrate, once all permissions exist, so roles stay in sync on
        # upgrade; the data migration creates the groups on first install.
        post_migrate.connect(_sync_roles, dispatch_uid="taskcenter.accounts.sync_roles")
        _watch_grants()


def _watch_grants() -> None:
    """Every table that grants rest on moves the access counter when it changes
    (access.access_changed): memberships, a role's permissions, a user's own permissions,
    scopes and their clusters, and users themselves (superuser and active flags)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from taskcenter.accounts.access import access_changed
    from taskcenter.accounts.models import RoleScope

    user_model = get_user_model()
    through_tables = (
        user_model.groups.through,
        user_model.user_permissions.through,
        Group.permissions.through,
        RoleScope.clusters.through,
    )
    for through in through_tables:
        m2m_changed.connect(access_changed, sender=through, dispatch_uid=f"access:{through}")
    for model in (user_model, Group, RoleScope):
        post_save.connect(access_changed, sender=model, dispatch_uid=f"access-save:{model}")
        post_delete.connect(access_changed, sender=model, dispatch_uid=f"access-del:{model}")


class SuperuserAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with its site open to superusers only (accounts.admin_site)."""

    default = False  # AccountsConfig stays this module's app config

    default_site = "taskcenter.accounts.admin_site.SuperuserAdminSite"
