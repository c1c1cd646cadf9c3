from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs) -> None:
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
        post_migrate.connect(_sync_roles, sender=self)
