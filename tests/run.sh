#!/bin/sh
# Install everything the test suite needs, check the types with mypy, then run the suite:
#   1. on SQLite and Celery's filesystem broker (no services needed);
#   2. again on PostgreSQL + Redis, and the worker tests on RabbitMQ, when they answer
#      (with CI=true they must answer: a CI machine without them is a failure, not a skip);
#   3. the install smoke (tests/smoke_install.sh) on Redis and RabbitMQ when they answer.
# Environment: TEST_POSTGRES_URL, TEST_REDIS_URL, TEST_RABBITMQ_URL override the defaults.
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

# Browser tests drive Debian's Chromium through Playwright.
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
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

export TASKCENTER_VAR_DIR="$PWD/var/test"
mkdir -p "$TASKCENTER_VAR_DIR"

# Lint and types first: either fails the run before the slow suites start
# (configuration: [tool.mypy] in pyproject.toml).
echo "== ruff and mypy"
.venv/bin/ruff check taskcenter tests benchmarks
.venv/bin/ruff format --check taskcenter tests benchmarks
.venv/bin/mypy
.venv/bin/vulture

echo "== docs"
.venv/bin/mkdocs build --strict --site-dir "$TASKCENTER_VAR_DIR/site"

echo "== test suite on SQLite + filesystem broker"
env -u DATABASE_URL CELERY_BROKER_URL="filesystem://$TASKCENTER_VAR_DIR/broker" \
    .venv/bin/python -m pytest -q "$@"

missing=""
pg_up=false redis_up=false amqp_up=false
answers "$PG_URL" && pg_up=true
answers "$REDIS_URL" && redis_up=true
answers "$AMQP_URL" && amqp_up=true
if $pg_up && $redis_up; then
    echo "== test suite on PostgreSQL + Redis"
    DATABASE_URL="$PG_URL" CELERY_BROKER_URL="$REDIS_URL" .venv/bin/python -m pytest -q "$@"
else
    missing="$missing PostgreSQL/Redis"
fi
if $pg_up && $amqp_up; then
    echo "== worker tests on PostgreSQL + RabbitMQ"
    DATABASE_URL="$PG_URL" CELERY_BROKER_URL="$AMQP_URL" .venv/bin/python -m pytest -q -m worker "$@"
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
    PYTHON="$PYTHON" sh tests/smoke_install.sh $smoke_brokers
fi
if [ -n "$missing" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "CI: services did not answer:$missing" >&2
        exit 1
    fi
    echo "note: skipped the runs on:$missing (not answering)"
fi
