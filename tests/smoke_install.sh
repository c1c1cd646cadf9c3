#!/bin/sh
# Install smoke run: does `pip install .` alone (no test extras) give everything the
# documented commands run? In a clean virtual environment it starts the web server, a
# worker and the scheduler as the "Scaling out" section of docs/production.md does, on
# each broker URL given, runs one task to SUCCESSFUL and stops them all; any failure
# fails the run. The test extras pull in packages the product needs too (kombu's Redis
# transport needs `packaging`), so the test suite alone would never notice a missing
# dependency. The `taskcenter` command from the same install logs in with an access key
# and runs a job with --wait to SUCCESSFUL.
#
#   sh tests/smoke_install.sh redis://127.0.0.1:6379/15 amqp://guest:guest@127.0.0.1:5672//
#
# The database is SQLite in a temporary folder (the point is the install; the test suite
# covers PostgreSQL), checked to import psycopg all the same. pip's cache makes the
# install quick after the first run.
set -eu
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || { echo "usage: $0 BROKER_URL..." >&2; exit 2; }

PYTHON=${PYTHON:-python3}
SMOKE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/taskcenter-smoke.XXXXXX")
trap 'rm -rf "$SMOKE_DIR"' EXIT

echo "== install smoke: pip install . in a clean virtual environment"
started=$(date +%s)
"$PYTHON" -m venv "$SMOKE_DIR/venv"
"$SMOKE_DIR/venv/bin/python" -m pip install --quiet .
"$SMOKE_DIR/venv/bin/python" -c "import psycopg, uvicorn, h11"
echo "installed in $(($(date +%s) - started)) s"

for broker in "$@"; do
    echo "== install smoke on ${broker##*@}"
    "$SMOKE_DIR/venv/bin/python" - "$broker" "$SMOKE_DIR/run-$(date +%s%N)" <<'PY'
"""Start web, worker and scheduler from the clean environment, run a task, stop them."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

broker, var_dir = sys.argv[1], Path(sys.argv[2])
var_dir.mkdir(parents=True)
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
env = dict(
    os.environ,
    PYTHONUNBUFFERED="1",
    TASKCENTER_VAR_DIR=str(var_dir),
    TASKCENTER_DEMO="true",
    CELERY_BROKER_URL=broker,
    # Its own queue, so no other deployment on this broker takes the smoke's messages.
    TASKCENTER_QUEUE=f"smoke-{var_dir.name}",
    DJANGO_SETTINGS_MODULE="taskcenter.settings",
)
env.pop("DATABASE_URL", None)
python = sys.executable  # the clean environment's


children: dict[str, subprocess.Popen] = {}


def stop_all() -> None:
    for proc in children.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for name, proc in children.items():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop on SIGTERM; killing it", file=sys.stderr)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def manage(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "manage.py", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def fail(message: str) -> None:
    print(f"install smoke on {broker.split('@')[-1]}: {message}", file=sys.stderr)
    for log in sorted(var_dir.glob("*.log")):
        print(f"--- {log.name}\n{log.read_text()[-4000:]}", file=sys.stderr)
    stop_all()
    sys.exit(1)


for step in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
    done = manage(*step)
    if done.returncode:
        fail(f"manage.py {' '.join(step)} failed:\n{done.stdout}{done.stderr}")

# The "Scaling out" commands of docs/production.md, run from this checkout with the clean environment.
commands = {
    "web": [python, "-m", "taskcenter.webserver", "--listen", f"127.0.0.1:{port}"],
    "worker": [python, "-m", "celery", "-A", "taskcenter", "worker", "-c", "1", "-l", "info"],
    "scheduler": [python, "manage.py", "run_scheduler"],
}
for name, argv in commands.items():
    with open(var_dir / f"{name}.log", "wb") as log:
        children[name] = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def get(path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.status


deadline = time.monotonic() + 60
while True:
    dead = [name for name, proc in children.items() if proc.poll() is not None]
    if dead:
        fail(f"{', '.join(dead)} exited at start")
    worker_ready = b" ready." in (var_dir / "worker.log").read_bytes()
    try:
        web_ready = get("/healthz") == 200
    except OSError:
        web_ready = False
    if web_ready and worker_ready:
        break
    if time.monotonic() > deadline:
        fail("web or worker not ready after 60 s")
    time.sleep(0.5)

if get("/static/css/app.css") != 200:
    fail("the web server does not serve static files")
ran = manage("run_task", "Benchmark chain", "--param", "length=3", "--wait", "--timeout", "120")
if ran.returncode or "SUCCESSFUL" not in ran.stdout:
    fail(f"run_task did not end SUCCESSFUL (status {ran.returncode}):\n{ran.stdout}{ran.stderr}")

# The command-line client from the same install: its version, a login with an access key
# made for a user, and a job run waited for to SUCCESSFUL (exit 0).
env["DJANGO_SUPERUSER_PASSWORD"] = "smoke-password-1"
made = manage("createsuperuser", "--noinput", "--username", "smoke", "--email", "s@example.com")
key = manage("create_access_key", "smoke")
if made.returncode or key.returncode:
    fail(f"could not make a user and an access key:\n{made.stderr}{key.stdout}{key.stderr}")
key_id, secret = key.stdout.split()
command = str(Path(python).parent / "taskcenter")
client_env = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
client_env["TASKCENTER_CONFIG"] = str(var_dir / "client.json")
for argv in (
    [command, "--version"],
    [command, "login", "--url", f"http://127.0.0.1:{port}",
     "--access-key-id", key_id, "--access-key-secret", secret],
    [command, "jobs", "run", "Benchmark chain", "-p", "length=3", "--wait", "--timeout", "120"],
):  # fmt: skip
    done = subprocess.run(argv, env=client_env, capture_output=True, text=True, timeout=180)
    if done.returncode:
        shown = " ".join(argv[:3])
        fail(f"{shown} ended {done.returncode}:\n{done.stdout}{done.stderr}")
print(f"taskcenter --version, login and jobs run --wait passed ({done.stdout.count('SUCCESSFUL')} SUCCESSFUL lines)")
dead = [name for name, proc in children.items() if proc.poll() is not None]
if dead:
    fail(f"{', '.join(dead)} exited during the run")
stop_all()
# The queue is durable on RabbitMQ and its binding stays on Redis: leave nothing behind.
from kombu import Connection, Exchange, Queue  # noqa: E402

with Connection(broker, connect_timeout=5) as connection:
    name = env["TASKCENTER_QUEUE"]
    queue = Queue(name, Exchange(name), routing_key=name).bind(connection.default_channel)
    queue.declare()  # so that the channel knows the binding it is asked to remove
    queue.delete()
    queue.exchange.delete()
print(f"web, worker and scheduler ran a task to SUCCESSFUL on {broker.split('@')[-1]}")
PY
done
echo "install smoke passed in $(($(date +%s) - started)) s"
