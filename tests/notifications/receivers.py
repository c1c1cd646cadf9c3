"""Real receivers for the notification tests: an HTTP server that checks each webhook
with the Standard Webhooks verification, and a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

PORTS = range(18810, 18900)


def free_port() -> int:
    """A port of PORTS that nothing holds now. The scan starts at a random one: several
    suites run side by side (CI's stages, pytest-xdist's processes), and scanning from the
    first made them pick the same ports."""
    start = random.randrange(len(PORTS))
    for port in [*PORTS[start:], *PORTS[:start]]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18810-18899")


@contextmanager
def port_of_a_receiver_that_is_down() -> Iterator[int]:
    """A port that refuses connections, as a receiver's that is down, for the block; its
    socket stays bound (not listening), so that no other process takes it meanwhile (one
    once did, and answered 401). A receiver may take the port once the block is over."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        yield held.getsockname()[1]


class WebhookReceiver:
    """Accepts POSTs; a signed one is verified with `secret` (a tampered body or a wrong
    signature is answered 401 and not kept). `answers` lists the codes to give before
    200 (a receiver that fails for a while). Unsigned JSON posts (Apprise's json://) are
    kept too, in `plain`."""

    def __init__(self, secret: str | None = None, port: int | None = None):
        self.secret = secret
        self.answers: list[int] = []
        self.received: list[dict] = []  # verified webhooks: id, headers, body
        self.plain: list[dict] = []
        self.rejected = 0
        self.ids: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                code = receiver._take(dict(self.headers.items()), raw)
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = port or free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _take(self, headers: dict, raw: bytes) -> int:
        lowered = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            if "webhook-signature" not in lowered:
                self.plain.append(json.loads(raw or b"{}"))
                self.arrived.notify_all()
                return 200
            if self.answers:
                self.ids[lowered["webhook-id"]] += 1
                return self.answers.pop(0)
            try:
                body = Webhook(self.secret or "").verify(raw, lowered)
            except WebhookVerificationError:
                self.rejected += 1
                return 401
            self.ids[lowered["webhook-id"]] += 1
            self.received.append({"id": lowered["webhook-id"], "headers": lowered, "body": body})
            self.arrived.notify_all()
            return 200

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
