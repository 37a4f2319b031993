"""Duty-cycled profiling records the sampled steps and nothing between them; the profiler
cost bench attributes a window's cost against steps of the same kind."""

from __future__ import annotations

import gc

import pytest
import torch
from torch.autograd.profiler import record_function
from torch.profiler import profile

from bench.profiler_cost import window_extras_ns
from reference_server._profiler import ProfileRequest, StepProfiler, summarize


def run_steps(profiler: StepProfiler, count: int) -> list[tuple[bool, bool]]:
    """Steps 1..count each doing labelled work; per step (in a window, profiler on)."""
    seen = []
    x = torch.ones(8, 8)
    for step in range(1, count + 1):
        profiler.before_step()
        with record_function(f"step {step}"):
            torch.mm(x, x)
        seen.append((profiler.in_window, torch._C._autograd._profiler_enabled()))
        profiler.after_step()
    return seen


def test_one_step_in_every_n_is_recorded_and_the_profiler_is_off_between_windows() -> None:
    request = ProfileRequest(steps=3, every_steps=3, top=50)
    profiler = StepProfiler(request, device=torch.device("cpu"))
    seen = run_steps(profiler, 7)
    assert seen == [(True, True), (False, False), (False, False), (True, True),
                    (False, False), (False, False), (True, True)]
    assert not torch._C._autograd._profiler_enabled()
    raw = profiler.done.result(timeout=5)
    result = summarize(raw, request, device=torch.device("cpu"), trace_path=None)
    labels = sorted(row.name for row in result.ops if row.name.startswith("step "))
    assert labels == ["step 1", "step 4", "step 7"]
    assert (result.steps_profiled, result.steps_seen, result.complete) == (3, 7, True)


def test_a_profile_without_a_duty_cycle_records_every_step_in_one_window() -> None:
    request = ProfileRequest(steps=3, top=50)
    profiler = StepProfiler(request, device=torch.device("cpu"))
    assert run_steps(profiler, 3) == [(True, True)] * 3
    raw = profiler.done.result(timeout=5)
    assert raw.first_window is not None
    result = summarize(raw, request, device=torch.device("cpu"), trace_path=None)
    assert sorted(row.name for row in result.ops if row.name.startswith("step ")) == [
        "step 1", "step 2", "step 3"]


@pytest.mark.parametrize(
    ("step_cpu_ns", "sampled", "kinds", "expected"),
    [
        # a sampled decode step against the decode steps around it (median 10)
        ([10, 9, 17, 11, 10], [False, False, True, False, False], [(0, 8)] * 5, ([7.0], 0)),
        # a sampled prefill step compares with the other prefill step, not the decodes
        ([40, 10, 10, 55, 10], [False, False, False, True, False],
         [(2, 6), (0, 8), (0, 8), (2, 6), (0, 8)], ([15.0], 0)),
        # no unsampled step of its kind: left out and counted
        ([10, 90, 10], [False, True, False], [(0, 8), (8, 0), (0, 8)], ([], 1)),
        # nothing sampled
        ([10, 11], [False, False], [(0, 8), (0, 8)], ([], 0)),
    ],
)
def test_a_window_costs_its_step_over_the_median_of_unsampled_steps_of_its_kind(
    step_cpu_ns: list[int], sampled: list[bool], kinds: list[tuple[int, int]],
    expected: tuple[list[float], int],
) -> None:
    assert window_extras_ns(step_cpu_ns, sampled, kinds) == expected


def live_profiler_sessions() -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is profile)


def test_a_long_duty_cycled_profile_keeps_only_its_first_window_alive() -> None:
    """Each stopped session holds its events in kineto (MBs): 1000 kept windows were GBs."""
    gc.collect()
    before = live_profiler_sessions()
    request = ProfileRequest(steps=6, every_steps=2, top=50)
    profiler = StepProfiler(request, device=torch.device("cpu"))
    run_steps(profiler, 11)
    raw = profiler.done.result(timeout=5)
    gc.collect()
    assert live_profiler_sessions() == before + 1  # the first window, for the Chrome trace
    result = summarize(raw, request, device=torch.device("cpu"), trace_path=None)
    assert sorted(row.name for row in result.ops if row.name.startswith("step ")) == [
        "step 1", "step 11", "step 3", "step 5", "step 7", "step 9"]
    assert next(row.calls for row in result.ops if row.name == "aten::mm") == 6
