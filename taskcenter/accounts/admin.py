from django.contrib import admin, messages

from taskcenter.accounts.models import AccessKey
from taskcenter.accounts.services import access_key_revoke


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
