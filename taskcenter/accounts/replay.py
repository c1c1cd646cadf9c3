"""Replay protection for signed requests: each signed unsafe request is accepted once.

A signature covers the method, body, Date, host and path, so the same signature twice is
the same request sent twice. Its digest is inserted under a unique constraint; the insert
that finds it there (or loses the race to another process) means a replay. Rows are kept
until their Date leaves the accepted clock window, after which the Date check refuses the
request anyway, and are then deleted.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from taskcenter.accounts.models import SeenSignature


def first_use(*, key_id: str, signature: str, expires_at: datetime) -> bool:
    """Record this signature; False when it was recorded before (a replay)."""
    digest = hashlib.sha256(f"{key_id}\n{signature}".encode()).hexdigest()
    SeenSignature.objects.filter(expires_at__lt=timezone.now()).delete()
    try:
        with transaction.atomic():
            SeenSignature.objects.create(digest=digest, expires_at=expires_at)
    except IntegrityError:
        return False
    return True
