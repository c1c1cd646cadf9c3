"""The web server process (`python -m taskcenter.webserver`, as `serve` runs it) under abuse:
hundreds of HENGSHI waits from one viewer, clients that leave, an oversize body, an
over-long head, and one address holding many connections."""

from __future__ import annotations

import base64
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from taskcenter.accounts import roles
from tests.conftest import _database_url, end_process_group, wait_for
from tests.factories import PASSWORD, end_run, make_user, run_now
from tests.runtime.test_run_task import ROOT
from tests.runtime.test_serve import _free_port, _healthz, _web_threads

PER_ADDRESS = 350


class Server:
    """The web server on this session's test database, in its own process group."""

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.spool = tmp / "spool"
        self.spool.mkdir()
        env = dict(os.environ, PYTHONUNBUFFERED="1", DATABASE_URL=_database_url())
        env |= {
            "TMPDIR": str(self.spool),
            "TASKCENTER_CONTEXT_WAIT_SECONDS": "120",
            "TASKCENTER_CONTEXT_WAITS_PER_USER": "400",
            "TASKCENTER_WEB_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
        }
        self.log = tmp / "web.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "taskcenter.webserver"]
                + ["--listen", f"127.0.0.1:{self.port}", "--threads", "4"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: _healthz(self.port) == 200 or self.proc.poll() is not None, 60)
        assert self.proc.poll() is None, self.log.read_text()


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("webserver"))
    try:
        yield running
    finally:
        end_process_group(running.proc, signal.SIGTERM)


@pytest.fixture
def running_context(transactional_db, no_broker) -> int:
    """A viewer, an operator, and a run the operator started that no worker runs."""
    make_user("viewer", roles.VIEWER)
    return run_now(actor=make_user("operator", roles.MANAGER))


def _request(path: str, user: str | None = None, *, method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if user:
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        lines.append(f"Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _timed_get(
    port: int, path: str, user: str | None = None, timeout: float = 5
) -> tuple[int | None, float]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if user:
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except OSError:
        status = None
    return status, time.monotonic() - started


def test_waits_drill_200_waits_and_100_leavers_from_one_viewer(server, running_context):
    """A viewer's 200 waits and 100 that disconnect at once: the health check and a list
    answer within 1 s throughout, and every wait ends within 1 s of its run's end."""
    answers: list[tuple[str, int | None, float]] = []
    polling = threading.Event()

    def poll() -> None:
        while not polling.is_set():
            answers.append(("healthz", *_timed_get(server.port, "/healthz")))
            answers.append(("list", *_timed_get(server.port, "/api/contexts", "operator")))
            polling.wait(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    logs = f"/api/contexts/{running_context}/logs"
    with ExitStack() as stack:
        poller.start()
        stack.callback(poller.join, 10)
        stack.callback(polling.set)
        waits = []
        for _ in range(200):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", server.port), 5))
            sock.sendall(_request(logs, "viewer"))
            waits.append(sock)
        for _ in range(100):
            with socket.create_connection(("127.0.0.1", server.port), 5) as leaver:
                leaver.sendall(_request(logs, "viewer"))
        # The viewer's requests are taken in their order: once two later ones are answered,
        # every wait before them is held.
        for _ in range(2):
            status, _ = _timed_get(server.port, f"{logs}?block=false", "viewer", timeout=60)
            assert status == 200
        assert _web_threads(server.proc.pid) < 20  # 200 waits held: no thread each
        end_run(running_context)
        ended = time.monotonic()
        finished = _read_all(waits, timeout=30)
        polling.set()
    for when, data in finished.values():
        assert b" 200 " in data.split(b"\r\n", 1)[0], data[:300]
        assert b'"done":true' in data.replace(b" ", b"")
        assert when - ended < 1.0, f"a wait ended {when - ended:.2f} s after its run"
    assert answers and {status for _, status, _ in answers} == {200}, answers
    slowest = max(answers, key=lambda answer: answer[2])
    assert slowest[2] < 1.0, f"{slowest[0]} took {slowest[2]:.2f} s during the drill"


def _read_all(socks: list[socket.socket], timeout: float) -> dict[int, tuple[float, bytes]]:
    """Each socket's whole answer (the server closes it) and when it was complete."""
    chosen = selectors.DefaultSelector()
    received: dict[int, bytearray] = {}
    for sock in socks:
        sock.setblocking(False)
        chosen.register(sock, selectors.EVENT_READ)
        received[sock.fileno()] = bytearray()
    complete: dict[int, tuple[float, bytes]] = {}
    deadline = time.monotonic() + timeout
    while len(complete) < len(socks):
        assert time.monotonic() < deadline, f"{len(socks) - len(complete)} waits never ended"
        for key, _ in chosen.select(timeout=1):
            chunk = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if chunk:
                received[key.fd] += chunk
            else:
                chosen.unregister(key.fileobj)
                complete[key.fd] = (time.monotonic(), bytes(received[key.fd]))
    return {sock.fileno(): complete[sock.fileno()] for sock in socks}


def test_an_oversize_body_is_refused_before_it_is_read_and_nothing_is_spooled(server):
    with socket.create_connection(("127.0.0.1", server.port), 5) as sock:
        head = (
            "POST /api/schedules HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 900000000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 1_000_000)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert list(server.spool.iterdir()) == []


def test_an_over_long_request_head_is_refused_with_431(server):
    with socket.create_connection(("127.0.0.1", server.port), 5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 70_000)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431 "), answer


def test_one_address_holds_at_most_its_share_of_connections_and_others_are_served(server):
    with ExitStack() as stack:
        held = [
            stack.enter_context(socket.create_connection(("127.0.0.1", server.port), 5))
            for _ in range(PER_ADDRESS + 20)
        ]
        # The connections past the address's share are answered 503 and closed.
        refused = 0
        for sock in held[PER_ADDRESS - 5 :]:
            sock.settimeout(0.5)
            try:
                refused += sock.recv(100).startswith(b"HTTP/1.1 503")
            except TimeoutError:
                pass
        assert refused >= 20
        # Another address is served meanwhile.
        with socket.create_connection(
            ("127.0.0.1", server.port), 5, source_address=("127.0.0.2", 0)
        ) as other:
            other.sendall(_request("/healthz"))
            assert other.recv(100).startswith(b"HTTP/1.1 200 ")
