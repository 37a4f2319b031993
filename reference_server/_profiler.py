"""Kernel profiling of the engine's steps: `POST /admin/profile`.

torch.profiler records the ops (CPU) and kernels (CUDA, when the model runs there) of engine
steps, on the engine thread itself (the profiler hooks the thread that starts it). A profile
covers `steps` steps or `seconds` of wall time, whichever ends first, and samples one step in
every `every_steps` (a duty cycle of 1/every_steps, cheap enough to leave on a serving node):
each sampled window is its own short profiler session, and the windows' per-op self times are
summed into one table — name, calls, self device time, self CPU time and share of the total
(device time on a GPU, CPU time otherwise), largest first. The first window is also saved as a
Chrome trace (open it in chrome://tracing or Perfetto).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.profiler import DeviceType, ProfilerActivity, profile

from ._engine_faults import EngineFaults
from ._openai_schema import ApiError

logger = logging.getLogger("reference_server.profiler")

__all__ = ["OpRow", "ProfileRequest", "ProfileResult", "RawProfile", "StepProfiler",
           "parse_profile_request", "run_profile", "summarize", "warm_profiler"]

MAX_STEPS = 100_000
MAX_SECONDS = 600.0
DEFAULT_TOP = 20
DEFAULT_TIMEOUT_S = 120.0
_FIELDS = ("steps", "seconds", "every_steps", "top", "timeout_s")


@dataclass(frozen=True, slots=True)
class ProfileRequest:
    """What to profile: `steps` sampled steps and/or `seconds`; one step in `every_steps`."""

    steps: int | None = None
    seconds: float | None = None
    every_steps: int = 1
    top: int = DEFAULT_TOP
    timeout_s: float = DEFAULT_TIMEOUT_S
    """A steps-only profile of an idle engine ends (incomplete) after this long."""

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None:
            raise ValueError("a profile needs steps or seconds")


@dataclass(frozen=True, slots=True)
class OpRow:
    name: str
    calls: int
    self_device_ms: float
    self_cpu_ms: float
    share: float
    """Of the profile's total self device time (GPU) or self CPU time (CPU)."""


@dataclass(frozen=True, slots=True)
class ProfileResult:
    device: str
    steps_profiled: int
    steps_seen: int
    every_steps: int
    wall_s: float
    complete: bool
    """False when the time-out or an engine stop ended it before `steps`."""
    share_of: str
    total_self_cpu_ms: float
    total_self_device_ms: float
    ops: list[OpRow] = field(default_factory=list)
    trace_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["duty"] = 1.0 / self.every_steps
        return body


def _number(body: dict[str, Any], name: str, low: float, high: float, *, integer: bool
            ) -> Any:
    value = body[name]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not (
            math.isfinite(value) and low <= value <= high):
        what = "an integer" if integer else "a number"
        raise ApiError(400, f"{name}: must be {what} in {low:g}..{high:g}, got {value!r}",
                       param=name)
    return value


def parse_profile_request(body: dict[str, Any]) -> ProfileRequest:
    """The profile a `POST /admin/profile` body asks for; ApiError(400) naming the field."""
    for name in body:
        if name not in _FIELDS:
            raise ApiError(400, f"{name}: unknown field (a profile takes {', '.join(_FIELDS)})",
                           param=name)
    if "steps" not in body and "seconds" not in body:
        raise ApiError(400, "steps: a profile needs steps or seconds (or both)", param="steps")
    return ProfileRequest(
        steps=_number(body, "steps", 1, MAX_STEPS, integer=True) if "steps" in body else None,
        seconds=(float(_number(body, "seconds", 0.01, MAX_SECONDS, integer=False))
                 if "seconds" in body else None),
        every_steps=(_number(body, "every_steps", 1, MAX_STEPS, integer=True)
                     if "every_steps" in body else 1),
        top=_number(body, "top", 1, 500, integer=True) if "top" in body else DEFAULT_TOP,
        timeout_s=(float(_number(body, "timeout_s", 0.1, MAX_SECONDS, integer=False))
                   if "timeout_s" in body else DEFAULT_TIMEOUT_S),
    )


class RawEvent(NamedTuple):
    """One op or kernel as the profiler recorded it, copied out of kineto: a NamedTuple, as
    a window has thousands of them and a frozen dataclass costs several times more to make
    (the reader thread's CPU is part of what sampling costs)."""

    name: str
    start_ns: int
    duration_ns: int
    thread: int
    on_device: bool


@dataclass(slots=True)
class RawProfile:
    """A finished profile: every window's self times summed, its counts, and its first
    window (kept for the Chrome trace; `summarize` writes it, off the engine thread)."""

    table: dict[str, list[float]]
    """name -> [calls, self CPU ns, self device ns], summed over the windows."""
    steps_profiled: int
    steps_seen: int
    wall_s: float
    complete: bool
    first_window: profile | None


def session_events(session: profile) -> list[RawEvent]:
    """A stopped session's events, copied out of kineto."""
    results = session.profiler.kineto_results if session.profiler is not None else None
    if results is None:
        return []
    cpu = DeviceType.CPU
    return [RawEvent(e.name(), e.start_ns(), e.duration_ns(), e.start_thread_id(),
                     e.device_type() != cpu) for e in results.events()]


_WARM = threading.Lock()
_warmed = False


def warm_profiler() -> None:
    """Pay kineto's one-time initialisation (seconds, once per process) here rather than on
    the engine thread in the middle of serving."""
    global _warmed
    with _WARM:
        if not _warmed:
            session = profile(activities=[ProfilerActivity.CPU])
            session.start()
            session.stop()
            _warmed = True


class StepProfiler:
    """A `StepObserver` for the engine: profiles the sampled steps, then resolves `done`.

    Per sampled window the engine thread only starts and stops a session (about 1 + 2 ms on
    the reference model's decode step, whose ops the profiled step also runs ~15 % slower);
    a reader thread then folds the window's events into the table and drops the session,
    whose kineto buffers (~4 MB for a 700-op step) would otherwise pile up for the whole
    profile (4 GB for 1000 windows)."""

    def __init__(self, request: ProfileRequest, *, device: torch.device) -> None:
        self.request = request
        self.done: concurrent.futures.Future[RawProfile] = concurrent.futures.Future()
        self._activities = [ProfilerActivity.CPU]
        if device.type == "cuda":
            self._activities.append(ProfilerActivity.CUDA)
        self._cuda = device.type == "cuda"
        # window: consecutive steps of one session (all of them without a duty cycle)
        self._window = (request.steps or MAX_STEPS) if request.every_steps == 1 else 1
        self._session: profile | None = None
        self._in_window = 0
        self._seen = 0
        self._profiled = 0
        self._first_window: profile | None = None
        self._table: dict[str, list[float]] = {}  # the reader thread's alone
        self._reader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="profile-reader")
        self._finished = False
        self._started = time.monotonic()
        self._stop_asked = False
        self.hook_s = 0.0
        """Engine-thread time spent starting and stopping sessions (the sampling's direct
        cost, besides the slower profiled steps themselves)."""
        self.read_cpu_s = 0.0
        """Reader-thread CPU spent folding windows into the table (off the engine thread)."""

    @property
    def in_window(self) -> bool:
        """Whether a sampled window's session is recording now (engine thread: between
        `before_step` and `after_step`, True for a sampled step)."""
        return self._session is not None

    def request_stop(self) -> None:
        """End the profile at the engine's next step or tick (from any thread)."""
        self._stop_asked = True

    # ---- StepObserver (engine thread) ------------------------------------------------

    def before_step(self) -> None:
        self._seen += 1
        if self._session is None and (self._seen - 1) % self.request.every_steps == 0:
            started = time.perf_counter()
            self._session = profile(activities=self._activities)
            self._session.start()
            self._in_window = 0
            self.hook_s += time.perf_counter() - started

    def after_step(self) -> bool:
        if self._session is not None:
            self._in_window += 1
            self._profiled += 1
            steps = self.request.steps
            if self._in_window >= self._window or (steps is not None and self._profiled >= steps):
                started = time.perf_counter()
                self._close_session()
                self.hook_s += time.perf_counter() - started
        return self._finish_if_due()

    def tick(self) -> bool:
        return self._finish_if_due()

    def abandon(self) -> None:
        self._finish(complete=False)

    # ---- internals -------------------------------------------------------------------

    def _finish_if_due(self) -> bool:
        request = self.request
        elapsed = time.monotonic() - self._started
        if self._stop_asked or (request.steps is not None and self._profiled >= request.steps):
            self._finish(complete=True)
            return True
        if request.seconds is not None and elapsed >= request.seconds:
            self._finish(complete=True)
            return True
        if request.seconds is None and elapsed >= request.timeout_s:
            self._finish(complete=False)
            return True
        return False

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        if self._cuda:
            torch.cuda.synchronize()
        session.stop()
        if self._first_window is None:
            self._first_window = session
        # A stopped session holds all its events (MBs): fold them into the table on the
        # reader thread and let the session go, so a long low-duty profile stays small.
        self._reader.submit(self._fold, session)

    def _fold(self, session: profile) -> None:
        """Reader thread: add one window's self times to the table."""
        started = time.thread_time()
        try:
            for name, row in self_times(session_events(session)).items():
                total = self._table.setdefault(name, [0, 0.0, 0.0])
                for index, value in enumerate(row):
                    total[index] += value
        except Exception:
            logger.exception("reading a profiled window failed; it is left out")
        self.read_cpu_s += time.thread_time() - started

    def _finish(self, *, complete: bool) -> None:
        self._close_session()
        if self._finished:
            return
        self._finished = True
        raw = RawProfile(self._table, self._profiled, self._seen,
                         time.monotonic() - self._started, complete, self._first_window)
        self._reader.submit(self.done.set_result, raw)  # after the windows are folded
        self._reader.shutdown(wait=False)


def self_times(events: list[RawEvent]) -> dict[str, list[float]]:
    """name -> [calls, self CPU ns, self device ns]. A CPU op's self time is its duration
    less its direct children's on the same thread; a device kernel's is its duration."""
    table: dict[str, list[float]] = {}
    by_thread: dict[int, list[RawEvent]] = {}
    for event in events:
        row = table.setdefault(event.name, [0, 0.0, 0.0])
        row[0] += 1
        if event.on_device:
            row[2] += event.duration_ns
        else:
            by_thread.setdefault(event.thread, []).append(event)
    owns: list[tuple[str, list[float]]] = []
    for thread_events in by_thread.values():
        thread_events.sort(key=lambda e: (e.start_ns, -e.duration_ns))
        stack: list[tuple[int, list[float]]] = []  # (end, [self ns]) of the open ancestors
        for event in thread_events:
            while stack and stack[-1][0] <= event.start_ns:
                stack.pop()
            own = [float(event.duration_ns)]
            if stack:
                stack[-1][1][0] -= event.duration_ns
            stack.append((event.start_ns + event.duration_ns, own))
            owns.append((event.name, own))
    for name, own in owns:
        table[name][1] += max(0.0, own[0])
    return table


def summarize(raw: RawProfile, request: ProfileRequest, *, device: torch.device,
              trace_path: Path | None) -> ProfileResult:
    """The op table of a raw profile, and its first window saved as a Chrome trace."""
    table = raw.table
    total_cpu = sum(row[1] for row in table.values())
    total_device = sum(row[2] for row in table.values())
    on_device = device.type == "cuda" and total_device > 0
    index = 2 if on_device else 1
    total = total_device if on_device else total_cpu
    ranked = sorted(table.items(), key=lambda item: item[1][index], reverse=True)
    ops = [OpRow(name, int(row[0]), row[2] / 1e6, row[1] / 1e6,
                 row[index] / total if total else 0.0)
           for name, row in ranked[: request.top]]
    trace_file = None
    if trace_path is not None and raw.first_window is not None:
        try:
            trace_path.parent.mkdir(parents=True, exist_ok=True)
            raw.first_window.export_chrome_trace(str(trace_path))
            trace_file = str(trace_path)
        except OSError as exc:
            logger.warning("could not save the Chrome trace to %s: %s", trace_path, exc)
    return ProfileResult(
        device=device.type, steps_profiled=raw.steps_profiled, steps_seen=raw.steps_seen,
        every_steps=request.every_steps, wall_s=raw.wall_s, complete=raw.complete,
        share_of="self_device_time" if on_device else "self_cpu_time",
        total_self_cpu_ms=total_cpu / 1e6, total_self_device_ms=total_device / 1e6,
        ops=ops, trace_file=trace_file,
    )


async def run_profile(
    faults: EngineFaults, request: ProfileRequest, *, device: torch.device,
    trace_path: Path | None,
) -> ProfileResult:
    """Profile the engine whose fault/observer hub is `faults`; ApiError 409 while another
    profile runs, 504 when the engine takes no step to end it (a hung engine: the profile then
    ends by itself once the engine steps again)."""
    await asyncio.to_thread(warm_profiler)
    profiler = StepProfiler(request, device=device)
    try:
        faults.observe(profiler)
    except ValueError as exc:
        raise ApiError(409, str(exc)) from None
    limit_s = (request.seconds if request.seconds is not None else request.timeout_s) + 10.0
    try:
        raw = await asyncio.wait_for(asyncio.wrap_future(profiler.done), limit_s)
    except TimeoutError:
        raise ApiError(504, f"the profile did not end within {limit_s:g} s: the engine is not "
                       "stepping (hung?)", type="server_error") from None
    return await asyncio.to_thread(summarize, raw, request, device=device, trace_path=trace_path)
