"""The web server's edge: what a web process does with a request before and after Django.

Django runs as a WSGI application in a fixed pool of threads (`threads`), as it would under
any threaded WSGI server: its database connections stay open per thread, and its views and
middleware are the ordinary synchronous ones. Everything else happens in the process's one
asyncio event loop (uvicorn's, taskcenter.webserver), where a connection costs memory only:

- **Bounded before it is stored.** A body declared (Content-Length) or found (chunked)
  longer than DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 before any of it is kept; a
  body within the limit is read completely (in memory, on disk past SPOOL_IN_MEMORY) before
  a thread is taken, so a client that sends its body slowly holds a socket, never a thread.
- **One caller, half the threads.** A caller (a Basic user name, an access key, a session,
  else an address) has at most half of the threads at a time; its other requests wait for
  their turn in the loop, so a burst from one caller (hundreds of waits, say) never queues
  the health check or anyone else's list behind it.
- **A client that left is not served.** Once the body is in, the edge listens for the
  client's going away; a request whose client left while it waited for a thread never
  reaches Django, and the views that start runs ask before they do (taskcenter.api.waits).
- **Waiting holds no thread.** HENGSHI's waits (`sync: true`, `block=true`) are handed over
  by the view (taskcenter.api.waits): the thread answers at once, and the edge keeps the
  connection until the run ends (one query per poll for every wait of the process,
  `ContextWatch`), the bound (TASKCENTER_CONTEXT_WAIT_SECONDS) runs out or the client goes
  away; then it answers with what exists for the caller as they are then (a run's logs or
  results rendered once for all the waits on it that end together, each caller's access
  checked once for all of their own: a run a hundred clients wait on ends once). At most
  TASKCENTER_CONTEXT_WAITS_PER_USER waits of one user are held per process; beyond that the
  answer is the one the thread gave (`done: false`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from taskcenter.api import waits
from taskcenter.api.renderers import FastJSONRenderer
from taskcenter.api.schedules import answer_after_wait, may_still_see, run_answer
from taskcenter.schedules import selectors

logger = logging.getLogger(__name__)

SPOOL_IN_MEMORY = 512 * 1024  # a body within the limit but larger than this waits on disk
RESPONSE_CHUNK = 64 * 1024  # a response's small pieces are sent together up to this size
POLL_SECONDS = 0.25  # how often the process asks which waited-for runs ended
# A thread gives up an answer the loop has not taken for this long (a client that stopped
# reading a large one, or a process stopping), rather than stay blocked.
PUT_SECONDS = 60.0


class Abandoned(Exception):
    """The event loop no longer takes a thread's answer."""


class Edge:
    """The ASGI application of one web process, around Django's WSGI application."""

    def __init__(
        self,
        wsgi_app: Callable,
        *,
        threads: int,
        body_limit: int,
        wait_seconds: float,
        waits_per_user: int,
    ) -> None:
        self.wsgi_app = wsgi_app
        self.threads = ThreadPoolExecutor(threads, thread_name_prefix="django")
        # The waits' own database work (the poll and the answers), apart from the requests'.
        self.db = ThreadPoolExecutor(2, thread_name_prefix="waits")
        self.body_limit = body_limit
        self.wait_seconds = wait_seconds
        self.waits_per_user = waits_per_user
        self.waiting: Counter[int] = Counter()  # held waits by user id
        self.watch = ContextWatch(self.db)
        self.per_caller = max(1, threads // 2)
        self.lanes: dict[str, tuple[asyncio.Semaphore, int]] = {}  # by caller: turns, users
        self._answers: dict[object, asyncio.Future] = {}  # renderings under way, by what

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return  # no websockets, no lifespan (uvicorn runs with lifespan="off")
        loop = asyncio.get_running_loop()
        started = loop.time()
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        gone = threading.Event()
        gone_async = asyncio.Event()
        listener = asyncio.create_task(_listen(receive, gone, gone_async))
        try:
            await asyncio.sleep(0)  # a client already gone is known before a thread is taken
            if gone.is_set():
                return
            environ = build_environ(scope, body)
            environ[waits.EDGE_KEY] = True
            environ[waits.GONE_KEY] = gone
            async with self._turn(caller(scope)):
                handed = await self._django(environ, send)
            if handed is not None:  # the thread is free again, and the wait holds no turn
                status, headers, first, wait = handed
                answer = await self._wait(wait, first, gone_async, started + self.wait_seconds)
                if answer is not None:
                    headers = [(k, v) for k, v in headers if k != b"content-length"]
                    headers.append((b"content-length", str(len(answer)).encode()))
                    start = {"type": "http.response.start", "status": status, "headers": headers}
                    await send(start)
                    await send({"type": "http.response.body", "body": answer})
        finally:
            listener.cancel()
            body.close()

    # --- The body ----------------------------------------------------------------------------

    async def _read_body(self, scope, receive, send):
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "Content-Length is not a number.")
                return None
            if int(declared) > self.body_limit:
                await _refuse(send, 413, f"The request body exceeds {self.body_limit} bytes.")
                return None
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body.close()
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_limit:
                body.close()
                await _refuse(send, 413, f"The request body exceeds {self.body_limit} bytes.")
                return None
            body.write(chunk)
            if not message.get("more_body", False):
                break
        body.seek(0)
        return body

    # --- Django, in a thread -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _turn(self, key: str):
        """One of the caller's turns: at most `per_caller` of its requests hold threads."""
        turns, users = self.lanes.get(key, (asyncio.Semaphore(self.per_caller), 0))
        self.lanes[key] = (turns, users + 1)
        try:
            async with turns:
                yield
        finally:
            turns, users = self.lanes[key]
            if users <= 1:
                del self.lanes[key]
            else:
                self.lanes[key] = (turns, users - 1)

    async def _django(self, environ, send):
        """Run Django in a thread and send its answer; when the view handed a wait over,
        send nothing and return (status, headers, body, wait) instead."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=8)

        def put(item) -> None:
            try:
                sent = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
                sent.result(timeout=PUT_SECONDS)
            except (RuntimeError, TimeoutError) as exc:  # RuntimeError: the loop is closed
                raise Abandoned from exc

        def put_whole(item) -> None:
            # The whole answer, the thread's one and only item: the queue has room for it,
            # so the thread need not wait for the loop to take it.
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError as exc:  # the loop is closed
                raise Abandoned from exc

        ran = loop.run_in_executor(self.threads, self._run_wsgi, environ, put, put_whole)
        try:
            first = await queue.get()
            if first[0] == "whole":
                _, status, headers, body = first
                wait = environ.get(waits.WAIT_KEY)
                if wait is not None:
                    return status, headers, body, wait
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return None
            if first[0] != "start":
                if first[0] == "error":
                    await _refuse(send, 500, "An unexpected error occurred.")
                return None
            _, status, headers = first
            wait = environ.get(waits.WAIT_KEY)
            if wait is None:
                await send({"type": "http.response.start", "status": status, "headers": headers})
                while (item := await queue.get())[0] == "body":
                    await send({"type": "http.response.body", "body": item[1], "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return None
            parts = []
            while (item := await queue.get())[0] == "body":
                parts.append(item[1])
            return status, headers, b"".join(parts), wait
        finally:
            # The thread always gets to the end of its response (nothing blocks its puts).
            while not ran.done():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, ran}, return_when=asyncio.FIRST_COMPLETED)
                getter.cancel()
            await ran

    def _run_wsgi(self, environ, put, put_whole) -> None:
        try:
            self._call_wsgi(environ, put, put_whole)
        except Abandoned:
            pass  # the loop no longer takes this answer (a stop, or a client that never reads)

    def _call_wsgi(self, environ, put, put_whole) -> None:
        """Django's answer handed to the loop: whole in one item when it is complete within
        RESPONSE_CHUNK bytes (most answers: one hand-over, no waiting on the loop), else
        streamed through `put` in pieces of up to RESPONSE_CHUNK, the thread waiting for the
        loop to take each (a slow client slows the thread down, never fills memory)."""
        if environ[waits.GONE_KEY].is_set():
            put_whole(("gone",))  # left while waiting for this thread: Django never sees it
            return
        head: tuple[int, list] | None = None
        streaming = False
        pending = b""

        def start_response(status: str, headers, _exc_info=None):
            nonlocal head
            code = int(status.split(" ", 1)[0])
            raw = [(k.lower().encode("latin-1"), v.strip().encode("latin-1")) for k, v in headers]
            head = (code, raw)
            return write

        def write(chunk: bytes) -> None:
            nonlocal pending
            pending += chunk
            if len(pending) >= RESPONSE_CHUNK:
                flush()

        def flush() -> None:
            nonlocal streaming, pending
            if not streaming:
                assert head is not None
                put(("start", *head))
                streaming = True
            if pending:
                put(("body", pending))
                pending = b""

        try:
            result = self.wsgi_app(environ, start_response)
            try:
                for chunk in result:
                    write(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Abandoned:
            raise
        except Exception:
            logger.exception("the WSGI application failed")
            if not streaming:
                put_whole(("error",))  # nothing sent yet: the client is told so (500)
                return
            pending = b""  # part of the answer is out: it ends where it stopped
        if streaming:
            flush()
            put(("end",))
        else:
            assert head is not None
            put_whole(("whole", head[0], head[1], pending))

    # --- Waits -------------------------------------------------------------------------------

    async def _wait(
        self, wait: waits.Wait, first: bytes, gone: asyncio.Event, deadline: float
    ) -> bytes | None:
        """The answer once `wait` is over; `first` (the thread's) beyond the user's cap or
        when the caller may no longer see the run; None when the client went away."""
        if self.waiting[wait.user_id] >= self.waits_per_user:
            return first
        loop = asyncio.get_running_loop()
        self.waiting[wait.user_id] += 1
        ended = self.watch.add(wait.context_id)
        try:
            watchers = [asyncio.create_task(ended.wait()), asyncio.create_task(gone.wait())]
            await asyncio.wait(
                watchers,
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for watcher in watchers:
                watcher.cancel()
        finally:
            self.watch.discard(wait.context_id)
            self.waiting[wait.user_id] -= 1
            if not self.waiting[wait.user_id]:
                del self.waiting[wait.user_id]
        if gone.is_set():
            return None
        answer = await self._answer(wait)
        return first if answer is None else answer

    async def _answer(self, wait: waits.Wait) -> bytes | None:
        """The answer of a wait that is over, for its caller as they are then. A logs or
        results answer is the run's, the same for every caller who may see it: rendered
        once for all the waits on it that end together, and each caller's access checked
        once for all of their own; a submit's answer is its caller's own."""
        if wait.kind == "submit":
            return await self._shared(wait, _render, wait)
        rendered = self._shared((wait.context_id, wait.kind), _render_run, wait)
        if not await self._shared(("access", wait), _may_still_see, wait):
            return None
        return await rendered

    def _shared(self, key: object, render: Callable, wait: waits.Wait) -> asyncio.Future:
        """`render(wait)` in the waits' threads, once for every wait that asks with the same
        key while it runs."""
        future = self._answers.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.db, render, wait)
            self._answers[key] = future
            future.add_done_callback(lambda _: self._answers.pop(key, None))
        return asyncio.shield(future)


def caller(scope) -> str:
    """Who is calling, as far as the edge can tell before Django: the Basic user name, the
    access key, the session, else the client's address."""
    authorization = _header(scope, b"authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error, ValueError):
                return "basic:" + base64.b64decode(credentials).split(b":", 1)[0].hex()
        return f"{scheme}:{credentials.split(':', 1)[0][:100]}"
    session = _cookie(scope, settings.SESSION_COOKIE_NAME)
    if session:
        return "session:" + session[:100]
    client = scope.get("client") or ("", 0)
    return "address:" + str(client[0])


class ContextWatch:
    """Which waited-for runs ended: one query per POLL_SECONDS for all of a process's waits."""

    def __init__(self, db: ThreadPoolExecutor) -> None:
        self.db = db
        self.watched: dict[int, tuple[asyncio.Event, int]] = {}
        self._poller: asyncio.Task | None = None

    def add(self, context_id: int) -> asyncio.Event:
        event, count = self.watched.get(context_id, (asyncio.Event(), 0))
        self.watched[context_id] = (event, count + 1)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        return event

    def discard(self, context_id: int) -> None:
        event, count = self.watched[context_id]
        if count <= 1:
            del self.watched[context_id]
        else:
            self.watched[context_id] = (event, count - 1)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while self.watched:
            await asyncio.sleep(POLL_SECONDS)
            ids = list(self.watched)
            try:
                running = await loop.run_in_executor(self.db, _still_running, ids)
            except Exception:
                logger.exception("could not ask which waited-for runs ended")
                continue
            for context_id in ids:
                if context_id not in running and context_id in self.watched:
                    self.watched[context_id][0].set()


def _still_running(context_ids: list[int]) -> set[int]:
    close_old_connections()
    return selectors.contexts_still_running(context_ids=context_ids)


def _render(wait: waits.Wait) -> bytes | None:
    close_old_connections()
    data = answer_after_wait(wait)
    return None if data is None else FastJSONRenderer().render(data)


def _render_run(wait: waits.Wait) -> bytes:
    close_old_connections()
    return FastJSONRenderer().render(run_answer(wait.context_id, wait.kind))


def _may_still_see(wait: waits.Wait) -> bool:
    close_old_connections()
    return may_still_see(wait)


async def _listen(receive, gone: threading.Event, gone_async: asyncio.Event) -> None:
    """Wait for the client to go away (the body is already read: nothing else arrives)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            gone_async.set()
            return


async def _refuse(send, status: int, message: str) -> None:
    body = message.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _cookie(scope, name: str) -> str | None:
    for part in (_header(scope, b"cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1").strip()
    return None


def build_environ(scope, body) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP request whose body was read into `body`."""
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if "_" in name:
            continue  # X_Forwarded_For would pass for X-Forwarded-For in the environ
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
            key = "HTTP_" + key
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    # The body was read whole (chunked included): Django reads exactly this much.
    body.seek(0, 2)
    environ["CONTENT_LENGTH"] = str(body.tell())
    body.seek(0)
    return environ
