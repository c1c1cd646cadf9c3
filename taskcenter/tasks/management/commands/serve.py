"""serve: the whole task center in one terminal.

Migrates, collects static files, optionally seeds the demo, then runs three children: the
web server, a Celery worker and the scheduler, with their output prefixed by name. Each
child gets its own session, so Ctrl-C in the terminal reaches only this process, which
then stops the children in order (SIGTERM, then SIGKILL to the child's whole process
group for whatever is left after the grace period).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

STOP_GRACE_SECONDS = 10.0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_status(self) -> int | None:
        """The process's exit status; None while it runs or before it started."""
        return self.proc.returncode if self.proc is not None else None


class Command(BaseCommand):
    help = (
        "Run the task center in one terminal: web server, Celery worker and scheduler "
        "(after migrate and collectstatic). Ctrl-C stops everything."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000).")
        parser.add_argument(
            "--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)."
        )
        parser.add_argument(
            "--concurrency", type=int, default=4, help="Worker processes (default 4)."
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Seed demo data and start a few live demo tasks (seed_demo --live).",
        )

    def handle(self, *args, port: int, host: str, concurrency: int, demo: bool, **options):
        if not 0 < port < 65536:
            raise CommandError(f"--port must be between 1 and 65535, got {port}.")
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1.")
        if _port_open(host, port):
            raise CommandError(f"Port {port} on {host} is already in use; choose another --port.")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._signal_name = ""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._on_signal)
        try:
            self._prepare(demo)
            if self._stop.is_set():
                self.say("serve: stopped before starting the processes")
                return
            children = self._children(host, port, concurrency)
            code = self._run(children, host, port, demo)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if code:
            raise SystemExit(code)

    # --- Steps ---------------------------------------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        if not self._stop.is_set():
            self._signal_name = signal.Signals(signum).name
        self._stop.set()

    def say(self, message: str) -> None:
        with self._lock:
            self.stdout.write(message)
            self.stdout.flush()

    def _prepare(self, demo: bool) -> None:
        self.say("serve: applying migrations")
        call_command("migrate", interactive=False, verbosity=0)
        self.say("serve: collecting static files")
        call_command("collectstatic", interactive=False, verbosity=0)
        if demo:
            self._seed_demo()
        # The children open their own connections; this process needs none while it waits.
        connections.close_all()

    def _seed_demo(self) -> None:
        """Run `seed_demo --live` in a process that has the demo app installed.

        This process may not have it (neither TASKCENTER_DEMO nor the marker was there when
        it started). seed_demo leaves the marker, so the children started next, and every
        later command on this machine, install the demo too. Live demo tasks are enqueued
        on the broker now and run once the worker is up.
        """
        seeded = subprocess.run(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "seed_demo", "--live"],
            cwd=settings.BASE_DIR,
            env=dict(os.environ, TASKCENTER_DEMO="true"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for line in seeded.stdout.splitlines():
            self.say(line)
        if seeded.returncode:
            raise CommandError(f"seed_demo failed with status {seeded.returncode}; see above.")

    def _children(self, host: str, port: int, concurrency: int) -> list[Child]:
        manage = str(settings.BASE_DIR / "manage.py")
        python = sys.executable
        return [
            Child("web", [python, manage, "runserver", f"{_url_host(host)}:{port}", "--noreload"]),
            Child(
                "worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "taskcenter",
                    "worker",
                    "-l",
                    "info",
                    "-c",
                    str(concurrency),
                ],
            ),
            Child("scheduler", [python, manage, "run_scheduler"]),
        ]

    def _run(self, children: list[Child], host: str, port: int, demo: bool) -> int:
        # The demo's HTTP check calls this server, wherever it listens.
        env = dict(os.environ, PYTHONUNBUFFERED="1", TASKCENTER_BASE_URL=f"http://{host}:{port}")
        if demo:
            env["TASKCENTER_DEMO"] = "true"
        width = max(len(child.name) for child in children)
        try:
            for child in children:
                child.proc = subprocess.Popen(
                    child.argv,
                    cwd=settings.BASE_DIR,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                child.reader = threading.Thread(
                    target=self._pump,
                    args=(child, f"{child.name:<{width}} | "),
                    daemon=True,
                    name=f"serve-{child.name}",
                )
                child.reader.start()
                self.say(f"serve: started {child.name} (pid {child.proc.pid})")
        except OSError as exc:
            self.say(f"serve: could not start {child.name}: {exc}")
            self._shutdown(children)
            return 1

        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else _url_host(host)}:{port}/"
        announced = False
        failed: Child | None = None
        while not self._stop.is_set():
            failed = next((child for child in children if not child.alive), None)
            if failed is not None:
                break
            if not announced and _port_open(host, port):
                announced = True
                self.say(f"serve: the task center is at {url}  (Ctrl-C to stop)")
                if demo:
                    self.say(
                        "serve: demo users viewer, operator, admin (password printed by "
                        "seed_demo above on the first run, or TASKCENTER_DEMO_PASSWORD)"
                    )
            self._stop.wait(0.2)

        if failed is not None:
            self.say(
                f"serve: {failed.name} exited unexpectedly with status {failed.exit_status}; "
                "stopping the others"
            )
        else:
            self.say(f"serve: {self._signal_name or 'stop'} received; stopping")
        self._shutdown(children)
        if failed is not None:
            self.stderr.write(f"serve: stopped because {failed.name} exited")
            return 1
        self.say("serve: stopped")
        return 0

    def _pump(self, child: Child, prefix: str) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        for raw in iter(child.proc.stdout.readline, b""):
            try:
                self.say(prefix + raw.decode(errors="replace").rstrip("\r\n"))
            except (OSError, ValueError):
                pass  # our own output is gone; keep draining so the child never blocks
        child.proc.stdout.close()

    def _shutdown(self, children: list[Child]) -> None:
        """SIGTERM each child, wait for the grace period, then SIGKILL what is left."""
        started = [(child.name, child.proc) for child in children if child.proc is not None]
        for _, proc in started:
            if proc.poll() is None:
                _signal_quietly(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, proc in started:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"serve: {name} did not stop in time; killing it")
        for _, proc in started:
            # The child leads its own process group (start_new_session); killing the group
            # also takes its own children (the worker's pool) with it. A group whose leader
            # has exited is left alone: the leader stopped its children itself.
            if proc.poll() is None:
                _signal_quietly(proc, signal.SIGKILL, group=True)
                proc.wait(timeout=5)
        for child in children:
            if child.reader is not None:
                child.reader.join(timeout=2)


def _signal_quietly(proc: subprocess.Popen, signum: int, *, group: bool = False) -> None:
    """Send `signum` to the process (or its whole process group); one already gone is fine."""
    try:
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
    except ProcessLookupError:
        pass


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _port_open(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host.strip("[]")
    if target == "::":
        target = "::1"
    try:
        with socket.create_connection((target, port), timeout=0.2):
            return True
    except OSError:
        return False
