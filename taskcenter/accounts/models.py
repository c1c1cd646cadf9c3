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
    # Who made the key: the owner, someone managing keys for them, or nobody (the command
    # line). Someone else can make a key only for a user whose rights they hold all of
    # (taskcenter.accounts.access.can_manage_keys_of).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
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


class RoleScope(models.Model):
    """Limits one user's grant of one role (a group) to some clusters and their tenants.

    Without a RoleScope the grant is unscoped: the role's permissions apply to every task.
    With one, they apply only to tasks of the listed clusters (taskcenter.accounts.access).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_scopes"
    )
    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="scopes")
    clusters = models.ManyToManyField("tasks.Cluster", related_name="role_scopes")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "group"], name="rolescope_user_group")
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.group} on {', '.join(c.name for c in self.clusters.all())}"


class SignInFailureCount(models.Model):
    """Failed and in-flight sign-ins of one user name from one address (PAIR), or of one
    address (ADDRESS), in one time window.

    One row per (kind, key, bucket) under a unique constraint; an attempt is admitted by a
    compare-and-set UPDATE (count + pending < limit), so concurrent attempts cannot slip
    past (taskcenter.accounts.throttle).
    """

    class Kind(models.TextChoices):
        PAIR = "pair"
        ADDRESS = "address"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    key = models.CharField(max_length=255)
    bucket = models.BigIntegerField(help_text="Start of the window, in windows since the epoch.")
    count = models.PositiveIntegerField(default=0, help_text="Failed sign-ins.")
    pending = models.PositiveIntegerField(default=0, help_text="Passwords being checked now.")
    checked = models.PositiveIntegerField(
        default=0, help_text="Passwords checked in this window; waiting attempts watch it move."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key", "bucket"], name="signin_failure_kind_key_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: {self.count} in window {self.bucket}"


class KnownSignIn(models.Model):
    """A user name that signed in successfully from an address, and when it last did.

    The per-address failure limit (many user names guessed from one address) does not hold
    back a user name known at that address: others' failures there cannot lock out its
    right password (taskcenter.accounts.throttle). Rows older than
    TASKCENTER_SIGNIN_KNOWN_DAYS no longer count and are replaced on the next success.
    """

    key = models.CharField(max_length=255, unique=True, help_text="Address and user name.")
    last_success_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key} signed in at {self.last_success_at:%Y-%m-%d %H:%M:%S}"


class SeenSignature(models.Model):
    """A signed unsafe request already accepted, until its Date leaves the accepted window.

    Kept in the database, not a process's memory or Django's (per-process) cache, so that a
    replay is refused whichever web process or machine it reaches: the unique digest makes
    the second insert fail, atomically, however the two requests race
    (taskcenter.accounts.replay).
    """

    digest = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of key id and signature."
    )
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.digest[:12]}... until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class SessionEpoch(models.Model):
    """How many times a user's sessions were ended for good (on each deactivation).

    Django keeps a session only while the user's session auth hash matches the one stored
    at sign-in; that hash comes from the password alone, so a deactivated then reactivated
    user's old session would work again. The epoch is mixed into the hash
    (taskcenter.accounts.sessions), so each deactivation ends every session for good.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="session_epoch",
    )
    epoch = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user}: epoch {self.epoch}"


class Preference(models.Model):
    """A user's own settings for the pages. Absent until the user changes one.

    time_zone: the IANA zone the pages show times in; empty means the browser's zone.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="preference",
    )
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone or 'browser zone'}"


class AccessVersion(models.Model):
    """One counter that goes up whenever anyone's grants may have changed (roles given or
    taken, a role's permissions, scopes) and whenever a user is saved (a new password,
    the active or superuser flag; a sign-in's last_login alone does not count):
    `access.access_changed`.

    Decisions remembered outside a request (the log poll's, taskcenter.dashboard.log_poll)
    are kept with the counter they were taken under and dropped once it has moved, so a
    withdrawn role takes effect on the very next request. The bump is in the changing
    transaction, so no one can see the new grants with the old counter.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"access version {self.version}"
