import pytest
from django.core.management import CommandError, ManagementUtility, call_command


def _run(*args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("cron_next", *args, stdout=out, stderr=err)
    return out.getvalue().split(), err.getvalue()


def test_prints_next_fire_times_in_utc():
    lines, _ = _run("0 15 0 ? * 1", "--tz", "GMT+08:00", "--after", "2024-01-15T00:00:00Z")
    assert lines == [
        "2024-01-20T16:15:00Z",
        "2024-01-27T16:15:00Z",
        "2024-02-03T16:15:00Z",
        "2024-02-10T16:15:00Z",
        "2024-02-17T16:15:00Z",
    ]


def test_count_and_a_naive_after_read_in_the_zone():
    lines, _ = _run(
        "0 30 2 * * ?", "--tz", "Europe/Berlin", "--after", "2024-03-30T03:00", "--count", "2"
    )
    # The 31st has no 02:30 in Berlin (clocks jump from 02:00 to 03:00): Quartz skips it.
    assert lines == ["2024-03-31T00:30:00Z", "2024-04-01T00:30:00Z"][1:] + ["2024-04-02T00:30:00Z"]


def test_never_fires_prints_nothing_and_says_so():
    lines, err = _run("0 0 0 30 2 ?")
    assert lines == []
    assert "never fires" in err


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["0 0 0 * * *"], "Support for specifying both a day-of-week AND a day-of-month"),
        (["0 0 0 ? * 8"], "Day-of-Week values must be between 1 and 7"),
        (["0 0 0 ? * 1", "--tz", "Mars/Olympus"], "Unknown time zone"),
        (["0 0 0 ? * 1", "--after", "yesterday"], "is not an ISO-8601 time"),
        (["0 0 0 ? * 1", "--count", "0"], "--count must be at least 1"),
    ],
)
def test_invalid_input_is_an_error_with_exit_status_2(args, reason):
    with pytest.raises(CommandError) as failed:
        call_command("cron_next", *args)
    assert failed.value.returncode == 2
    assert reason in str(failed.value)


def test_exit_status_and_stderr_from_the_command_line(capsys):
    utility = ManagementUtility(["manage.py", "cron_next", "0 0 0 ? * 0"])
    with pytest.raises(SystemExit) as exited:
        utility.execute()
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert "Day-of-Week values must be between 1 and 7" in captured.err
    assert captured.out == ""
