"""create_user USERNAME --role ROLE ... [--scope CLUSTER ...] [--password-env VAR] [--staff]"""

import os
import secrets

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from taskcenter.accounts.services import user_create
from taskcenter.core.errors import TaskCenterError
from taskcenter.tasks.models import Cluster


class Command(BaseCommand):
    help = (
        "Create an active user with roles, optionally limited to clusters. The password is "
        "read from the environment variable named by --password-env; without it, one is "
        "generated and printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            action="append",
            default=[],
            help="A role (group) name, e.g. TASK_VIEWER, TASK_MANAGER, ADMIN; repeatable.",
        )
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            metavar="CLUSTER",
            help="Limit the roles to this cluster (by name); repeatable. Default: every cluster.",
        )
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="Read the password from this environment variable (never from the command line).",
        )
        parser.add_argument(
            "--staff", action="store_true", help="Let the user open Django's admin site."
        )
        parser.add_argument("--email", default="")

    def handle(self, *args, **options):
        roles = []
        for name in options["role"]:
            role = Group.objects.filter(name=name).first()
            if role is None:
                known = ", ".join(Group.objects.order_by("name").values_list("name", flat=True))
                raise CommandError(f"There is no role named '{name}' (roles: {known}).")
            roles.append(role)
        clusters = []
        for name in options["scope"]:
            cluster = Cluster.objects.filter(name=name).first()
            if cluster is None:
                raise CommandError(f"There is no cluster named '{name}'.")
            clusters.append(cluster.pk)
        if clusters and not roles:
            raise CommandError("--scope limits roles: give at least one --role.")
        generated = False
        if options["password_env"]:
            password = os.environ.get(options["password_env"])
            if not password:
                raise CommandError(f"The environment variable {options['password_env']} is empty.")
        else:
            password, generated = secrets.token_urlsafe(18), True
        try:
            user = user_create(
                username=options["username"],
                password=password,
                email=options["email"],
                is_staff=options["staff"],
                grants={role.pk: clusters for role in roles},
            )
        except TaskCenterError as exc:
            raise CommandError(exc.message) from None
        where = f" on {', '.join(options['scope'])}" if clusters else ""
        held = ", ".join(r.name for r in roles) or "no role"
        self.stderr.write(f"created user {user.get_username()} ({held}{where})")
        if generated:
            self.stdout.write(f"{user.get_username()} {password}")
