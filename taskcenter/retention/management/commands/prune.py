"""`manage.py prune`: remove what is past its retention now, or (--dry-run) count it."""

from django.core.management.base import BaseCommand, CommandError

from taskcenter.retention import policy
from taskcenter.retention.prune import PRUNERS, prune


class Command(BaseCommand):
    help = (
        "Prune finished tasks, fires, audit entries, bulk operations, sessions, sign-in "
        "counters, worker presence and the outbox past their retention (the scheduler does it daily)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be pruned; delete nothing."
        )
        parser.add_argument(
            "--kind",
            action="append",
            choices=list(PRUNERS),
            help="Only this kind (repeat for several); default: every kind.",
        )
        parser.add_argument(
            "--export-dir",
            default=None,
            help="Write what is pruned there first, as gzip JSON lines "
            "(default: TASKCENTER_RETENTION_EXPORT_DIR; '' for none).",
        )
        parser.add_argument("--batch", type=int, default=None, help="Rows per batch.")

    def handle(self, *args, dry_run=False, kind=None, export_dir=None, batch=None, **options):
        if batch is not None and not 1 <= batch <= 10000:
            raise CommandError("--batch must be between 1 and 10000")
        report = prune(kinds=kind, dry_run=dry_run, export_dir=export_dir, batch=batch)
        verb = "would prune" if dry_run else "pruned"
        for key, result in report.kinds.items():
            kind_ = policy.BY_KEY[key]
            span = policy.keep(key)
            if span is None:
                self.stdout.write(f"{kind_.label}: kept for ever")
                continue
            related = "".join(f", {n} {name}" for name, n in result.related.items() if n)
            line = (
                f"{kind_.label} (kept {policy.describe_keep(span)}): {verb} {result.rows}{related}"
            )
            if result.export is not None:
                line += f" -> {result.export}"
            self.stdout.write(line)
        self.stdout.write(f"{'dry run' if dry_run else 'prune'} took {report.seconds:.1f} s")
