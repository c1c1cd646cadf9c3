"""The typed client: `Client(url, access_key_id=..., access_key_secret=...)` or
`Client(url, username=..., password=...)`, then `client.tasks.list(status="FAILED")`,
`client.jobs.run("Back up cluster", {"seconds": 5}, cluster_id=1)`, ... (docs/cli.md).

Built on httpx; imports nothing of Django. Every request is signed anew (a signed POST is
accepted once by the server). Connection errors and 502/503/504 are retried with
exponential backoff for idempotent calls only (GET); an operation (POST, PUT, DELETE) is
sent once, since the server may have done it before the answer was lost.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlencode

import httpx

from taskcenter.client import models
from taskcenter.client.errors import ApiError, Unreachable
from taskcenter.client.signing import signed_headers

T = TypeVar("T")
M = TypeVar("M", bound=models.Model)
RETRY_STATUSES = frozenset({502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
USER_AGENT = "taskcenter-client"


def _query(params: dict[str, Any]) -> str:
    """Query parameters without the None ones, lists joined by commas (the API takes
    both `status=A&status=B` and `status=A,B`), booleans as true/false."""
    pairs = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((name, str(value)))
    return urlencode(pairs)


class _Base:
    """What the sync and the async client share: credentials, signing, error reading."""

    def __init__(
        self,
        url: str,
        *,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        retries: int = 3,
        backoff: float = 0.5,
    ):
        self.url = url.rstrip("/")
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.retries = retries
        self.backoff = backoff
        self._auth = httpx.BasicAuth(username, password or "") if username else None
        self._base = httpx.URL(self.url + "/")

    def _prepare(self, method: str, path: str, params: dict | None, body: Any):
        query = _query(params or {})
        path_and_query = f"{path}?{query}" if query else path
        content = json.dumps(body).encode() if body is not None else b""
        return path_and_query, content

    def _headers(self, method: str, path_and_query: str, content: bytes, has_body: bool):
        """The request's headers, signed anew (a signed POST is accepted once)."""
        headers = {"Content-Type": "application/json"} if has_body else {}
        if self.access_key_id and self.access_key_secret:
            base_path = self._base.raw_path.decode().rstrip("/")
            headers.update(
                signed_headers(
                    key_id=self.access_key_id,
                    secret=self.access_key_secret,
                    method=method,
                    host=self._base.netloc.decode(),
                    path_and_query=base_path + path_and_query,
                    body=content,
                    headers=headers,
                )
            )
        return headers

    def _pause(self, attempt: int) -> float:
        return self.backoff * 2 ** (attempt - 1)

    @staticmethod
    def _error(response: httpx.Response, signed_at: str | None = None) -> ApiError:
        trace_id = response.headers.get("X-Trace-Id", "")
        try:
            body = response.json()
        except ValueError:
            body = None
        code: int | None = None
        message = response.reason_phrase or f"HTTP {response.status_code}"
        target = None
        sub_errors = None
        if isinstance(body, dict):
            trace_id = body.get("traceId") or trace_id
            error = body.get("error")
            if isinstance(error, dict):  # OCP's envelope
                code = error.get("code")
                message = error.get("message") or message
                target = error.get("target")
                sub_errors = error.get("subErrors")
            elif "msg" in body:  # HENGSHI's
                code = body.get("code")
                message = body.get("msg") or message
                target = body.get("field")
        skew = None
        if response.status_code == 401 and signed_at and response.headers.get("Date"):
            # How far the Date this request was signed with is from the server's clock.
            try:
                ours = parsedate_to_datetime(signed_at).timestamp()
                skew = ours - parsedate_to_datetime(response.headers["Date"]).timestamp()
            except (TypeError, ValueError, IndexError):
                skew = None
        return ApiError(
            status=response.status_code,
            code=code,
            message=message,
            trace_id=trace_id,
            target=target,
            sub_errors=sub_errors,
            clock_skew=skew,
        )


class Client(_Base):
    """A session with one taskcenter server (a context manager; `close()` otherwise)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        **credentials: Any,
    ):
        super().__init__(url, **credentials)
        self._http = httpx.Client(
            base_url=self.url,
            auth=self._auth,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self.tasks = Tasks(self)
        self.subtasks = Subtasks(self)
        self.approvals = Approvals(self)
        self.jobs = Jobs(self)
        self.bulk = Bulk(self)
        self.schedules = Schedules(self)
        self.contexts = Contexts(self)
        self.notifications = Notifications(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, *, params: dict | None = None, body: Any = None
    ) -> httpx.Response:
        """One call, signed when an access key is set, retried when idempotent; an
        error answer raises ApiError, no answer Unreachable."""
        path_and_query, content = self._prepare(method, path, params, body)
        attempt = 0
        while True:
            headers = self._headers(method, path_and_query, content, body is not None)
            retryable = method in IDEMPOTENT and attempt < self.retries
            try:
                response = self._http.request(
                    method, path_and_query, content=content or None, headers=headers
                )
            except httpx.TransportError as error:
                if not retryable:
                    raise Unreachable(self.url, str(error) or type(error).__name__) from None
            else:
                if not (response.status_code in RETRY_STATUSES and retryable):
                    if response.status_code >= 400:
                        raise self._error(response, signed_at=headers.get("Date"))
                    return response
            attempt += 1
            time.sleep(self._pause(attempt))

    def data(self, method: str, path: str, **kwargs) -> Any:
        """The `data` of an OCP (or HENGSHI) envelope."""
        return self.request(method, path, **kwargs).json().get("data")

    def _call(self, parse: Callable[[Any], T], method: str, path: str, **kwargs) -> T:
        return parse(self.data(method, path, **kwargs))

    def info(self) -> dict:
        return self.data("GET", "/api/v2/info")


class AsyncClient(_Base):
    """The same client on asyncio (httpx.AsyncClient): every method is awaited, lists and
    log follows are async iterators. `async with AsyncClient(...) as tc: await tc.tasks.get(42)`."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        **credentials: Any,
    ):
        super().__init__(url, **credentials)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            auth=self._auth,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self.tasks = AsyncTasks(self)
        self.subtasks = Subtasks(self)
        self.approvals = AsyncApprovals(self)
        self.jobs = Jobs(self)
        self.bulk = Bulk(self)
        self.schedules = AsyncSchedules(self)
        self.contexts = AsyncContexts(self)
        self.notifications = AsyncNotifications(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, params: dict | None = None, body: Any = None
    ) -> httpx.Response:
        """As Client.request, awaited."""
        path_and_query, content = self._prepare(method, path, params, body)
        attempt = 0
        while True:
            headers = self._headers(method, path_and_query, content, body is not None)
            retryable = method in IDEMPOTENT and attempt < self.retries
            try:
                response = await self._http.request(
                    method, path_and_query, content=content or None, headers=headers
                )
            except httpx.TransportError as error:
                if not retryable:
                    raise Unreachable(self.url, str(error) or type(error).__name__) from None
            else:
                if not (response.status_code in RETRY_STATUSES and retryable):
                    if response.status_code >= 400:
                        raise self._error(response, signed_at=headers.get("Date"))
                    return response
            attempt += 1
            await asyncio.sleep(self._pause(attempt))

    async def data(self, method: str, path: str, **kwargs) -> Any:
        return (await self.request(method, path, **kwargs)).json().get("data")

    async def _call(self, parse: Callable[[Any], T], method: str, path: str, **kwargs) -> T:
        return parse(await self.data(method, path, **kwargs))


class Tasks:
    def __init__(self, client: Client | AsyncClient):
        # Typed as the sync client's: with AsyncClient each call is an awaitable of the same.
        self._c = cast(Client, client)

    def page(
        self, *, page: int = 1, size: int = 50, **filters: Any
    ) -> tuple[list[models.Task], dict]:
        """One page of tasks and the page's {totalElements, totalPages, number, size}.
        Filters by the API's names in snake case: status, name, cluster_id, creator, ..."""
        params = {_camel(k): v for k, v in filters.items()}
        params.update(page=page, size=size)
        return self._c._call(_page(models.Task), "GET", "/api/v2/tasks/instances", params=params)

    def list(
        self, *, size: int = 50, limit: int | None = None, **filters: Any
    ) -> Iterator[models.Task]:
        """Every task matching the filters, page after page (at most `limit`)."""
        return _by_page(lambda number: self.page(page=number, size=size, **filters), limit)

    def get(self, task_id: int) -> models.Task:
        return self._c._call(models.Task.of, "GET", f"/api/v2/tasks/instances/{int(task_id)}")

    def _operate(self, task_id: int, operation: str, reason: str | None) -> models.Task:
        body = {"reason": reason} if reason else {}
        path = f"/api/v2/tasks/instances/{int(task_id)}/{operation}"
        return self._c._call(models.Task.of, "POST", path, body=body)

    def retry(self, task_id: int, *, reason: str | None = None) -> models.Task:
        return self._operate(task_id, "retry", reason)

    def rollback(self, task_id: int, *, reason: str | None = None) -> models.Task:
        return self._operate(task_id, "rollback", reason)

    def cancel(self, task_id: int, *, reason: str | None = None) -> models.Task:
        return self._operate(task_id, "cancel", reason)

    def logs(
        self,
        task_id: int,
        subtask_id: int,
        *,
        offset: int = 0,
        limit: int | None = None,
        attempt: int | None = None,
    ) -> models.LogChunk:
        """One read of a subtask's log from byte `offset` (then ask from `next_offset`)."""
        path = f"/api/v2/tasks/instances/{int(task_id)}/subtasks/{int(subtask_id)}/log"
        params = {"offset": offset, "limit": limit, "attempt": attempt}
        return self._c._call(models.LogChunk.of, "GET", path, params=params)

    def follow_logs(
        self,
        task_id: int,
        subtask_id: int,
        *,
        offset: int = 0,
        attempt: int | None = None,
        poll: float = 1.0,
    ) -> Iterator[models.LogChunk]:
        """The log's pieces as they are written, until the subtask has ended and all of
        it has been read."""
        while True:
            chunk = self.logs(task_id, subtask_id, offset=offset, attempt=attempt)
            if chunk.log:
                yield chunk
            offset = chunk.next_offset
            if chunk.finished and chunk.next_offset >= chunk.size:
                return
            if not chunk.log:
                time.sleep(poll)

    def wait(self, task_id: int, *, timeout: float = 600.0, poll: float = 1.0) -> models.Task:
        """The task once it is SUCCESSFUL or FAILED; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id)
            if task.finished:
                return task
            if time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} is still {task.status}")
            time.sleep(poll)


class AsyncTasks(Tasks):
    """Tasks on AsyncClient: the loops as async iterators and coroutines."""

    def list(  # type: ignore[override]
        self, *, size: int = 50, limit: int | None = None, **filters: Any
    ) -> AsyncIterator[models.Task]:
        fetch = cast(Any, lambda number: self.page(page=number, size=size, **filters))
        return _by_page_async(fetch, limit)

    async def follow_logs(  # type: ignore[override]
        self,
        task_id: int,
        subtask_id: int,
        *,
        offset: int = 0,
        attempt: int | None = None,
        poll: float = 1.0,
    ) -> AsyncIterator[models.LogChunk]:
        while True:
            chunk = await cast(Any, self.logs(task_id, subtask_id, offset=offset, attempt=attempt))
            if chunk.log:
                yield chunk
            offset = chunk.next_offset
            if chunk.finished and chunk.next_offset >= chunk.size:
                return
            if not chunk.log:
                await asyncio.sleep(poll)

    async def wait(  # type: ignore[override]
        self, task_id: int, *, timeout: float = 600.0, poll: float = 1.0
    ) -> models.Task:
        deadline = time.monotonic() + timeout
        while True:
            task = await cast(Any, self.get(task_id))
            if task.finished:
                return task
            if time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} is still {task.status}")
            await asyncio.sleep(poll)


class Subtasks:
    def __init__(self, client: Client | AsyncClient):
        # Typed as the sync client's: with AsyncClient each call is an awaitable of the same.
        self._c = cast(Client, client)

    def _operate(self, task_id: int, subtask_id: int, operation: str, reason: str | None):
        body = {"reason": reason} if reason else {}
        path = f"/api/v2/tasks/instances/{int(task_id)}/subtasks/{int(subtask_id)}/{operation}"
        return self._c._call(models.Subtask.of, "POST", path, body=body)

    def retry(self, task_id: int, subtask_id: int, *, reason: str | None = None):
        return self._operate(task_id, subtask_id, "retry", reason)

    def skip(self, task_id: int, subtask_id: int, *, reason: str | None = None):
        return self._operate(task_id, subtask_id, "skip", reason)

    def cancel(self, task_id: int, subtask_id: int, *, reason: str | None = None):
        return self._operate(task_id, subtask_id, "cancel", reason)

    def approve(self, task_id: int, subtask_id: int, *, reason: str):
        """Decide a waiting approval gate (a reason is required)."""
        return self._operate(task_id, subtask_id, "approve", reason)

    def reject(self, task_id: int, subtask_id: int, *, reason: str):
        return self._operate(task_id, subtask_id, "reject", reason)


class Approvals:
    """Approval gates waiting for a decision; deciding is `subtasks.approve|reject`."""

    def __init__(self, client: Client | AsyncClient):
        # Typed as the sync client's: with AsyncClient each call is an awaitable of the same.
        self._c = cast(Client, client)

    def page(self, *, page: int = 1, size: int = 50) -> tuple[list[models.Approval], dict]:
        """One page of the waiting gates the caller may see, the longest waiting first."""
        return self._c._call(
            _page(models.Approval), "GET", "/api/v2/approvals", params={"page": page, "size": size}
        )

    def list(self, *, size: int = 50, limit: int | None = None) -> Iterator[models.Approval]:
        """Every waiting gate the caller may see, page after page (at most `limit`)."""
        return _by_page(lambda number: self.page(page=number, size=size), limit)

    def approve(self, task_id: int, subtask_id: int, *, reason: str) -> models.Subtask:
        return self._c.subtasks.approve(task_id, subtask_id, reason=reason)

    def reject(self, task_id: int, subtask_id: int, *, reason: str) -> models.Subtask:
        return self._c.subtasks.reject(task_id, subtask_id, reason=reason)


class AsyncApprovals(Approvals):
    """Approvals on AsyncClient: `list` as an async iterator."""

    def list(  # type: ignore[override]
        self, *, size: int = 50, limit: int | None = None
    ) -> AsyncIterator[models.Approval]:
        return _by_page_async(cast(Any, lambda number: self.page(page=number, size=size)), limit)


class Jobs:
    def __init__(self, client: Client | AsyncClient):
        # Typed as the sync client's: with AsyncClient each call is an awaitable of the same.
        self._c = cast(Client, client)

    def list(self) -> list[models.Job]:
        return self._c._call(_contents(models.Job), "GET", "/api/v2/jobs")

    def get(self, name: str) -> models.Job:
        return self._c._call(models.Job.of, "GET", f"/api/v2/jobs/{quote(name, safe='')}")

    def run(
        self,
        name: str,
        parameters: dict | None = None,
        *,
        cluster_id: int | None = None,
        tenant_id: int | None = None,
        repeat_of: int | None = None,
    ) -> int:
        """Start a run of the job's current version; the new task's id."""
        body: dict[str, Any] = {"parameters": parameters or {}}
        for key, value in (
            ("clusterId", cluster_id),
            ("tenantId", tenant_id),
            ("repeatOf", repeat_of),
        ):
            if value is not None:
                body[key] = value
        path = f"/api/v2/jobs/{quote(name, safe='')}/runs"
        return self._c._call(_task_id, "POST", path, body=body)


class Bulk:
    def __init__(self, client: Client | AsyncClient):
        # Typed as the sync client's: with AsyncClient each call is an awaitable of the same.
        self._c = cast(Client, client)

    def start(
        self,
        operation: str,
        *,
        ids: list[int] | None = None,
        filter: dict | None = None,
        reason: str | None = None,
        dry_run: bool = False,
    ) -> models.BulkResult:
        """retry, rollback or cancel of the tasks given by `ids` or by a list `filter`
        (the API's names: {"status": "FAILED", "clusterId": 3})."""
        if operation not in ("retry", "rollback", "cancel"):
            raise ValueError("operation is one of retry, rollback, cancel")
        body: dict[str, Any] = {"dryRun": dry_run}
        if ids is not None:
            body["ids"] = list(ids)
        if filter is not None:
            body["filter"] = filter
        if reason:
            body["reason"] = reason
        path = f"/api/v2/tasks/instances/bulk/{operation}"
        return self._c._call(models.BulkResult.of, "POST", path, body=body)

    def get(self, bulk_id: str) -> models.BulkProgress:
        path = f"/api/v2/tasks/instances/bulk/{quote(bulk_id, safe='')}"
        return self._c._call(models.BulkProgress.of, "GET", path)

    def stop(self, bulk_id: str) -> models.BulkProgress:
        path = f"/api/v2/tasks/instances/bulk/{quote(bulk_id, safe='')}/stop"
        return self._c._call(models.BulkProgress.of, "POST", path)


class Schedules:
    """HENGSHI's execution plans (envelope {code, msg, data}; errors raise ApiError)."""

    def __init__(self, client: Client | AsyncClient):
        # Typed as the sync client's: with AsyncClient each call is an awaitable of the same.
        self._c = cast(Client, client)

    def list(self, *, offset: int = 0, limit: int = 100, **filters: Any) -> list[models.Schedule]:
        params = {_camel(k): v for k, v in filters.items()}
        params.update(offset=offset, limit=limit)
        return self._c._call(_each(models.Schedule), "GET", "/api/schedules", params=params)

    def iterate(
        self, *, page_size: int = 100, limit: int | None = None, **filters: Any
    ) -> Iterator[models.Schedule]:
        """Every plan matching the filters, page after page (at most `limit`)."""
        return _by_offset(
            lambda offset, size: self.list(offset=offset, limit=size, **filters), page_size, limit
        )

    def get(self, schedule_id: int | str) -> models.Schedule:
        return self._c._call(models.Schedule.of, "GET", f"/api/schedules/{schedule_id}")

    def create(self, plan: dict) -> Any:
        """POST /api/schedules with HENGSHI's body (execDetail, planItems, ...): creates the
        job's plan, or updates it when the job has one."""
        return self._c._call(_same, "POST", "/api/schedules", body=plan)

    def update(
        self,
        schedule_id: int | str,
        *,
        plan_items: Sequence[dict] | None = None,
        enabled: bool | None = None,
    ) -> Any:
        """PUT /api/schedules/{id}: replace the plan's items as a whole (`[]` removes
        them all) and/or enable or disable it; what is not given stays."""
        body: dict[str, Any] = {}
        if plan_items is not None:
            body["planItems"] = list(plan_items)
        if enabled is not None:
            body["enabled"] = enabled
        return self._c._call(_same, "PUT", f"/api/schedules/{schedule_id}", body=body)

    def run_now(self, entity_group: str, entity_key: str, *, sync: bool = False) -> Any:
        """Start a run of the job's plan now (a ONCE item; the schedule stays as it is);
        the answer's `contextId` is the run. `sync=True` waits (bounded by the server)."""
        body = {
            "entityGroup": entity_group,
            "entityKey": entity_key,
            "planItems": [{"triggerType": "ONCE"}],
            "sync": sync,
        }
        return self._c._call(_same, "POST", "/api/schedules", body=body)

    def enable(self, schedule_id: int | str) -> Any:
        return self._c._call(_same, "POST", f"/api/schedules/{schedule_id}/enable")

    def disable(self, schedule_id: int | str) -> Any:
        return self._c._call(_same, "POST", f"/api/schedules/{schedule_id}/disable")

    def cancel(self, schedule_id: int | str) -> Any:
        """Stop the plan's running contexts."""
        return self._c._call(_same, "PUT", f"/api/schedules/{schedule_id}/cancel")

    def delete(self, schedule_id: int | str) -> Any:
        return self._c._call(_same, "DELETE", f"/api/schedules/{schedule_id}")


class Contexts:
    """The runs plans started (HENGSHI's contexts)."""

    def __init__(self, client: Client | AsyncClient):
        # Typed as the sync client's: with AsyncClient each call is an awaitable of the same.
        self._c = cast(Client, client)

    def list(self, *, offset: int = 0, limit: int = 100, **filters: Any) -> list[models.Context]:
        params = {_camel(k): v for k, v in filters.items()}
        params.update(offset=offset, limit=limit)
        return self._c._call(_each(models.Context), "GET", "/api/contexts", params=params)

    def iterate(
        self, *, page_size: int = 100, limit: int | None = None, **filters: Any
    ) -> Iterator[models.Context]:
        """Every context matching the filters, newest first, page after page (at most
        `limit`)."""
        return _by_offset(
            lambda offset, size: self.list(offset=offset, limit=size, **filters), page_size, limit
        )

    def get(self, context_id: int | str) -> models.Context:
        return self._c._call(models.Context.of, "GET", f"/api/contexts/{context_id}")

    def logs(self, context_id: int | str, *, block: bool = False) -> Any:
        return self._c._call(
            _same, "GET", f"/api/contexts/{context_id}/logs", params={"block": block}
        )

    def results(self, context_id: int | str, *, block: bool = False) -> Any:
        return self._c._call(
            _same, "GET", f"/api/contexts/{context_id}/results", params={"block": block}
        )


class AsyncSchedules(Schedules):
    """Schedules on AsyncClient: `iterate` as an async iterator."""

    def iterate(  # type: ignore[override]
        self, *, page_size: int = 100, limit: int | None = None, **filters: Any
    ) -> AsyncIterator[models.Schedule]:
        fetch = cast(Any, lambda offset, size: self.list(offset=offset, limit=size, **filters))
        return _by_offset_async(fetch, page_size, limit)


class AsyncContexts(Contexts):
    """Contexts on AsyncClient: `iterate` as an async iterator."""

    def iterate(  # type: ignore[override]
        self, *, page_size: int = 100, limit: int | None = None, **filters: Any
    ) -> AsyncIterator[models.Context]:
        fetch = cast(Any, lambda offset, size: self.list(offset=offset, limit=size, **filters))
        return _by_offset_async(fetch, page_size, limit)


def _by_offset(
    fetch: Callable[[int, int], list[M]], page_size: int, limit: int | None
) -> Iterator[M]:
    """HENGSHI's offset paging: pages until a short one (or `limit` items)."""
    offset = 0
    while limit is None or offset < limit:
        size = page_size if limit is None else min(page_size, limit - offset)
        rows = fetch(offset, size)
        yield from rows
        offset += len(rows)
        if len(rows) < size:
            return


async def _by_offset_async(fetch: Any, page_size: int, limit: int | None) -> AsyncIterator[Any]:
    offset = 0
    while limit is None or offset < limit:
        size = page_size if limit is None else min(page_size, limit - offset)
        rows = await fetch(offset, size)
        for row in rows:
            yield row
        offset += len(rows)
        if len(rows) < size:
            return


class Notifications:
    """Notification channels, rules and deliveries."""

    def __init__(self, client: Client | AsyncClient):
        # Typed as the sync client's: with AsyncClient each call is an awaitable of the same.
        self._c = cast(Client, client)

    def channels(self) -> list[models.Channel]:
        """The channels the caller may see."""
        return self._c._call(_contents(models.Channel), "GET", "/api/v2/notifications/channels")

    def channel(self, channel_id: int) -> models.Channel:
        """One channel (for those who manage notifications)."""
        path = f"/api/v2/notifications/channels/{int(channel_id)}"
        return self._c._call(models.Channel.of, "GET", path)

    def test_channel(self, channel_id: int) -> models.ChannelTest:
        """Send a test message through a channel; its delivery id and status."""
        path = f"/api/v2/notifications/channels/{int(channel_id)}/test"
        return self._c._call(models.ChannelTest.of, "POST", path)

    def rules(self) -> list[models.Rule]:
        """The caller's rules (an admin's: and the team rules)."""
        return self._c._call(_contents(models.Rule), "GET", "/api/v2/notifications/rules")

    def rule(self, rule_id: int) -> models.Rule:
        """One of the rules the caller may see."""
        path = f"/api/v2/notifications/rules/{int(rule_id)}"
        return self._c._call(models.Rule.of, "GET", path)

    def deliveries(
        self, *, page: int = 1, size: int = 50, **filters: Any
    ) -> tuple[list[models.Delivery], dict]:
        """One page of deliveries, newest first, and the page's {totalElements, totalPages,
        number, size}. Filters: status, channel (a channel's id)."""
        params = {_camel(k): v for k, v in filters.items()}
        params.update(page=page, size=size)
        return self._c._call(
            _page(models.Delivery), "GET", "/api/v2/notifications/deliveries", params=params
        )

    def iterate_deliveries(
        self, *, size: int = 50, limit: int | None = None, **filters: Any
    ) -> Iterator[models.Delivery]:
        """Every delivery matching the filters, newest first, page after page (at most
        `limit`)."""
        return _by_page(lambda number: self.deliveries(page=number, size=size, **filters), limit)


class AsyncNotifications(Notifications):
    """Notifications on AsyncClient: `iterate_deliveries` as an async iterator."""

    def iterate_deliveries(  # type: ignore[override]
        self, *, size: int = 50, limit: int | None = None, **filters: Any
    ) -> AsyncIterator[models.Delivery]:
        fetch = cast(Any, lambda number: self.deliveries(page=number, size=size, **filters))
        return _by_page_async(fetch, limit)


def _by_page(fetch: Callable[[int], tuple[list[M], dict]], limit: int | None) -> Iterator[M]:
    """OCP's numbered pages: from page 1 until the last page (or `limit` items)."""
    number = 1
    seen = 0
    while True:
        rows, page = fetch(number)
        for row in rows:
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield row
        if not rows or number >= page.get("totalPages", number):
            return
        number += 1


async def _by_page_async(fetch: Any, limit: int | None) -> AsyncIterator[Any]:
    number = 1
    seen = 0
    while True:
        rows, page = await fetch(number)
        for row in rows:
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield row
        if not rows or number >= page.get("totalPages", number):
            return
        number += 1


def _same(data: Any) -> Any:
    return data


def _page(model: type[M]) -> Callable[[dict], tuple[list[M], dict]]:
    """OCP's page: its contents as models, and {totalElements, totalPages, number, size}."""
    return lambda data: ([model.of(item) for item in data["contents"]], data.get("page", {}))


def _task_id(data: dict) -> int:
    return int(data["taskInstanceId"])


def _contents(model: type[M]) -> Callable[[dict], list[M]]:
    return lambda data: [model.of(item) for item in data["contents"]]


def _each(model: type[M]) -> Callable[[list], list[M]]:
    return lambda data: [model.of(item) for item in data]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
