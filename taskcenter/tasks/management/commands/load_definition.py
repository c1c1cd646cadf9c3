import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from taskcenter.core.errors import InvalidDefinition
from taskcenter.tasks import services


class Command(BaseCommand):
    help = (
        "Store a task definition written as JSON (shell and HTTP subtasks) as the next "
        "version of NAME. The file holds {description, parameters: [...], subtasks: [...]}."
    )

    # call_command(..., stdin=stream) reads the document from that stream, as createsuperuser.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("name", help="Definition name, e.g. 'Rotate logs'")
        parser.add_argument("file", help="Path to the JSON document, or - for standard input")

    def handle(self, *args, name: str, file: str, **options):
        try:
            if file == "-":
                text = (options.get("stdin") or sys.stdin).read()
            else:
                text = Path(file).read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{file} is not valid JSON: {exc}") from None
        try:
            row = services.definition_create_from_data(name=name, spec=spec)
        except InvalidDefinition as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"stored '{row.name}' version {row.version} (id {row.pk})")
