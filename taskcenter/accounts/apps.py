from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate

# The roles hold permissions of these apps; syncing after each of their post_migrate (the
# signal goes out app by app, in INSTALLED_APPS order) means the last run sees them all,
# also after a flush (transactional tests), where no data migration runs again.
_ROLE_APPS = {"accounts", "tasks"}


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


class SuperuserAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with its site open to superusers only (accounts.admin_site)."""

    default = False  # AccountsConfig stays this module's app config

    default_site = "taskcenter.accounts.admin_site.SuperuserAdminSite"
