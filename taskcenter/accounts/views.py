"""Account pages: the admin pages (users, roles, access keys, account audit) and every
user's own page (password, own access keys).

Function-based views. Each one asks taskcenter.accounts.access first (through the
@account_view / @admin_view decorators and the helpers they call), reads through the
selectors and writes through the services. Domain errors become the shared error page, and the top bar
comes from the shared page() (taskcenter.core.http), so these pages look like the rest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from taskcenter.accounts import access, selectors, services
from taskcenter.accounts.forms import (
    AdminKeyCreateForm,
    GrantsForm,
    KeyCreateForm,
    OwnPasswordForm,
    PasswordPairForm,
    RoleForm,
    TimeZoneForm,
    UserCreateForm,
)
from taskcenter.core import params as parse
from taskcenter.core.errors import InvalidParameter, NotPermitted
from taskcenter.core.http import page, paging, signed_in_view
from taskcenter.tasks import selectors as task_selectors

AUDIT_PAGE_SIZE = 50
T = TypeVar("T")


account_view = signed_in_view()  # signed-in users only


def admin_view(require):
    """An admin page: signed in, and `require(user)` (an access helper) passes, else 403."""
    return signed_in_view(require)


def _admin_page(request, template: str, context: dict, status: int = 200):
    user = request.user
    context = {
        "nav": "admin",
        "can_users": access.can_manage_users(user),
        "can_roles": access.can_manage_roles(user),
        "can_keys": access.can_manage_all_keys(user),
        "can_retention": access.can_view_retention(user),
        **context,
    }
    response = page(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _form_error(form, exc: InvalidParameter) -> None:
    """Put a service's refusal next to the field it names (else above the form)."""
    name = exc.parameter
    if name == "password" and "password1" in form.fields:
        name = "password1"
    if name in form.fields:
        form.add_error(name, exc.reason)
    else:
        form.add_error(None, exc.message)


@dataclass(frozen=True)
class _Saved(Generic[T]):
    value: T  # what the service returned


def _save(form: forms.Form, write: Callable[[dict[str, Any]], T]) -> _Saved[T] | None:
    """Run `write(form.cleaned_data)` once the form is valid. None when the form or the
    service refused; the service's refusal is then shown on the form (_form_error)."""
    if not form.is_valid():
        return None
    try:
        return _Saved(write(form.cleaned_data))
    except InvalidParameter as exc:
        _form_error(form, exc)
        return None


def _status(request) -> int:
    """A page that shows a form again after a POST answers 400."""
    return 400 if request.method == "POST" else 200


# --- Users ------------------------------------------------------------------------------------


@require_GET
def manage_index(request):
    """The first Administration tab the user may open (not a refusal for one who manages
    roles or keys but not users)."""
    user = request.user
    if access.can_manage_roles(user) and not access.can_manage_users(user):
        return redirect("accounts:role_list")
    if access.can_manage_all_keys(user) and not access.can_manage_users(user):
        return redirect("accounts:key_list")
    return redirect("accounts:user_list")


@admin_view(access.require_manage_users)
@require_GET
def user_list(request):
    query = request.GET.get("q", "").strip()
    state = request.GET.get("state", "")
    if state not in ("", "active", "inactive"):
        state = ""
    users = selectors.user_list(query=query, state=state)
    return _admin_page(
        request,
        "accounts/user_list.html",
        {"tab": "users", "users": users, "query": query, "state": state},
    )


@admin_view(access.require_manage_users)
@require_http_methods(["GET", "POST"])
def user_create(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST":
        saved = _save(
            form,
            lambda data: services.user_create(
                username=data["username"],
                password=data["password1"],
                email=data["email"],
                is_staff=data["is_staff"],
                grants=form.grants(),
                actor=request.user,
            ),
        )
        if saved:
            messages.success(request, f"User {saved.value.get_username()} was created.")
            return redirect("accounts:user_detail", user_id=saved.value.pk)
    context = {"tab": "users", "form": form}
    return _admin_page(request, "accounts/user_create.html", context, _status(request))


def _user_context(request, target, **forms) -> dict:
    all_roles = selectors.role_list()
    grants = {g.role.pk: g for g in selectors.user_grants(user=target)}
    grants_form = forms.get("grants_form") or GrantsForm(
        initial={
            **{f"role_{pk}": True for pk in grants},
            **{f"clusters_{pk}": [str(c.pk) for c in g.clusters] for pk, g in grants.items()},
        },
        roles_=all_roles,
    )
    return {
        "tab": "users",
        "target": target,
        "grants": list(grants.values()),
        "grants_form": grants_form,
        "password_form": forms.get("password_form") or PasswordPairForm(),
        "keys": selectors.access_keys_of(owner=target),
        "can_change": access.can_manage_user(request.user, target),
        "is_self": target.pk == request.user.pk,
        "has_clusters": bool(selectors.cluster_choices()),
        "history": selectors.account_operations(user=target.get_username())[:10],
    }


@admin_view(access.require_manage_users)
@require_GET
def user_detail(request, user_id: int):
    target = selectors.user_get(user_id=user_id)
    return _admin_page(request, "accounts/user_detail.html", _user_context(request, target))


@admin_view(access.require_manage_users)
@require_POST
def user_roles(request, user_id: int):
    target = selectors.user_get(user_id=user_id)
    form = GrantsForm(request.POST, roles_=selectors.role_list())
    set_roles = functools.partial(services.user_set_roles, user_id=target.pk, actor=request.user)
    if _save(form, lambda _: set_roles(grants=form.grants())):
        messages.success(request, f"Roles of {target.get_username()} were saved.")
        return redirect("accounts:user_detail", user_id=target.pk)
    context = _user_context(request, target, grants_form=form)
    return _admin_page(request, "accounts/user_detail.html", context, status=400)


@admin_view(access.require_manage_users)
@require_POST
def user_password(request, user_id: int):
    target = selectors.user_get(user_id=user_id)
    form = PasswordPairForm(request.POST)
    if _set_password(request, form, target.pk):
        messages.success(
            request,
            f"The password of {target.get_username()} was reset; their other sessions have ended.",
        )
        return redirect("accounts:user_detail", user_id=target.pk)
    context = _user_context(request, target, password_form=form)
    return _admin_page(request, "accounts/user_detail.html", context, status=400)


def _set_password(request, form, user_id: int) -> bool:
    """Set the password from `form` (password1); the signed-in user who set their own
    stays signed in (other sessions end)."""
    saved = _save(
        form,
        lambda data: services.user_set_password(
            user_id=user_id, password=data["password1"], actor=request.user
        ),
    )
    if saved and user_id == request.user.pk:
        update_session_auth_hash(request, saved.value)
    return saved is not None


@admin_view(access.require_manage_users)
@require_POST
def user_deactivate(request, user_id: int):
    target = selectors.user_get(user_id=user_id)
    try:
        services.user_deactivate(user_id=target.pk, actor=request.user)
    except InvalidParameter as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"{target.get_username()} was deactivated: their sessions, passwords and access "
            "keys are refused from now on.",
        )
    return redirect("accounts:user_detail", user_id=target.pk)


@admin_view(access.require_manage_users)
@require_POST
def user_activate(request, user_id: int):
    target = selectors.user_get(user_id=user_id)
    services.user_activate(user_id=target.pk, actor=request.user)
    messages.success(request, f"{target.get_username()} was activated again.")
    return redirect("accounts:user_detail", user_id=target.pk)


# --- Roles ------------------------------------------------------------------------------------


def _permission_groups(form_field, checked: set[str]) -> list[dict]:
    """The permissions checklist in three groups: seeing, operating, administering."""
    from taskcenter.accounts import roles

    groups = [
        ("See", set(roles.VIEW_PERMISSIONS)),
        ("Operate", set(roles.OPERATE_PERMISSIONS)),
        ("Administer", set(roles.ADMIN_PERMISSIONS)),
    ]
    out = []
    for title, names in groups:
        items = [
            {
                "value": value,
                "label": label,
                "checked": value in checked,
                "implies_view": value in access.VIEW_IMPLIED_BY and value != access.PERM_VIEW,
            }
            for value, label in form_field.field.choices
            if value in names
        ]
        note = ""
        if title == "Operate":
            note = "Each of these includes seeing tasks: “Can view task instance” is added."
        out.append({"title": title, "items": items, "note": note})
    return out


def _view_added(form) -> str:
    """The sentence that says viewing was added to a role that operates tasks."""
    chosen = set(form.cleaned_data["permissions"])
    if access.PERM_VIEW in chosen or access.PERM_VIEW not in services.with_implied_view(chosen):
        return ""
    return " “Can view task instance” was added: operating tasks needs seeing them."


@admin_view(access.require_manage_roles)
@require_http_methods(["GET", "POST"])
def role_list(request):
    form = RoleForm(request.POST or None)
    if request.method == "POST":
        saved = _save(
            form,
            lambda data: services.role_create(
                name=data["name"], permissions=data["permissions"], actor=request.user
            ),
        )
        if saved:
            messages.success(request, f"Role {saved.value.name} was created.{_view_added(form)}")
            return redirect("accounts:role_detail", role_id=saved.value.pk)
    checked = set(form["permissions"].value() or []) if form.is_bound else set()
    context = {
        "tab": "roles",
        "roles": selectors.role_list(),
        "form": form,
        "permission_groups": _permission_groups(form["permissions"], checked),
        "open_create": form.is_bound,
    }
    return _admin_page(request, "accounts/role_list.html", context, _status(request))


@admin_view(access.require_manage_roles)
@require_http_methods(["GET", "POST"])
def role_detail(request, role_id: int):
    role = selectors.role_get(role_id=role_id)
    current = selectors.role_permission_names(role=role)
    if request.method == "POST":
        form = RoleForm(request.POST)
        update = functools.partial(services.role_update, role_id=role.pk, actor=request.user)
        if _save(form, lambda data: update(name=data["name"], permissions=data["permissions"])):
            messages.success(
                request, f"Role {form.cleaned_data['name']} was saved.{_view_added(form)}"
            )
            return redirect("accounts:role_detail", role_id=role.pk)
        checked = set(form["permissions"].value() or [])
    else:
        form = RoleForm(initial={"name": role.name, "permissions": sorted(current)})
        checked = current
    holders = list(role.user_set.order_by("username"))
    context = {
        "tab": "roles",
        "role": role,
        "form": form,
        "holders": holders,
        "permission_groups": _permission_groups(form["permissions"], checked),
    }
    return _admin_page(request, "accounts/role_detail.html", context, _status(request))


@admin_view(access.require_manage_roles)
@require_POST
def role_delete(request, role_id: int):
    role = selectors.role_get(role_id=role_id)
    try:
        services.role_delete(role_id=role.pk, actor=request.user)
    except InvalidParameter as exc:
        messages.error(request, exc.message)
        return redirect("accounts:role_detail", role_id=role.pk)
    messages.success(request, f"Role {role.name} was deleted.")
    return redirect("accounts:role_list")


# --- Access keys ------------------------------------------------------------------------------


@admin_view(access.require_manage_all_keys)
@require_http_methods(["GET", "POST"])
def key_list(request):
    state = request.GET.get("state", "")
    if state not in ("", "active", "revoked"):
        state = ""
    form = AdminKeyCreateForm(request.POST or None)
    status, created = 200, None
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                key, secret = services.access_key_create(
                    owner=form.cleaned_data["owner"],
                    description=form.cleaned_data["description"],
                    actor=request.user,
                )
            except NotPermitted as exc:
                form.add_error("owner", exc.message)
            else:
                created, status = {"key": key, "secret": secret}, 200
                form = AdminKeyCreateForm()
    context = {
        "tab": "keys",
        "keys": selectors.access_key_list(state=state),
        "state": state,
        "form": form,
        "created": created,
        "open_create": status == 400,
    }
    return _admin_page(request, "accounts/key_list.html", context, status)


@admin_view(access.require_manage_all_keys)
@require_POST
def key_revoke(request, key_id: str):
    key = services.access_key_revoke(key_id=key_id, actor=request.user)
    messages.success(request, f"Access key {key.key_id} of {key.owner.get_username()} was revoked.")
    return redirect("accounts:key_list")


# --- Account audit ----------------------------------------------------------------------------


@admin_view(access.require_manage_accounts)
@require_GET
def account_audit(request):
    action = request.GET.get("action", "")
    if action not in selectors.ACCOUNT_ACTIONS:
        action = ""
    who = request.GET.get("user", "").strip()
    page_no = parse.page_or_first(request.GET)
    rows, total = task_selectors.operation_page(
        queryset=selectors.account_operations(action=action, user=who),
        page=page_no,
        size=AUDIT_PAGE_SIZE,
    )
    context = {
        "tab": "audit",
        "rows": rows,
        "total": total,
        **paging(page_no=page_no, size=AUDIT_PAGE_SIZE, rows=rows, total=total),
        "actions": selectors.ACCOUNT_ACTIONS,
        "action": action,
        "who": who,
    }
    return _admin_page(request, "accounts/audit.html", context)


# --- Own account ------------------------------------------------------------------------------


def _account_page(request, status: int = 200, **extra):
    user = request.user
    context = {
        "nav": "account",
        "password_form": extra.pop("password_form", None) or OwnPasswordForm(user=user),
        "key_form": extra.pop("key_form", None) or KeyCreateForm(),
        "keys": selectors.access_keys_of(owner=user),
        "grants": selectors.user_grants(user=user),
        "zone_form": extra.pop("zone_form", None)
        or TimeZoneForm(initial={"time_zone": selectors.time_zone_of(user=user)}),
        **extra,
    }
    response = page(request, "accounts/account.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@account_view
@require_GET
def account(request):
    return _account_page(request)


@account_view
@require_POST
def account_password(request):
    form = OwnPasswordForm(request.POST, user=request.user)
    if _set_password(request, form, request.user.pk):
        messages.success(request, "Your password was changed; your other sessions ended.")
        return redirect("accounts:account")
    return _account_page(request, status=400, password_form=form)


@account_view
@require_POST
def account_time_zone(request):
    form = TimeZoneForm(request.POST)
    if not form.is_valid():
        return _account_page(request, status=400, zone_form=form)
    zone = form.cleaned_data["time_zone"]
    services.preference_set_time_zone(user=request.user, time_zone=zone)
    messages.success(
        request,
        f"Times are now shown in {zone}."
        if zone
        else "Times are now shown in your browser's zone.",
    )
    return redirect("accounts:account")


@account_view
@require_POST
def account_key_create(request):
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        return _account_page(request, status=400, key_form=form)
    key, secret = services.access_key_create(
        owner=request.user, description=form.cleaned_data["description"], actor=request.user
    )
    return _account_page(request, created={"key": key, "secret": secret})


@account_view
@require_POST
def account_key_revoke(request, key_id: str):
    key = selectors.access_key_get(key_id=key_id)
    if key.owner_id != request.user.pk:
        # Someone else's key id is not confirmed to exist (admins use the keys page).
        raise services.AccessKeyNotFound(f"The access key {key_id} does not exist.")
    services.access_key_revoke(key_id=key.key_id, actor=request.user)
    messages.success(request, f"Access key {key.key_id} was revoked.")
    return redirect("accounts:account")
