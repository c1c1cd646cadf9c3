"""Writes on accounts: users, roles and their scopes, access keys; each with its audit row.

Views check permission first with taskcenter.accounts.access; these services check again
when an actor is given (actor=None is the command line, run by whoever holds the server).
Every change writes an AuditEntry row (task=None, a `target` text) in its transaction.
"""

from __future__ import annotations

import secrets
import zoneinfo
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from taskcenter.accounts import access, crypto, roles
from taskcenter.accounts.access import can_manage_keys_of
from taskcenter.accounts.models import AccessKey, Preference, RoleScope
from taskcenter.accounts.sessions import end_sessions, with_epoch
from taskcenter.core.errors import InvalidParameter, NotPermitted, TaskCenterError
from taskcenter.tasks.audit import audit_record
from taskcenter.tasks.models import Cluster

# last_used_at is a hint for people, not an audit trail: write it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AccessKeyNotFound(TaskCenterError):
    """No such access key, or one the caller may not see."""

    code, http_status = 10002, 404


def access_key_create(*, owner, actor=None, description: str = "") -> tuple[AccessKey, str]:
    """A new key for `owner`; returns the row and the plain secret, which is not kept."""
    if not can_manage_keys_of(actor, owner):
        if owner.is_superuser:
            raise NotPermitted(
                f"{owner.get_username()} is a superuser: only they may make their own keys."
            )
        raise NotPermitted(
            f"{owner.get_username()} {access.BEYOND_OWN_RIGHTS}: a key for them would act "
            "with those rights, so only someone who holds all of them may make it."
        )
    secret = secrets.token_urlsafe(30)
    with transaction.atomic():
        key = AccessKey.objects.create(
            owner=owner,
            created_by=actor,
            key_id="AK" + secrets.token_hex(10).upper(),
            secret_encrypted=crypto.encrypt(secret),
            description=description,
        )
        _audit(actor, "ACCESS_KEY_CREATE", key)
    return key, secret


def access_key_revoke(*, key_id: str, actor=None) -> AccessKey:
    """Revoke a key at once; signed requests with it are refused from now on."""
    with transaction.atomic():
        key = (
            AccessKey.objects.select_for_update()
            .select_related("owner")
            .filter(key_id=key_id)
            .first()
        )
        if key is None or not can_manage_keys_of(actor, key.owner):
            # Someone else's key id is not confirmed to exist.
            raise AccessKeyNotFound(f"The access key {key_id} does not exist.")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            _audit(actor, "ACCESS_KEY_REVOKE", key)
    return key


def access_key_mark_used(*, key: AccessKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        AccessKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def _audit(actor, action: str, key: AccessKey) -> None:
    """The row names the key and its owner; made by someone else, the row's actor is the
    one who made it (a key made for oneself has one name for both)."""
    audit_record(
        actor=actor, action=action, target=f"access key {key.key_id} of {key.owner.get_username()}"
    )


# --- Users, roles and scopes ----------------------------------------------------------------

USERNAME_MAX = 150


class AccountNotFound(TaskCenterError):
    """No such user or role."""

    code, http_status = 10002, 404


def _audit_account(actor, action: str, target: str, reason: str = "", **states) -> None:
    audit_record(actor=actor, action=action, target=target, reason=reason, **states)


def _check_users(actor, target=None) -> None:
    if actor is not None:  # None: the command line
        access.require_manage_user(actor, target)


def _check_roles(actor) -> None:
    if actor is not None:
        access.require_manage_roles(actor)


def _validated_password(password: str, user) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidParameter.because("password", " ".join(exc.messages)) from None


def _user_for_update(user_id):
    User = get_user_model()
    try:
        return User.objects.select_for_update().get(pk=user_id)
    except (User.DoesNotExist, ValueError, TypeError):
        raise AccountNotFound(f"The user {user_id} does not exist.") from None


def user_create(
    *,
    username: str,
    password: str,
    actor=None,
    email: str = "",
    is_staff: bool = False,
    grants: dict[int, list[int]] | None = None,
):
    """A new active user; `grants` maps role (group) ids to cluster ids ([] = unscoped)."""
    _check_users(actor)
    if is_staff and not access.can_grant_staff(actor):
        raise NotPermitted("Only a superuser may give staff rights.")
    if grants:
        access.require_grants_within(actor, grants)
    User = get_user_model()
    username = (username or "").strip()
    if not username or len(username) > USERNAME_MAX:
        raise InvalidParameter.because("username", f"give 1 to {USERNAME_MAX} characters.")
    try:
        User.username_validator(username)
    except ValidationError:
        raise InvalidParameter.because(
            "username", "use letters, digits and @ . + - _ only."
        ) from None
    if User.objects.filter(username__iexact=username).exists():
        raise InvalidParameter.because("username", f"'{username}' is already taken.")
    _validated_password(password, User(username=username, email=email))
    with transaction.atomic():
        user = User.objects.create_user(
            username=username, password=password, email=email, is_staff=is_staff
        )
        _audit_account(actor, "USER_CREATE", f"user {username}", to_status="ACTIVE")
        if grants:
            _apply_grants(user, grants, actor)
    return user


def user_deactivate(*, user_id, actor=None):
    """Sign-ins, sessions, Basic auth and the user's access keys stop working at once."""
    return _set_active(user_id=user_id, active=False, actor=actor)


def user_activate(*, user_id, actor=None):
    return _set_active(user_id=user_id, active=True, actor=actor)


def _set_active(*, user_id, active: bool, actor):
    """(De)activate a user; a change is audited, asking for the current state is a no-op."""
    with transaction.atomic():
        user = _user_for_update(user_id)
        _check_users(actor, user)
        if not active and actor is not None and actor.pk == user.pk:
            raise InvalidParameter(None, "You cannot deactivate your own account.")
        if user.is_active != active:
            user.is_active = active
            user.save(update_fields=["is_active"])
            if not active:
                end_sessions(user)
            states = ("INACTIVE", "ACTIVE") if active else ("ACTIVE", "INACTIVE")
            _audit_account(
                actor,
                "USER_ACTIVATE" if active else "USER_DEACTIVATE",
                f"user {user.get_username()}",
                from_status=states[0],
                to_status=states[1],
            )
    return user


def user_set_password(*, user_id, password: str, actor=None):
    """Set a password: an admin's reset of someone else's, or a user's own change.

    The user's other sessions end (their session hash changes); the view keeps the
    changing user's own session with update_session_auth_hash.
    """
    with transaction.atomic():
        user = _user_for_update(user_id)
        own = actor is not None and actor.pk == user.pk
        if not own:
            _check_users(actor, user)
        _validated_password(password, user)
        user.set_password(password)
        user.save(update_fields=["password"])
        with_epoch(user)  # the view keeps the changer's own session with this user's hash
        _audit_account(
            actor,
            "PASSWORD_CHANGE" if own else "PASSWORD_RESET",
            f"user {user.get_username()}",
        )
    return user


def user_set_roles(*, user_id, grants: dict[int, list[int]], actor=None):
    """Make the user's roles exactly `grants`: role (group) id -> cluster ids ([] = all).

    Writes ROLE_GRANT / ROLE_REVOKE for roles added or removed and SCOPE_SET for each
    grant whose clusters changed.
    """
    with transaction.atomic():
        user = _user_for_update(user_id)
        _check_users(actor, user)
        access.require_grants_within(actor, grants)
        _apply_grants(user, grants, actor)
    return access.forget_permissions(user)


def _apply_grants(user, grants: dict[int, list[int]], actor) -> None:
    wanted_groups, clusters = _grant_targets(grants)
    current = {g.pk: g for g in user.groups.all()}
    scopes = {
        s.group_id: s for s in RoleScope.objects.filter(user=user).prefetch_related("clusters")
    }
    for group_id in sorted(set(current) - set(wanted_groups)):
        _revoke_role(user, current[group_id], scopes.pop(group_id, None), actor)
    for group_id, group in sorted(wanted_groups.items()):
        wanted = sorted(set(grants[group_id] or ()))
        where = ", ".join(clusters[c].name for c in wanted) if wanted else "all clusters"
        _grant_role(
            user,
            group,
            wanted,
            scope=scopes.get(group_id),
            held=group_id in current,
            actor=actor,
            reason=f"{group.name} on {where}",
        )


def _grant_targets(grants: dict[int, list[int]]) -> tuple[dict[int, Group], dict[int, Cluster]]:
    """The roles and clusters `grants` names, by id; refused when one does not exist."""
    groups = {g.pk: g for g in Group.objects.filter(pk__in=list(grants))}
    missing = set(grants) - set(groups)
    if missing:
        raise InvalidParameter.because("roles", f"no role with id {min(missing)}.")
    cluster_ids = {c for ids in grants.values() for c in ids or ()}
    clusters = {c.pk: c for c in Cluster.objects.filter(pk__in=cluster_ids)}
    if cluster_ids - set(clusters):
        raise InvalidParameter.because(
            "clusters", f"no cluster with id {min(cluster_ids - set(clusters))}."
        )
    return groups, clusters


def _revoke_role(user, group: Group, scope: RoleScope | None, actor) -> None:
    user.groups.remove(group)
    if scope is not None:
        scope.delete()
    _audit_account(actor, "ROLE_REVOKE", f"user {user.get_username()}", reason=group.name)


def _grant_role(
    user,
    group: Group,
    wanted: list[int],
    *,
    scope: RoleScope | None,
    held: bool,
    actor,
    reason: str,
) -> None:
    """Give `group` on the `wanted` clusters ([] = all); audit a new role or new clusters."""
    before = sorted(c.pk for c in scope.clusters.all()) if scope else []
    if not held:
        user.groups.add(group)
        _audit_account(actor, "ROLE_GRANT", f"user {user.get_username()}", reason=reason)
    elif before != wanted:
        _audit_account(actor, "SCOPE_SET", f"user {user.get_username()}", reason=reason)
    if not wanted:
        if scope is not None:
            scope.delete()
    elif before != wanted:
        if scope is None:
            scope = RoleScope.objects.create(user=user, group=group)
        scope.clusters.set(wanted)


def _is_builtin(group) -> bool:
    return group.name in roles.ROLE_PERMISSIONS


def assignable_permissions():
    """The permissions a role may hold: those of the built-in roles (ADMIN holds them all)."""
    query = Q(pk__in=[])
    for name in roles.ROLE_PERMISSIONS[roles.ADMIN]:
        app_label, codename = name.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(query).select_related("content_type")


def with_implied_view(names) -> set[str]:
    """`names` and, when any of them acts on tasks, the permission to view tasks: a role
    that may retry but not see tasks would lock its holders out of the pages where they
    retry, so the role is saved with viewing (and the role pages say so)."""
    wanted = set(names)
    if wanted & set(access.VIEW_IMPLIED_BY):
        wanted.add(access.PERM_VIEW)
    return wanted


def _names(permissions) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


def _permissions_from(names) -> list:
    wanted = with_implied_view(names)
    available = {f"{p.content_type.app_label}.{p.codename}": p for p in assignable_permissions()}
    unknown = wanted - set(available)
    if unknown:
        raise InvalidParameter.because(
            "permissions", f"'{sorted(unknown)[0]}' cannot be given to a role."
        )
    return [available[name] for name in sorted(wanted)]


def _clean_role_name(name: str, *, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 150:
        raise InvalidParameter.because("name", "give 1 to 150 characters.")
    if name.upper() in {r.upper() for r in roles.ROLE_PERMISSIONS}:
        raise InvalidParameter.because("name", f"'{name}' is a built-in role.")
    taken = Group.objects.filter(name__iexact=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise InvalidParameter.because("name", f"a role named '{name}' exists.")
    return name


def _role_for_update(role_id):
    try:
        return Group.objects.select_for_update().get(pk=role_id)
    except (Group.DoesNotExist, ValueError, TypeError):
        raise AccountNotFound(f"The role {role_id} does not exist.") from None


def role_create(*, name: str, permissions, actor=None):
    """A custom role holding `permissions` ("app_label.codename" names)."""
    _check_roles(actor)
    name = _clean_role_name(name)
    perms = _permissions_from(permissions)
    access.require_permissions_within(actor, _names(perms))
    with transaction.atomic():
        group = Group.objects.create(name=name)
        group.permissions.set(perms)
        _audit_account(
            actor,
            "ROLE_CREATE",
            f"role {name}",
            reason=", ".join(p.codename for p in perms) or "no permissions",
        )
    return group


def role_update(*, role_id, permissions, name: str | None = None, actor=None):
    """Set a custom role's permissions (and name). Built-in roles are kept in sync by the
    product and cannot be changed here."""
    _check_roles(actor)
    perms = _permissions_from(permissions)
    with transaction.atomic():
        group = _role_for_update(role_id)
        if _is_builtin(group):
            raise InvalidParameter(
                None,
                f"{group.name} is a built-in role: it cannot be changed. Create a custom role.",
            )
        old_name = group.name
        if name is not None and name.strip() != group.name:
            group.name = _clean_role_name(name, exclude_pk=group.pk)
            group.save(update_fields=["name"])
        before = _names(group.permissions.select_related("content_type"))
        after = _names(perms)
        # Its holders' rights change: who changes them must hold both the old and the new.
        access.require_permissions_within(actor, before | after)
        group.permissions.set(perms)
        changes = [f"+{n.split('.')[1]}" for n in sorted(after - before)]
        changes += [f"-{n.split('.')[1]}" for n in sorted(before - after)]
        if old_name != group.name:
            changes.insert(0, f"renamed from {old_name}")
        if changes:
            _audit_account(actor, "ROLE_UPDATE", f"role {group.name}", reason=", ".join(changes))
    return group


def role_delete(*, role_id, actor=None) -> None:
    _check_roles(actor)
    with transaction.atomic():
        group = _role_for_update(role_id)
        if _is_builtin(group):
            raise InvalidParameter(None, f"{group.name} is a built-in role: it cannot be deleted.")
        holders = group.user_set.count()
        name = group.name
        group.delete()  # its grants and their scopes go with it
        _audit_account(
            actor,
            "ROLE_DELETE",
            f"role {name}",
            reason=f"held by {holders} user{'s' if holders != 1 else ''}",
        )


def valid_time_zone(value: str) -> bool:
    """An IANA zone name this server knows (empty: the browser's zone)."""
    return value == "" or value in zoneinfo.available_timezones()


def preference_set_time_zone(*, user, time_zone: str) -> Preference:
    """The zone the pages show `user` times in; "" goes back to the browser's zone. A
    personal display setting: no audit row."""
    if not valid_time_zone(time_zone):
        raise InvalidParameter.because("time_zone", f"unknown time zone '{time_zone}'.")
    preference, _ = Preference.objects.update_or_create(
        user=user, defaults={"time_zone": time_zone}
    )
    cache.delete(time_zone_cache_key(user.pk))
    return preference


# Every page and poll reads the user's zone (accounts.middleware): it is kept in the cache
# for a short while. This process forgets it at once on a change; another web process
# (with a per-process cache) shows the new zone within this many seconds.
TIME_ZONE_CACHE_SECONDS = 30


def time_zone_cache_key(user_id: int) -> str:
    return f"taskcenter:time-zone:{user_id}"
