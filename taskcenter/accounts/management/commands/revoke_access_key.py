"""revoke_access_key KEY_ID: signed requests with this key are refused from now on."""

from django.core.management.base import BaseCommand, CommandError

from taskcenter.accounts.services import access_key_revoke
from taskcenter.core.errors import TaskCenterError


class Command(BaseCommand):
    help = "Revoke an access key by its id."

    def add_arguments(self, parser):
        parser.add_argument("key_id")

    def handle(self, *args, **options):
        try:
            key = access_key_revoke(key_id=options["key_id"])
        except TaskCenterError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"revoked {key.key_id} of {key.owner.get_username()}")
