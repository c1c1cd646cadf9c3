"""The web server's edge (taskcenter.edge) in this process: a client that left before its
request was taken starts no run, a wait ends with its run or its client and holds no thread,
the per-user cap answers at once, and a body over the limit is refused unread."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import pytest
from django.core.wsgi import get_wsgi_application

from taskcenter import edge as edge_module
from taskcenter.accounts import roles
from taskcenter.edge import Edge
from taskcenter.schedules.models import Fire
from taskcenter.tasks.models import TaskInstance
from tests.factories import NOTEBOOK_JOB, PASSWORD, end_run, make_user, run_now

pytestmark = pytest.mark.django_db(transaction=True)


def run_drill(drill):
    """asyncio.run(drill()) on a thread of its own: in a process whose main thread already
    has an event loop (Playwright's, when a browser test ran before), asyncio.run refuses."""
    result: list = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(drill()))
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


RUN_NOW = {
    "entityGroup": "NOTEBOOK",
    "entityKey": "1",
    "planItems": [{"triggerType": "ONCE"}],
    "execDetail": {"jobClass": NOTEBOOK_JOB, "jobParams": {"notebook": 1}},
}


def _edge(**options) -> Edge:
    settings = {"threads": 2, "body_limit": 4096, "wait_seconds": 30.0, "waits_per_user": 100}
    return Edge(get_wsgi_application(), **(settings | options))


def _scope(method: str, path: str, user: str, query: str = "", body: bytes = b"") -> dict:
    token = base64.b64encode(f"{user}:{PASSWORD}".encode())
    headers = [(b"host", b"testserver"), (b"authorization", b"Basic " + token)]
    if body:
        headers += [(b"content-type", b"application/json")]
        headers += [(b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "scheme": "http",
    }


class Client:
    """One connection: its request body, its going away, and what the server sent it."""

    def __init__(self, body: bytes = b"") -> None:
        self.body = body
        self.leave = asyncio.Event()
        self.sent: list[dict] = []
        self.answered = asyncio.Event()
        self._body_given = False

    async def receive(self) -> dict:
        if not self._body_given:
            self._body_given = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.answered.set()

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    def json(self) -> dict:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


@pytest.fixture(autouse=True)
def sends_recorded(no_broker):
    """Runs are started, never sent to a worker."""
    return no_broker


def test_sync_run_from_a_client_that_left_before_it_was_taken_creates_no_run(operator):
    async def drill():
        edge = _edge()
        body = json.dumps(RUN_NOW | {"sync": True}).encode()
        client = Client(body)
        client.leave.set()  # the whole request arrived, then the client went away
        await edge(
            _scope("POST", "/api/schedules", "operator", body=body), client.receive, client.send
        )
        return client

    client = run_drill(drill)
    assert client.sent == []
    assert not TaskInstance.objects.exists() and not Fire.objects.exists()


def test_a_wait_is_held_without_a_thread_and_ends_with_its_run(operator, viewer):
    context = run_now(actor=operator)

    async def drill():
        edge = _edge(threads=1)
        waits = [Client() for _ in range(20)]
        tasks = [
            asyncio.create_task(
                edge(_scope("GET", f"/api/contexts/{context}/logs", "viewer"), c.receive, c.send)
            )
            for c in waits
        ]
        await _until(lambda: sum(edge.waiting.values()) == 20)
        # Twenty held waits and the one thread is free: another request is answered.
        other = Client()
        await edge(_scope("GET", "/api/contexts", "viewer"), other.receive, other.send)
        assert other.status == 200 and not any(c.sent for c in waits)
        await asyncio.to_thread(end_run, context)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        return waits, edge

    waits, edge = run_drill(drill)
    for client in waits:
        assert client.status == 200
        assert client.json()["done"] is True and client.json()["data"]
    assert not edge.waiting and not edge.watch.watched


def test_a_wait_ends_when_its_client_goes_away(operator, viewer):
    context = run_now(actor=operator)

    async def drill():
        edge = _edge()
        client = Client()
        task = asyncio.create_task(
            edge(
                _scope("GET", f"/api/contexts/{context}/results", "viewer"),
                client.receive,
                client.send,
            )
        )
        await _until(lambda: edge.waiting)
        client.leave.set()
        await asyncio.wait_for(task, timeout=5)
        return client, edge

    client, edge = run_drill(drill)
    assert client.sent == [] and not edge.waiting and not edge.watch.watched


def test_waits_beyond_the_users_cap_are_answered_at_once_with_done_false(operator, viewer):
    context = run_now(actor=operator)

    async def drill():
        edge = _edge(waits_per_user=2)
        held = [Client() for _ in range(2)]
        tasks = [
            asyncio.create_task(
                edge(_scope("GET", f"/api/contexts/{context}/logs", "viewer"), c.receive, c.send)
            )
            for c in held
        ]
        await _until(lambda: edge.waiting.get(viewer.pk) == 2)
        over = Client()
        await asyncio.wait_for(
            edge(_scope("GET", f"/api/contexts/{context}/logs", "viewer"), over.receive, over.send),
            timeout=5,
        )
        assert not any(c.sent for c in held)
        for client in held:
            client.leave.set()
        await asyncio.gather(*tasks)
        return over

    over = run_drill(drill)
    assert over.status == 200 and over.json()["done"] is False


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    async def drill():
        edge = _edge(body_limit=1024)
        client = Client(b"x" * 10)
        scope = _scope("POST", "/api/schedules", "nobody")
        scope["headers"].append((b"content-length", b"900000000"))
        read = threading.Event()

        async def receive():
            read.set()
            return await client.receive()

        await edge(scope, receive, client.send)
        return client, read

    client, read = run_drill(drill)
    assert client.status == 413 and not read.is_set()


async def _until(condition, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.02)


def test_waits_of_many_callers_on_one_run_share_one_answer_each_checked_for_access(
    operator, viewer, monkeypatch
):
    context = run_now(actor=operator)
    make_user("viewer-2", roles.VIEWER)
    leaving = make_user("viewer-3", roles.VIEWER)
    rendered: list[int] = []
    render_run = edge_module._render_run

    def counted(wait):
        rendered.append(wait.context_id)
        return render_run(wait)

    monkeypatch.setattr(edge_module, "_render_run", counted)

    async def drill():
        edge = _edge()
        callers = [name for name in ("viewer", "viewer-2", "viewer-3") for _ in range(10)]
        clients = {name: [] for name in callers}
        tasks = []
        for name in callers:
            client = Client()
            clients[name].append(client)
            scope = _scope("GET", f"/api/contexts/{context}/logs", name)
            tasks.append(asyncio.create_task(edge(scope, client.receive, client.send)))
        await _until(lambda: sum(edge.waiting.values()) == 30)
        await asyncio.to_thread(_deactivate, leaving)
        await asyncio.to_thread(end_run, context)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        return clients

    clients = run_drill(drill)
    for name in ("viewer", "viewer-2"):
        for client in clients[name]:
            assert client.status == 200
            assert client.json()["done"] is True and client.json()["data"]
    # The caller who may no longer see the run gets the answer given when the wait began.
    for client in clients["viewer-3"]:
        assert client.status == 200 and client.json()["done"] is False
    assert rendered == [context]


def _deactivate(user) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


# --- How Django's answer reaches the client -----------------------------------------------------


def _answer_with(app, *, scope_user: str = "nobody") -> Client:
    """What a client is sent for a GET answered by the WSGI application `app`."""

    async def drill():
        edge = Edge(app, threads=2, body_limit=4096, wait_seconds=30.0, waits_per_user=100)
        client = Client()
        await edge(_scope("GET", "/anything", scope_user), client.receive, client.send)
        return client

    return run_drill(drill)


def test_a_small_answer_is_sent_whole_with_its_status_and_headers():
    def app(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Part", "one")])
        return [b"first ", b"second"]

    client = _answer_with(app)
    assert client.status == 201
    assert (b"x-part", b"one") in client.sent[0]["headers"]
    assert b"".join(m.get("body", b"") for m in client.sent[1:]) == b"first second"
    assert client.sent[-1].get("more_body", False) is False


def test_a_large_answer_is_streamed_in_pieces_and_arrives_intact():
    pieces = [bytes([65 + n % 26]) * 10_000 for n in range(40)]  # 400 KB in 40 writes

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return iter(pieces)

    client = _answer_with(app)
    bodies = [m for m in client.sent if m["type"] == "http.response.body"]
    assert client.status == 200 and len(bodies) > 2  # sent as it came, not kept whole
    assert all(len(m["body"]) <= 2 * edge_module.RESPONSE_CHUNK for m in bodies)
    assert b"".join(m["body"] for m in bodies) == b"".join(pieces)
    assert bodies[-1].get("more_body", False) is False


def test_an_application_that_fails_before_answering_gives_a_500():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"half an answer"
        raise RuntimeError("broken halfway")

    client = _answer_with(app)
    assert client.status == 500
    assert b"half an answer" not in b"".join(m.get("body", b"") for m in client.sent)


def test_an_application_that_fails_while_streaming_ends_the_answer_where_it_stopped():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"x" * (edge_module.RESPONSE_CHUNK + 1)
        raise RuntimeError("broken after the first piece")

    client = _answer_with(app)
    assert client.status == 200
    bodies = [m for m in client.sent if m["type"] == "http.response.body"]
    assert b"".join(m["body"] for m in bodies) == b"x" * (edge_module.RESPONSE_CHUNK + 1)
    assert bodies[-1].get("more_body", False) is False
