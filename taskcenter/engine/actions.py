"""What a subtask does: a registered Python callable, a shell command or an HTTP request.

Each runner gets an AttemptContext for logging and for noticing a stop (cancel, timeout,
lost claim), and either returns a result (stored as the subtask's result) or raises.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx

from taskcenter.tasks.definitions import get_callable
from taskcenter.tasks.models import NodeType

if TYPE_CHECKING:
    from taskcenter.engine.runner import AttemptContext

BODY_SUMMARY_CHARS = 2000
KILL_GRACE_SECONDS = 1.0


class ActionFailed(Exception):
    """The action ran and reports failure; the message goes into the log."""


class Stopped(Exception):
    """The attempt was asked to stop (cancel, timeout, or its claim was taken away)."""


def run_action(kind: str, action: dict[str, Any], ctx: AttemptContext) -> Any:
    if kind == NodeType.PYTHON_TASK:
        return _run_python(action, ctx)
    if kind == NodeType.SHELL_TASK:
        return _run_shell(action, ctx)
    if kind == NodeType.HTTP_TASK:
        return _run_http(action, ctx)
    raise ActionFailed(f"unknown subtask kind {kind!r}")


def _run_python(action: dict[str, Any], ctx: AttemptContext) -> Any:
    func = get_callable(action["callable"])
    return func(ctx, **action.get("kwargs", {}))


def _die_with_parent() -> None:
    # If the worker is SIGKILLed, the kernel kills the command too, instead of leaving an
    # orphan that goes on changing things after its attempt was declared lost.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _run_shell(action: dict[str, Any], ctx: AttemptContext) -> Any:
    # Parameters reach the command as environment variables (TC_PARAM_<NAME>), never by
    # pasting text into the command line, so a parameter value cannot inject shell code.
    env = dict(os.environ)
    env.update({f"TC_PARAM_{k.upper()}": str(v) for k, v in ctx.params.items() if v is not None})
    env.update({str(k): str(v) for k, v in action.get("env", {}).items()})
    ctx.log(f"$ {action['command']}")
    proc = subprocess.Popen(
        ["/bin/sh", "-c", action["command"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=action.get("cwd") or None,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    reader = threading.Thread(target=_pump_output, args=(proc, ctx), daemon=True)
    reader.start()
    try:
        while proc.poll() is None:
            if ctx.stop_event.wait(0.05):
                _kill_group(proc)
                reader.join(timeout=2)
                raise Stopped(ctx.stop_reason)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    reader.join(timeout=5)
    if proc.returncode != 0:
        raise ActionFailed(f"command exited with status {proc.returncode}")
    ctx.log("command exited with status 0")
    return None


def _pump_output(proc: subprocess.Popen, ctx: AttemptContext) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        ctx.output(raw.decode(errors="replace").rstrip("\n"))
    proc.stdout.close()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def _run_http(action: dict[str, Any], ctx: AttemptContext) -> Any:
    # Parameters fill {name} placeholders in the URL as given (a parameter may be a whole
    # URL); values with whitespace or control characters are refused, not sent.
    values = {k: str(v) for k, v in ctx.params.items() if v is not None}
    try:
        url = action["url"].format_map(values)
    except (KeyError, ValueError) as exc:
        raise ActionFailed(f"the URL template cannot be filled: {exc}") from None
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ActionFailed(f"the URL contains whitespace or control characters: {url!r}")
    method = action.get("method", "GET").upper()
    timeout = min(float(action.get("timeout", ctx.remaining_seconds())), ctx.remaining_seconds())
    expected = action.get("expect_status") or list(range(200, 300))
    ctx.log(f"HTTP {method} {url}")
    started = time.monotonic()
    try:
        response = httpx.request(
            method,
            url,
            headers=action.get("headers") or {},
            json=action.get("json"),
            content=action.get("body"),
            timeout=max(timeout, 0.1),
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        raise ActionFailed(f"HTTP request failed: {exc.__class__.__name__}: {exc}") from None
    elapsed_ms = (time.monotonic() - started) * 1000
    body = response.text
    summary = body[:BODY_SUMMARY_CHARS] + ("..." if len(body) > BODY_SUMMARY_CHARS else "")
    ctx.log(f"HTTP {response.status_code} in {elapsed_ms:.0f} ms, {len(response.content)} bytes")
    if summary:
        ctx.log(f"body: {summary}")
    if response.status_code not in expected:
        raise ActionFailed(f"unexpected HTTP status {response.status_code}, expected {expected}")
    return {
        "schema": [{"name": "status", "type": "number"}, {"name": "elapsedMs", "type": "number"}],
        "data": [[response.status_code, round(elapsed_ms, 1)]],
    }
