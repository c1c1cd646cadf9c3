"""One web process: uvicorn serving taskcenter on a listening socket it inherited.

`serve` binds the HTTP port once and starts several of these with the socket's file
descriptor (`--fd`): they all accept from the same socket, so the kernel's single queue of
new connections goes to whichever process is free, and a process that dies (and is
restarted) loses no connection that was still waiting. Several processes because one
Python process runs Django on one core at a time (the GIL), whatever its thread count.

Run alone (`python -m taskcenter.webserver --listen HOST:PORT`) it binds the port itself:
the "Scaling out" command of docs/production.md.

Why uvicorn: no reverse proxy stands in front of the one-command setup, so the server
itself must cope with slow, stalled, greedy and impatient clients, and HENGSHI's waits must
cost memory, not a thread. uvicorn's asyncio loop holds every connection without a thread;
`taskcenter.edge` reads each request completely (bounded by DATA_UPLOAD_MAX_MEMORY_SIZE, 413
beyond, before anything is kept) before one of `--threads` threads runs Django for it, and
holds the waits itself. Here, per connection (`GuardedH11Protocol`): request line and
headers at most TASKCENTER_WEB_HEADER_BYTES (431 beyond) and complete within
TASKCENTER_WEB_HEADER_SECONDS, at most TASKCENTER_WEB_CONNECTIONS open connections of which
one client address holds at most TASKCENTER_WEB_CONNECTIONS_PER_ADDRESS (more are answered
503 and closed at once), idle keep-alive connections closed after KEEP_ALIVE_SECONDS.
h11 (pure Python, with a bound on what it buffers) rather than httptools for the parser.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
from collections import Counter
from http import HTTPStatus
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# Database connections kept across requests (per thread) unless configured otherwise:
# opening one per request costs PostgreSQL a new backend process each time, which under
# hundreds of polls a second costs more than the requests themselves. The health check
# (conn_health_checks) replaces a connection that broke, after a database restart say.
DEFAULT_DB_CONN_MAX_AGE = "60"
KEEP_ALIVE_SECONDS = 30
STOP_GRACE_SECONDS = 5  # open requests and waits get this long after SIGTERM


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits above (set by `configure` from the settings)."""

    connection_limit: ClassVar[int] = 1000
    per_address_limit: ClassVar[int] = 500
    header_seconds: ClassVar[float] = 30.0
    header_bytes: ClassVar[int] = 65536
    open_by_address: ClassVar[Counter[str]] = Counter()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._address: str | None = None  # counted in open_by_address while set
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._error: h11.RemoteProtocolError | None = None
        next_event = self.conn.next_event

        def next_event_keeping_the_error():
            try:
                return next_event()
            except h11.RemoteProtocolError as exc:
                self._error = exc
                raise

        self.conn.next_event = next_event_keeping_the_error  # type: ignore[method-assign]

    @classmethod
    def configure(
        cls, *, connections: int, per_address: int, header_bytes: int, header_seconds: float
    ) -> None:
        cls.connection_limit = connections
        cls.header_bytes = header_bytes
        cls.per_address_limit = per_address
        cls.header_seconds = header_seconds

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        address = self.client[0] if self.client else ""
        if (
            len(self.connections) > self.connection_limit
            or self.open_by_address[address] >= self.per_address_limit
        ):
            self._refused = True
            transport.write(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
                b"connection: close\r\n\r\n"
            )
            transport.close()
            return
        self._address = address
        self.open_by_address[address] += 1
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is not None:
            self.open_by_address[self._address] -= 1
            if self.open_by_address[self._address] <= 0:
                del self.open_by_address[self._address]
            self._address = None
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self.conn.their_state is h11.IDLE and self._headers_too_long(data):
            self._unset_keepalive_if_required()
            self._send_error(431, "The request line or headers are too long.")
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            if self._header_timer is None:
                self._arm_header_timer()  # a request has begun: its headers have a deadline
        else:
            self._cancel_header_timer()

    def _headers_too_long(self, data: bytes) -> bool:
        """Whether the request line and headers being received pass their limit (h11 itself
        only checks what it has to keep waiting for, not a long head that came in whole)."""
        head = self.conn.trailing_data[0] + data
        end = head.find(b"\r\n\r\n")
        return (end if end >= 0 else len(head)) > self.header_bytes

    def send_400_response(self, msg: str) -> None:
        if self._error is not None and self._error.error_status_hint == 431:
            self._send_error(431, "The request line or headers are too long.")
        else:
            self._send_error(400, msg)

    def _send_error(self, status: int, msg: str) -> None:
        body = msg.encode()
        event = h11.Response(
            status_code=status,
            reason=HTTPStatus(status).phrase.encode(),
            headers=[
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        )
        try:
            output = self.conn.send(event) + self.conn.send(h11.Data(data=body))
            output += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            output = b""
        self.transport.write(output)
        self.transport.close()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def freeze_startup_objects() -> None:
    """Leave what starting the process made (Django, the apps, their modules: most of the
    objects the process will ever hold) out of the garbage collector's passes.

    A request that builds many objects, such as an API page of 2,000 tasks or a task of
    1,000 subtasks as JSON, sets off collections; a full one walked every object of the
    process each time, tens of milliseconds that landed on whichever request was running
    (the slowest answers of those pages). Frozen objects are never collected, which is
    what the startup's objects are for: they live as long as the process."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m taskcenter.webserver")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="a listening TCP socket's file descriptor")
    where.add_argument("--listen", help="HOST:PORT to bind (one process)")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)

    os.environ.setdefault("DB_CONN_MAX_AGE", DEFAULT_DB_CONN_MAX_AGE)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")

    import django
    import uvicorn
    from django.conf import settings

    django.setup(set_prefix=False)  # before the edge's imports: they import models
    from taskcenter.edge import Edge
    from taskcenter.wsgi import application

    GuardedH11Protocol.configure(
        connections=settings.TASKCENTER_WEB_CONNECTIONS,
        per_address=settings.TASKCENTER_WEB_CONNECTIONS_PER_ADDRESS,
        header_bytes=settings.TASKCENTER_WEB_HEADER_BYTES,
        header_seconds=settings.TASKCENTER_WEB_HEADER_SECONDS,
    )
    edge = Edge(
        application,
        threads=args.threads,
        body_limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        wait_seconds=settings.TASKCENTER_CONTEXT_WAIT_SECONDS,
        waits_per_user=settings.TASKCENTER_CONTEXT_WAITS_PER_USER,
    )
    options = {
        "http": GuardedH11Protocol,
        "ws": "none",
        "lifespan": "off",
        "interface": "asgi3",
        "h11_max_incomplete_event_size": settings.TASKCENTER_WEB_HEADER_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": STOP_GRACE_SECONDS,
        # REMOTE_ADDR is the peer's address: the sign-in throttle keys on it.
        "proxy_headers": False,
        "access_log": False,
        "log_level": "warning",
        "backlog": 1024,
    }
    print(f"web server up (pid {os.getpid()}, {args.threads} threads)", flush=True)
    freeze_startup_objects()
    if args.fd is not None:
        server = uvicorn.Server(uvicorn.Config(edge, **options))  # type: ignore[arg-type]
        server.run(sockets=[socket.socket(fileno=args.fd)])
    else:
        host, _, port = args.listen.rpartition(":")
        config = uvicorn.Config(edge, host=host.strip("[]"), port=int(port), **options)  # type: ignore[arg-type]
        uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
