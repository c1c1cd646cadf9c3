"""Supervision of `serve`'s children: start them, restart the ones that die, stop them all.

Each child runs in its own session (its own process group), so Ctrl-C in the terminal
reaches only the supervisor, which then stops the children in order: SIGTERM, then SIGKILL
to the child's whole process group for whatever is left after the grace period.

A child that exits while the supervisor is not stopping is restarted after a delay that
doubles with each quick death (1 s, 2 s, 4 s ... at most 30 s) and starts again from 1 s
once the child has stayed up for a while, so a child that cannot start does not spin, and
one that dies once a day comes back at once. The others keep running meanwhile: a dead
worker does not take the web server down with it.

Each child is started through this file (`python supervise.py PID -- argv...`), which asks Linux to SIGTERM it when the supervisor dies (prctl's
PR_SET_PDEATHSIG, kept across exec) and then becomes the child: a supervisor killed with
kill -9 cannot stop its children itself, and without this they would live on, holding the
port and consuming the queues.

SIGTERM is not enough for the worker: Celery answers it with a warm shutdown, which waits for
the steps it runs to end (unbounded for a long step), and a shell step runs in a session of
its own that no signal to the worker's process group reaches. So the worker is started with
`--guard` (`python supervise.py PID --guard -- argv...`): this file stays, as the worker's
parent and the subreaper of everything the worker starts (PR_SET_CHILD_SUBREAPER, so an
orphaned step stays its descendant), forwards the supervisor's SIGTERM and SIGINT to the
worker, and when the supervisor is gone (the death signal, or its parent id changing, checked
every GUARD_POLL_SECONDS) SIGKILLs every descendant and their process groups, then itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

STOP_GRACE_SECONDS = 10.0
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
# A child that stayed up this long died for a new reason: its next restart is immediate-ish.
STABLE_AFTER_SECONDS = 60.0
GUARD_POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def restart_delay(quick_deaths: int) -> float:
    """Seconds to wait before restarting a child that died `quick_deaths` times in a row."""
    return min(MAX_RESTART_DELAY, FIRST_RESTART_DELAY * 2 ** max(0, quick_deaths - 1))


@dataclass
class Child:
    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()  # descriptors the child inherits (the web's socket)
    guard: bool = False  # started under a guard that takes its descendants down with serve
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None  # set while the child waits for its restart

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Runs `children` with `env` in `cwd`, each output line prefixed with the child's name."""

    def __init__(
        self,
        children: list[Child],
        *,
        env: dict[str, str],
        cwd: Path,
        say: Callable[[str], None],
        stop: threading.Event,
    ) -> None:
        self.children = children
        self.env = env
        self.cwd = cwd
        self.say = say
        self.stop = stop
        self._width = max(len(child.name) for child in children)
        self._old_readers: list[threading.Thread] = []

    def start_all(self) -> bool:
        """Start every child; False (with everything stopped) if one cannot be started."""
        for child in self.children:
            try:
                self._start(child)
            except OSError as exc:
                self.say(f"serve: could not start {child.name}: {exc}")
                self.shutdown()
                return False
        return True

    def watch(self, on_tick: Callable[[], None]) -> None:
        """Restart dead children until `stop` is set; `on_tick` runs every 0.2 s."""
        while not self.stop.is_set():
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is None and not child.alive:
                    self._schedule_restart(child, now)
                elif child.restart_at is not None and now >= child.restart_at:
                    self._restart(child)
            on_tick()
            self.stop.wait(0.2)

    def shutdown(self) -> None:
        """SIGTERM each child, wait for the grace period, then SIGKILL what is left."""
        started = [(child.name, child.proc) for child in self.children if child.proc is not None]
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
        for reader in self._old_readers + [c.reader for c in self.children if c.reader]:
            reader.join(timeout=2)

    # --- Internals -------------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        # The file, not `-m`: importing the taskcenter package would load Celery first.
        launcher = [
            sys.executable,
            __file__,
            str(os.getpid()),
            *(["--guard"] if child.guard else []),
            "--",
        ]
        child.proc = subprocess.Popen(
            [*launcher, *child.argv],
            pass_fds=child.pass_fds,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        if child.reader is not None:
            self._old_readers.append(child.reader)
        child.reader = threading.Thread(
            target=self._pump,
            args=(child.proc, f"{child.name:<{self._width}} | "),
            daemon=True,
            name=f"serve-{child.name}",
        )
        child.reader.start()
        self.say(f"serve: started {child.name} (pid {child.proc.pid})")

    def _schedule_restart(self, child: Child, now: float) -> None:
        assert child.proc is not None
        # The child died without stopping its own children (kill -9, a crash): whatever is
        # left of its process group (a worker's pool processes) goes with it, so the new
        # child starts alone.
        _signal_quietly(child.proc, signal.SIGKILL, group=True)
        stable = now - child.started_at >= STABLE_AFTER_SECONDS
        child.quick_deaths = 1 if stable else child.quick_deaths + 1
        delay = restart_delay(child.quick_deaths)
        child.restart_at = now + delay
        self.say(
            f"serve: {child.name} exited unexpectedly with {_describe_exit(child.proc.returncode)}; "
            f"restarting it in {delay:g}s"
        )

    def _restart(self, child: Child) -> None:
        child.restart_at = None
        try:
            self._start(child)
        except OSError as exc:
            child.quick_deaths += 1
            delay = restart_delay(child.quick_deaths)
            child.restart_at = time.monotonic() + delay
            self.say(f"serve: could not restart {child.name}: {exc}; trying again in {delay:g}s")
            return
        self.say(f"serve: restarted {child.name}")

    def _pump(self, proc: subprocess.Popen, prefix: str) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            try:
                self.say(prefix + raw.decode(errors="replace").rstrip("\r\n"))
            except (OSError, ValueError):
                pass  # our own output is gone; keep draining so the child never blocks
        proc.stdout.close()


def _describe_exit(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"


def _signal_quietly(proc: subprocess.Popen, signum: int, *, group: bool = False) -> None:
    """Send `signum` to the process (or its whole process group); one already gone is fine."""
    try:
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM this process (and what it execs) when `parent_pid`, its parent, dies.

    PR_SET_PDEATHSIG fires when the thread that forked this process ends; the supervisor
    starts its children from its main thread, so that is when the supervisor process ends.
    Elsewhere than Linux this does nothing.
    """
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    # The parent may have died before prctl took effect; then the signal would never come.
    if os.getppid() != parent_pid:
        raise SystemExit(f"serve (pid {parent_pid}) is gone; not starting")


def _descendants(ancestor: int) -> dict[int, int]:
    """Every live descendant of `ancestor` (pid: process group), from /proc (Linux)."""
    parents: dict[int, tuple[int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after ')'.
        state, ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if state != "Z":
            parents[int(text.split(" ", 1)[0])] = (int(ppid), int(pgrp))
    found: dict[int, int] = {}
    for pid in parents:
        chain, current = [], pid
        while current in parents and current not in found and current != ancestor:
            chain.append(current)
            current = parents[current][0]
        if current == ancestor or current in found:
            found.update({link: parents[link][1] for link in chain})
    return found


def _reap() -> dict[int, int]:
    """Collect every child that ended: {pid: wait status}."""
    ended: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = status


def _kill_descendants() -> None:
    """SIGKILL everything below this process, the process groups of its steps included."""
    me, own_group = os.getpid(), os.getpgid(0)
    for _ in range(100):
        found = _descendants(me)
        if not found:
            return
        for pid, group in found.items():
            for kill, target in ((os.killpg, group), (os.kill, pid)):
                if kill is os.killpg and target == own_group:
                    continue
                try:
                    kill(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        _reap()
        time.sleep(0.02)


def _guard(parent_pid: int, program: list[str]) -> None:
    """Run `program` below this process until it ends, or end it and all it started when
    `parent_pid` (serve) is gone. Exits as the program did."""
    die_with_parent(parent_pid)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    child = os.posix_spawn(program[0], program, os.environ)

    def parent_gone() -> bool:
        return os.getppid() != parent_pid

    def on_signal(signum, frame) -> None:
        if parent_gone():
            _end_with_everything()
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    def _end_with_everything() -> None:
        _kill_descendants()
        os._exit(1)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    while True:
        if parent_gone():
            _end_with_everything()
        status = _reap().get(child)
        if status is not None:
            break
        time.sleep(GUARD_POLL_SECONDS)
    _kill_descendants()  # steps the program left behind do not outlive it
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    raise SystemExit(code)


def _launch(argv: list[str]) -> None:
    """`PID [--guard] -- program args...`: die with PID, then become the program (or guard
    it)."""
    parent_pid, *rest = argv
    guard = bool(rest) and rest[0] == "--guard"
    separator, *program = rest[1:] if guard else rest
    if separator != "--" or not program:
        raise SystemExit("usage: python supervise.py PID [--guard] -- program [args...]")
    if guard:
        _guard(int(parent_pid), program)
    die_with_parent(int(parent_pid))
    os.execv(program[0], program)


if __name__ == "__main__":
    _launch(sys.argv[1:])
