from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_save
from django.dispatch import receiver

from taskcenter.accounts.models import AccessKey
from taskcenter.accounts.services import access_key_revoke
from taskcenter.tasks.audit import audit_record

_ADMIN_SITE_ACTIONS = {
    ADDITION: "ADMIN_SITE_ADD",
    CHANGE: "ADMIN_SITE_CHANGE",
    DELETION: "ADMIN_SITE_DELETE",
}


@receiver(post_save, sender=LogEntry, dispatch_uid="taskcenter.accounts.admin_site_audit")
def audit_admin_site_change(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    """Every change made in Django's admin site (which logs each one as a LogEntry, in the
    change's transaction) also goes to the audit trail: who, what, which record."""
    if not created:
        return
    kind = instance.content_type
    model = kind.model if isinstance(kind, ContentType) else "object"
    audit_record(
        actor=instance.user,
        action=_ADMIN_SITE_ACTIONS.get(instance.action_flag, "ADMIN_SITE_CHANGE"),
        target=f"{model} {instance.object_repr}"[:200],
        reason=instance.get_change_message()[:1000],
    )


@admin.register(AccessKey)
class AccessKeyAdmin(admin.ModelAdmin):
    """Read-only listing; keys are created by their owners (or the command) and revoked here."""

    list_display = ("key_id", "owner", "description", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("key_id", "owner__username", "description")
    exclude = ("secret_encrypted",)
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected access keys")
    def revoke(self, request, queryset):
        for key in queryset:
            access_key_revoke(key_id=key.key_id, actor=request.user)
        messages.success(request, f"Revoked {queryset.count()} access key(s).")
