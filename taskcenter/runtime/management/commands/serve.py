"""serve: the whole task center in one terminal.

Migrates, collects static files, optionally seeds the demo, then runs its children: the
web server (uvicorn, in `--web-processes` processes sharing one listening socket), a
Celery worker and the scheduler, with their output prefixed by name. A child that dies is
restarted with backoff while the others keep running; Ctrl-C or SIGTERM stops them all (the
supervision is in `taskcenter.runtime.supervise`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from taskcenter.runtime import address
from taskcenter.runtime.supervise import Child, Supervisor


class Command(BaseCommand):
    help = (
        "Run the task center in one terminal: web server (uvicorn, several processes), "
        "Celery worker and "
        "scheduler (after migrate and collectstatic), restarting any that dies. Ctrl-C or "
        "SIGTERM stops everything."
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
            "--threads", type=int, default=8, help="Threads per web process (default 8)."
        )
        parser.add_argument(
            "--web-processes",
            type=int,
            default=None,
            help="Web server processes sharing the port (default: one per CPU, at most 8).",
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Seed demo data and start a few live demo tasks (seed_demo --live).",
        )

    def handle(
        self,
        *args,
        port: int,
        host: str,
        concurrency: int,
        threads: int,
        web_processes: int | None,
        demo: bool,
        **options,
    ):
        if web_processes is None:
            web_processes = default_web_processes()
        _check_options(
            host=host,
            port=port,
            concurrency=concurrency,
            threads=threads,
            web_processes=web_processes,
        )
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
            listener = _listen(host, port)
            try:
                children = self._children(listener, concurrency, threads, web_processes)
                code = self._run(children, host, port, demo)
            finally:
                listener.close()
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
        clear_metrics()
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

    def _children(
        self, listener: socket.socket, concurrency: int, threads: int, web_processes: int
    ) -> list[Child]:
        manage = str(settings.BASE_DIR / "manage.py")
        python = sys.executable
        fd = listener.fileno()
        web = [python, "-m", "taskcenter.webserver", f"--fd={fd}", f"--threads={threads}"]
        names = ["web"] if web_processes == 1 else [f"web{n}" for n in range(1, web_processes + 1)]
        return [
            *[Child(name, web, pass_fds=(fd,)) for name in names],
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
                guard=True,
            ),
            Child("scheduler", [python, manage, "run_scheduler"]),
        ]

    def _run(self, children: list[Child], host: str, port: int, demo: bool) -> int:
        # The demo's HTTP check calls this server, wherever it listens: its children are
        # told, and other processes of this var dir (run_task) read it from there.
        base_url = f"http://{_url_host(_reachable(host))}:{port}"
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{address.BASE_URL_VARIABLE: base_url})
        if demo:
            env["TASKCENTER_DEMO"] = "true"
        supervisor = Supervisor(
            children, env=env, cwd=settings.BASE_DIR, say=self.say, stop=self._stop
        )
        if not supervisor.start_all():
            return 1

        url = f"http://{_url_host(_reachable(host))}:{port}/"
        announced = False

        def announce_once_listening() -> None:
            nonlocal announced
            if not announced and _port_open(host, port):
                announced = True
                self.say(f"serve: the task center is at {url}  (Ctrl-C to stop)")
                if demo:
                    self.say(
                        "serve: demo users viewer, operator, admin (password printed by "
                        "seed_demo above on the first run, or TASKCENTER_DEMO_PASSWORD)"
                    )

        address.record(base_url)
        try:
            supervisor.watch(announce_once_listening)
        finally:
            address.forget(base_url)
        self.say(f"serve: {self._signal_name or 'stop'} received; stopping")
        supervisor.shutdown()
        self.say("serve: stopped")
        return 0


def _check_options(
    *, host: str, port: int, concurrency: int, threads: int, web_processes: int
) -> None:
    """Refuse what cannot run before anything is started."""
    if not 0 < port < 65536:
        raise CommandError(f"--port must be between 1 and 65535, got {port}.")
    for option, value in (
        ("--concurrency", concurrency),
        ("--threads", threads),
        ("--web-processes", web_processes),
    ):
        if value < 1:
            raise CommandError(f"{option} must be at least 1.")
    if _port_open(host, port):
        raise CommandError(f"Port {port} on {host} is already in use; choose another --port.")


def default_web_processes() -> int:
    """One web process per CPU this process may run on, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def clear_metrics() -> None:
    """Empty the Prometheus multiprocess folder: the files of the processes of an earlier
    run would otherwise be added to this run's counters (prometheus_client asks for the
    folder to be wiped before the processes start)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for stale in Path(folder).glob("*.db"):
            stale.unlink(missing_ok=True)


def _listen(host: str, port: int) -> socket.socket:
    """The web's listening socket, bound once here and inherited by every web process."""
    try:
        infos = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise CommandError(f"Cannot listen on {host}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(1024)
    except OSError as exc:
        listener.close()
        raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None
    listener.set_inheritable(True)
    return listener


def _reachable(host: str) -> str:
    """The address to call a server listening on `host` at (all interfaces: this machine)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


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
