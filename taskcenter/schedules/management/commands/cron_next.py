"""cron_next: the next fire times of a Quartz cron expression, as the scheduler computes them.

Exit status 2, with the reason on stderr, when the expression or the zone is invalid.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from taskcenter.schedules import cron

EXIT_INVALID = 2


class Command(BaseCommand):
    help = (
        "Print the next fire times of a Quartz cron expression as ISO-8601 UTC, one per line. "
        "Exit 2 when the expression or the zone is invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("expression", help="A Quartz cron expression, e.g. '0 15 0 ? * 1'.")
        parser.add_argument(
            "--tz",
            default="UTC",
            help="Time zone: an IANA name (Asia/Shanghai) or GMT+08:00 (default UTC).",
        )
        parser.add_argument(
            "--after",
            help="Start after this time, ISO-8601 (default now). Without an offset it is read "
            "in --tz.",
        )
        parser.add_argument("--count", type=int, default=5, help="How many (default 5).")

    def handle(self, *args, expression, tz, after, count, **options):
        try:
            parsed = cron.parse(expression)
            zone = cron.parse_zone(tz)
        except cron.InvalidCron as invalid:
            raise CommandError(invalid.advice, returncode=EXIT_INVALID) from None
        except cron.InvalidZone as invalid:
            raise CommandError(invalid.reason, returncode=EXIT_INVALID) from None
        if count < 1:
            raise CommandError("--count must be at least 1.", returncode=EXIT_INVALID)
        start = self._after(after, zone)
        fires = parsed.next_fire_times(start, zone, count)
        for fire in fires:
            self.stdout.write(fire.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if not fires:
            self.stderr.write(f"{expression!r} never fires after {start.isoformat()}.")

    @staticmethod
    def _after(text: str | None, zone) -> datetime:
        if not text:
            return datetime.now(UTC)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise CommandError(
                f"--after {text!r} is not an ISO-8601 time.", returncode=EXIT_INVALID
            ) from None
        if moment.tzinfo is None:
            moment = cron.wall_time_to_instant(moment, zone)
        return moment
