import pytest

from taskcenter.schedules.cron import InvalidCron
from taskcenter.schedules.describe import describe


@pytest.mark.parametrize(
    ("expression", "zone", "words"),
    [
        ("0 15 0 ? * 1", "GMT+08:00", "every Sunday at 00:15 (GMT+08:00)"),
        ("0 0 2 * * ?", None, "every day at 02:00"),
        ("0 0 2 ? * *", None, "every day at 02:00"),
        ("0 0/5 * * * ?", None, "every 5 minutes"),
        ("0 * * * * ?", None, "every minute"),
        ("*/30 * * * * ?", "GMT+08:00", "every 30 seconds (GMT+08:00)"),
        ("0 30 * * * ?", None, "every hour at minute 30"),
        ("0 0 */2 * * ?", None, "every 2 hours"),
        ("0 15 10 L * ?", None, "at 10:15 on the last day of every month"),
        ("0 0 0 LW * ?", None, "at 00:00 on the last weekday of every month"),
        ("0 0 0 15W * ?", None, "at 00:00 on the weekday nearest day 15 of every month"),
        ("0 15 10 ? * 6L", None, "at 10:15 on the last Friday of every month"),
        ("0 15 10 ? * 6#3", None, "at 10:15 on the third Friday of every month"),
        ("0 0 12 ? * MON-FRI", None, "every weekday at 12:00"),
        ("0 0 12 ? * 2,4,6", "Asia/Shanghai", "every Monday, Wednesday and Friday at 12:00 (Asia/Shanghai)"),
        ("0 0 9 1,15 * ?", None, "at 09:00 on days 1 and 15 of every month"),
        ("30 5 9 1 * ?", None, "at 09:05:30 on day 1 of every month"),
        ("0 0 12 1 1 ? 2025", None, "cron 0 0 12 1 1 ? 2025"),
        ("0 0 9-17 * * ?", "UTC", "cron 0 0 9-17 * * ? (UTC)"),
    ],
)  # fmt: skip
def test_describe(expression, zone, words):
    assert describe(expression, zone) == words


def test_describe_refuses_what_quartz_refuses():
    with pytest.raises(InvalidCron):
        describe("0 0 0 * * *")
