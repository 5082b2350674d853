"""Calls made in one turn of the event loop run as one batch (surveys/coalesce.py)."""

from __future__ import annotations

import asyncio

import pytest

from surveys.coalesce import Coalescer


def doubling(batches: list[list[int]], gate: asyncio.Event | None = None) -> Coalescer[int, int]:
    async def run(items: list[int]) -> list[int]:
        batches.append(items)
        if gate is not None:
            await gate.wait()
        if -1 in items:
            raise ValueError("no negative items")
        return [2 * i for i in items]

    return Coalescer(run, limit=3)


async def test_calls_of_one_turn_share_a_run_and_get_their_own_results() -> None:
    batches: list[list[int]] = []
    double = doubling(batches)
    assert await asyncio.gather(double(1), double(2), double(3)) == [2, 4, 6]
    assert batches == [[1, 2, 3]]
    # A call alone runs alone, on the next turn.
    assert await double(5) == 10
    assert batches == [[1, 2, 3], [5]]


async def test_more_calls_than_the_limit_make_more_runs() -> None:
    batches: list[list[int]] = []
    double = doubling(batches)
    assert await asyncio.gather(*[double(i) for i in range(7)]) == [0, 2, 4, 6, 8, 10, 12]
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_failed_run_fails_each_of_its_calls_and_only_them() -> None:
    batches: list[list[int]] = []
    double = doubling(batches)
    results = await asyncio.gather(double(1), double(-1), double(2), double(4), return_exceptions=True)
    assert [type(r) for r in results[:3]] == [ValueError] * 3
    assert results[3] == 8  # the next run (the limit is 3)
    assert await double(3) == 6


async def test_a_cancelled_call_leaves_the_run_to_the_others() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()
    double = doubling(batches, gate)
    first = asyncio.ensure_future(double(1))
    second = asyncio.ensure_future(double(2))
    await asyncio.sleep(0.01)
    assert batches == [[1, 2]]
    first.cancel()
    gate.set()
    assert await second == 4
    with pytest.raises(asyncio.CancelledError):
        await first
