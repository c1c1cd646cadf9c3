"""Access keys: credentials for programs that sign requests (OCP's AK/SK scheme)."""

from django.conf import settings
from django.db import models


class AccessKey(models.Model):
    """One key id and its secret, belonging to a user.

    The secret is stored encrypted (taskcenter.accounts.crypto), shown once when created;
    a revoked key stays as a record of who had it and when it was last used.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys"
    )
    key_id = models.CharField(max_length=64, unique=True)
    secret_encrypted = models.TextField()
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("manage_all_accesskeys", "Can create and revoke access keys of other users"),
        ]

    def __str__(self) -> str:
        return f"{self.key_id} ({self.owner})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
