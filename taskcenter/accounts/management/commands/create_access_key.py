"""create_access_key USERNAME: print a new key's id and secret, separated by a space."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from taskcenter.accounts.services import access_key_create


class Command(BaseCommand):
    help = (
        "Create an access key for USERNAME and print 'KEY_ID SECRET' on one line. "
        "The secret is shown only this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--description", default="", help="What the key is for.")

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            owner = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"There is no user named '{options['username']}'.") from None
        key, secret = access_key_create(owner=owner, description=options["description"])
        self.stdout.write(f"{key.key_id} {secret}")
