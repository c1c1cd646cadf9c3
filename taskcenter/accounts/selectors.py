"""Reads on accounts."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.utils import timezone

from taskcenter.accounts import crypto, roles
from taskcenter.accounts.models import AccessKey, AccessVersion, Preference, RoleScope, SessionEpoch
from taskcenter.accounts.services import (
    TIME_ZONE_CACHE_SECONDS,
    AccountNotFound,
    time_zone_cache_key,
)
from taskcenter.tasks import sql
from taskcenter.tasks.models import AuditEntry, Cluster, SubtaskInstance


def access_key_for_signature(*, key_id: str) -> tuple[AccessKey, str] | None:
    """An active key with an active owner, and its plain secret; None otherwise."""
    key = (
        AccessKey.objects.select_related("owner")
        .filter(key_id=key_id, revoked_at__isnull=True, owner__is_active=True)
        .first()
    )
    if key is None:
        return None
    secret = crypto.decrypt(key.secret_encrypted)
    if secret is None:  # SECRET_KEY changed without a fallback: the key cannot verify
        return None
    return key, secret


def access_keys_of(*, owner) -> list[AccessKey]:
    return list(AccessKey.objects.filter(owner=owner).select_related("created_by").order_by("-id"))


# --- Users, roles and the account audit -------------------------------------------------------

ACCOUNT_ACTIONS = (
    "USER_CREATE",
    "USER_DEACTIVATE",
    "USER_ACTIVATE",
    "PASSWORD_RESET",
    "PASSWORD_CHANGE",
    "ROLE_GRANT",
    "ROLE_REVOKE",
    "SCOPE_SET",
    "ROLE_CREATE",
    "ROLE_UPDATE",
    "ROLE_DELETE",
    "ACCESS_KEY_CREATE",
    "ACCESS_KEY_REVOKE",
    # Changes made by superusers in Django's admin site (accounts.admin).
    "ADMIN_SITE_ADD",
    "ADMIN_SITE_CHANGE",
    "ADMIN_SITE_DELETE",
)


@dataclass(frozen=True)
class Grant:
    role: Group
    clusters: tuple[Cluster, ...]  # empty: every cluster

    @property
    def scoped(self) -> bool:
        return bool(self.clusters)


class UserRow(NamedTuple):
    """A user as the user list shows them, with their roles as (name, scoped) labels."""

    user: AbstractBaseUser
    grant_labels: list[tuple[str, bool]]


def user_list(*, query: str = "", state: str = "") -> list[UserRow]:
    users = get_user_model().objects.prefetch_related("groups").order_by("username")
    if query:
        users = users.filter(Q(username__icontains=query) | Q(email__icontains=query))
    if state == "active":
        users = users.filter(is_active=True)
    elif state == "inactive":
        users = users.filter(is_active=False)
    found = list(users)
    scoped = set(
        RoleScope.objects.filter(user__in=found).values_list("user_id", "group_id").distinct()
    )
    return [
        UserRow(
            user,
            [
                (group.name, (user.pk, group.pk) in scoped)
                for group in sorted(user.groups.all(), key=lambda g: g.name)
            ],
        )
        for user in found
    ]


def user_get(*, user_id):
    User = get_user_model()
    try:
        return User.objects.get(pk=user_id)
    except (User.DoesNotExist, ValueError, TypeError):
        raise AccountNotFound(f"The user {user_id} does not exist.") from None


def user_grants(*, user) -> list[Grant]:
    scopes = {
        s.group_id: tuple(sorted(s.clusters.all(), key=lambda c: c.name))
        for s in RoleScope.objects.filter(user=user).prefetch_related("clusters")
    }
    return [
        Grant(role=group, clusters=scopes.get(group.pk, ()))
        for group in user.groups.order_by("name")
    ]


def _with_builtin(groups: QuerySet[Group, Any]) -> QuerySet[Group, Any]:
    """Each role with `builtin`: whether the product defines it (and keeps it in sync)."""
    is_builtin = Q(name__in=list(roles.ROLE_PERMISSIONS))
    return groups.annotate(builtin=ExpressionWrapper(is_builtin, output_field=BooleanField()))


def role_list() -> list[Group]:
    groups = list(
        _with_builtin(Group.objects.annotate(holders=Count("user", distinct=True)))
        .prefetch_related("permissions__content_type")
        .order_by("name")
    )
    # Built-in roles first, from least to most rights; then the custom ones by name.
    order = {name: i for i, name in enumerate(roles.ROLE_PERMISSIONS)}
    return sorted(groups, key=lambda g: (order.get(g.name, len(order)), g.name.lower()))


def role_get(*, role_id) -> Group:
    try:
        return _with_builtin(Group.objects.all()).get(pk=role_id)
    except (Group.DoesNotExist, ValueError, TypeError):
        raise AccountNotFound(f"The role {role_id} does not exist.") from None


def role_permission_names(*, role: Group) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in role.permissions.select_related("content_type")
    }


def cluster_choices() -> list[tuple[int, str]]:
    return list(Cluster.objects.order_by("name").values_list("pk", "name"))


def access_key_list(*, state: str = "") -> list[AccessKey]:
    keys = AccessKey.objects.select_related("owner", "created_by").order_by("-id")
    if state == "active":
        keys = keys.filter(revoked_at__isnull=True)
    elif state == "revoked":
        keys = keys.filter(revoked_at__isnull=False)
    return list(keys)


def access_key_get(*, key_id: str) -> AccessKey:
    key = AccessKey.objects.select_related("owner").filter(key_id=key_id).first()
    if key is None:
        raise AccountNotFound(f"The access key {key_id} does not exist.")
    return key


def account_operations(*, action: str = "", user: str = ""):
    """The account part of the audit trail (no task): who changed which user, role or key."""
    rows = AuditEntry.objects.filter(task__isnull=True, action__in=ACCOUNT_ACTIONS)
    if action:
        rows = rows.filter(action=action)
    if user:
        rows = rows.filter(Q(actor_name__iexact=user) | Q(target__icontains=f" {user}"))
    return rows.order_by("-id")


def time_zone_of(*, user) -> str:
    """The zone `user` chose for the pages, or "" (the browser's zone)."""
    if not getattr(user, "is_authenticated", False):
        return ""
    key = time_zone_cache_key(user.pk)
    zone = cache.get(key)
    if zone is None:
        zone = (
            Preference.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first()
            or ""
        )
        cache.set(key, zone, TIME_ZONE_CACHE_SECONDS)
    return zone


# --- The log poll's re-check ---------------------------------------------------------------


def subtask_if_still_let_in(
    *,
    subtask_id: int,
    task_id: int,
    session_key: str,
    user_id: int,
    epoch: int,
    access_version: int,
    fields: tuple[str, ...],
) -> SubtaskInstance | None:
    """The subtask (only `fields` loaded) while a remembered decision that this session may
    read its log still holds: the session exists and has not expired, the user is active
    with the same session epoch, and the access counter has not moved; else None.

    Hand-built SQL, one statement, because the log poll runs it every second for every
    open tail (taskcenter.dashboard.log_poll): through the ORM the statement alone would
    cost more than the rest of the answer. Table and column names come from the models.
    """
    loaded = tuple(f for f in SubtaskInstance._meta.concrete_fields if f.attname in fields)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    arguments = [
        *(subtask_id, task_id, session_key, now),
        *(user_id, True),
        *(user_id, epoch, access_version),
    ]
    # Prepared on PostgreSQL (once per connection): the database does not parse and plan
    # it again every second for every open tail.
    rows = sql.run(*sql.prepared(_let_in_statement(tuple(f.column for f in loaded)), arguments))
    if not rows:
        return None
    return SubtaskInstance.from_db(connection.alias, [f.attname for f in loaded], rows[0])


@functools.cache
def _let_in_statement(columns: tuple[str, ...]) -> str:
    selected = ", ".join(f"s.{column}" for column in columns)
    return f"""
        SELECT {selected} FROM {SubtaskInstance._meta.db_table} s
        WHERE s.id = %s AND s.task_id = %s
          AND EXISTS (SELECT 1 FROM {Session._meta.db_table} d
                      WHERE d.session_key = %s AND d.expire_date > %s)
          AND EXISTS (SELECT 1 FROM {get_user_model()._meta.db_table} u
                      WHERE u.id = %s AND u.is_active = %s)
          AND COALESCE((SELECT e.epoch FROM {SessionEpoch._meta.db_table} e
                        WHERE e.user_id = %s), 0) = %s
          AND COALESCE((SELECT v.version FROM {AccessVersion._meta.db_table} v
                        WHERE v.id = 1), 0) = %s
    """
