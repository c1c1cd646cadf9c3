#!/bin/sh
# Install everything the test suite needs, check the types with mypy, then run the suite:
#   1. on SQLite and Celery's filesystem broker (no services needed);
#   2. again on PostgreSQL + Redis, and the worker tests on RabbitMQ, when they answer
#      (with CI=true they must answer: a CI machine without them is a failure, not a skip);
#   3. the install smoke (tests/smoke_install.sh) on Redis and RabbitMQ when they answer.
# Tests marked `embedded` (pure code, or processes on their own SQLite and filesystem
# broker; tests/conftest.py says which) run in the SQLite stage only, and the browser tests
# in the PostgreSQL stage only (below).
# The stages share nothing (each has its own var folder, test databases, queues and
# ports), so they run side by side: most of a stage's time is spent waiting for worker
# processes, browsers and subprocesses, not computing. Each stage's output is shown whole
# when it ends, and the wall time of every stage at the very end.
# Environment: TEST_POSTGRES_URL, TEST_REDIS_URL, TEST_RABBITMQ_URL override the defaults;
# TEST_PROCESSES is pytest-xdist's process count for each of the two whole-suite stages
# (default 2; 0 runs them in-process). The RabbitMQ stage, a few dozen tests, runs
# in-process: on a 2-core machine more processes than that make the timing of the browser
# and drill tests, not the suite, the thing under test.
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

# Browser tests drive Debian's Chromium through Playwright; the command-line client's
# terminal tests run it in a tmux pane.
if ! command -v chromium >/dev/null 2>&1 || ! command -v tmux >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -q chromium tmux >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium tmux >/dev/null; }
fi

PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/taskcenter}
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
AMQP_URL=${TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672//}

answers() {
    .venv/bin/python - "$1" <<'PY'
import sys
url = sys.argv[1]
try:
    if url.startswith("postgres"):
        import psycopg
        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
    else:
        from kombu import Connection
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
except Exception as exc:
    print(f"{url.split('@')[-1]} does not answer: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

VAR="$PWD/var/test"
mkdir -p "$VAR"
PROCESSES=${TEST_PROCESSES:-2}
XDIST=""
[ "$PROCESSES" = 0 ] || XDIST="-n $PROCESSES --dist loadfile"

# --- Wall times, printed at the end whatever happens ---------------------------------------
TIMES="$VAR/stage-times"
: >"$TIMES"
summary() {
    echo
    echo "== wall time per stage"
    cat "$TIMES"
    echo "total: $(($(date +%s) - RUN_STARTED)) s"
}
RUN_STARTED=$(date +%s)
trap summary EXIT

# timed LABEL COMMAND...: run the command; note its wall time and outcome.
timed() {
    label=$1
    shift
    started=$(date +%s)
    status=0
    "$@" || status=$?
    outcome="passed"
    [ "$status" = 0 ] || outcome="FAILED (exit $status)"
    printf '%-40s %5d s  %s\n' "$label" "$(($(date +%s) - started))" "$outcome" >>"$TIMES"
    return "$status"
}

# Lint and types first: either fails the run before the slow suites start
# (configuration: [tool.mypy] in pyproject.toml).
lint() {
    .venv/bin/ruff check taskcenter tests benchmarks \
        && .venv/bin/ruff format --check taskcenter tests benchmarks \
        && .venv/bin/mypy \
        && .venv/bin/vulture
}
echo "== ruff, mypy and vulture"
timed "ruff, mypy and vulture" lint

echo "== docs"
docs() {
    .venv/bin/mkdocs build --strict --site-dir "$VAR/site"
}
timed "docs (mkdocs build --strict)" docs

missing=""
pg_up=false redis_up=false amqp_up=false
answers "$PG_URL" && pg_up=true
answers "$REDIS_URL" && redis_up=true
answers "$AMQP_URL" && amqp_up=true

# --- The stages, side by side ---------------------------------------------------------------
# background LABEL COMMAND...: start a stage; its output goes to its own log.
STAGES=""
background() {
    label=$1
    shift
    log="$VAR/$(echo "$label" | tr -c 'a-zA-Z0-9\n' '-').log"
    (timed "$label" "$@" >"$log" 2>&1) &
    STAGES="$STAGES $!:$log"
    echo "== started: $label"
}

# The browser tests drive pages whose queries the view tests run on both databases; they
# run once, on PostgreSQL + Redis as in production, or on SQLite when those do not answer.
SQLITE_SELECTION="not browser"
$pg_up && $redis_up || SQLITE_SELECTION=""

# shellcheck disable=SC2086 # XDIST is several words
sqlite_stage() {
    env -u DATABASE_URL TASKCENTER_VAR_DIR="$VAR/sqlite" \
        CELERY_BROKER_URL="filesystem://$VAR/sqlite/broker" \
        .venv/bin/python -m pytest -q $XDIST --durations=10 -m "$SQLITE_SELECTION" "$@"
}
# shellcheck disable=SC2086
postgres_stage() {
    TASKCENTER_VAR_DIR="$VAR/postgres" DATABASE_URL="$PG_URL" CELERY_BROKER_URL="$REDIS_URL" \
        .venv/bin/python -m pytest -q $XDIST --durations=10 -m "not embedded" "$@"
}
rabbitmq_stage() {
    TASKCENTER_VAR_DIR="$VAR/rabbitmq" DATABASE_URL="$PG_URL" CELERY_BROKER_URL="$AMQP_URL" \
        .venv/bin/python -m pytest -q -m worker --durations=10 "$@"
}

background "test suite on SQLite + filesystem broker" sqlite_stage "$@"
if $pg_up && $redis_up; then
    background "test suite on PostgreSQL + Redis" postgres_stage "$@"
else
    missing="$missing PostgreSQL/Redis"
fi
if $pg_up && $amqp_up; then
    background "worker tests on PostgreSQL + RabbitMQ" rabbitmq_stage "$@"
else
    missing="$missing RabbitMQ"
fi
# `pip install .` alone, in a clean virtual environment, runs web, worker and scheduler on
# each broker that answers (a dependency that only the test extras bring fails here).
smoke_brokers=""
$redis_up && smoke_brokers="$REDIS_URL"
$amqp_up && smoke_brokers="$smoke_brokers $AMQP_URL"
if [ -n "$smoke_brokers" ]; then
    # shellcheck disable=SC2086 # one argument per broker URL
    background "install smoke" env PYTHON="$PYTHON" sh tests/smoke_install.sh $smoke_brokers
fi

failed=0
for stage in $STAGES; do
    wait "${stage%%:*}" || failed=1
    cat "${stage#*:}"
done
[ "$failed" = 0 ] || exit 1

if [ -n "$missing" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "CI: services did not answer:$missing" >&2
        exit 1
    fi
    echo "note: skipped the runs on:$missing (not answering)"
fi
