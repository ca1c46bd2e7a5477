"""Specification of runtime.dispatch: what the engine hands over goes out at once up to a number
in flight, new orders within the order budget, stop-losses first when anything is short."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from bot_cli.core import commands as cm
from bot_cli.core.ids import client_id, make_pending_id
from bot_cli.core.model import Leg, OrderType, PendingId, PositionSide, Side
from bot_cli.runtime.dispatch import Job, TaskDispatcher


PIDS = [make_pending_id(1_760_000_000_000 + n, n) for n in range(4)]


def place(pid: PendingId, leg: Leg, seq: int) -> Job:
    cid = client_id(pid, leg, 1)
    cmd = cm.PlaceProtection(pid, cid, leg, "BTCUSDT", Side.SELL, Decimal(1), Decimal(90), PositionSide.BOTH)
    return Job(cmd, 0, seq)


def entry(pid: PendingId, seq: int) -> Job:
    cid = client_id(pid, Leg.ENTRY)
    cmd = cm.PlaceEntry(pid, cid, "BTCUSDT", Side.BUY, OrderType.MARKET, Decimal(1), None, PositionSide.BOTH)
    return Job(cmd, 0, seq)


class Budget:
    """An order budget of ``room`` slots, ``reserve`` of them for stop-losses and closes."""

    def __init__(self, room: int, reserve: int = 0) -> None:
        self.room, self.reserve = room, reserve

    def order_room(self) -> int | None:
        return self.room

    def order_wait_s(self) -> float:
        return 60.0

    def order_reserve(self) -> int:
        return self.reserve


def started(jobs: list[Job], budget: Budget | None, max_in_flight: int = 24) -> list[str]:
    """The jobs handed over in one turn of the loop, and which of them went out (in order)."""
    went: list[str] = []

    async def scenario() -> None:
        gate = asyncio.Event()

        async def run(job: Job) -> None:
            went.append(job.key)
            if budget is not None and job.counted:
                budget.room -= 1  # it counts itself as it sends
            await gate.wait()  # none answers while the test looks

        dispatcher = TaskDispatcher(run, budget, max_in_flight=max_in_flight)
        for job in jobs:
            dispatcher.submit(job)
        for _ in range(5):
            await asyncio.sleep(0)
        dispatcher.close()
        gate.set()
        await asyncio.sleep(0)

    asyncio.run(scenario())
    return went


def test_what_one_flush_hands_over_goes_out_stop_losses_first() -> None:
    """Decided SL, TP, SL, TP (two fills); the budget has room for two: both SLs go."""
    jobs = [place(PIDS[0], Leg.SL, 1), place(PIDS[0], Leg.TP, 2), place(PIDS[1], Leg.SL, 3), place(PIDS[1], Leg.TP, 4)]
    went = started(jobs, Budget(room=2))
    assert went == [client_id(PIDS[0], Leg.SL, 1), client_id(PIDS[1], Leg.SL, 1)]


def test_the_last_slots_of_a_window_are_kept_for_stop_losses() -> None:
    """Room 3, one kept back: a TP may take a slot only while more than that one is left."""
    jobs = [place(PIDS[0], Leg.TP, 1), place(PIDS[1], Leg.TP, 2), place(PIDS[2], Leg.TP, 3)]
    went = started(jobs, Budget(room=3, reserve=1))
    assert went == [client_id(PIDS[0], Leg.TP, 1), client_id(PIDS[1], Leg.TP, 1)]


def test_with_room_everything_goes_at_once_new_entries_last() -> None:
    jobs = [entry(PIDS[0], 1), place(PIDS[1], Leg.TP, 2), place(PIDS[1], Leg.SL, 3)]
    went = started(jobs, None)
    assert went == [client_id(PIDS[1], Leg.SL, 1), client_id(PIDS[1], Leg.TP, 1), client_id(PIDS[0], Leg.ENTRY)]


def test_no_more_than_max_in_flight_requests_are_out() -> None:
    jobs = [place(pid, Leg.SL, n) for n, pid in enumerate(PIDS)]
    assert len(started(jobs, None, max_in_flight=3)) == 3


def test_a_send_stamped_anew_goes_before_any_other() -> None:
    """It waited once already: "never landed" counts from its new stamp, so it must go now."""
    late = place(PIDS[3], Leg.TP, 9)
    late.express = True
    jobs = [place(PIDS[0], Leg.SL, 1), late]
    went = started(jobs, None, max_in_flight=1)
    assert went == [client_id(PIDS[3], Leg.TP, 1)]


def cancel(pid: PendingId, leg: Leg, seq: int, *, urgent: bool) -> Job:
    return Job(cm.CancelProtection(pid, client_id(pid, leg, 1), urgent), 0, seq)


def test_a_fired_legs_sibling_is_cancelled_before_anything_else_even_with_every_slot_taken() -> None:
    """Until the cancel lands the sibling may fire too (Binance has no OCO): it waits for no
    stop-loss, no stamped-anew send, and no room in flight."""
    stamped = place(PIDS[2], Leg.TP, 3)
    stamped.express = True
    jobs = [place(PIDS[0], Leg.SL, 1), stamped, cancel(PIDS[1], Leg.TP, 4, urgent=True),
            cancel(PIDS[3], Leg.SL, 5, urgent=False), cancel(PIDS[3], Leg.TP, 6, urgent=True)]  # fmt: skip

    went = started(jobs, Budget(room=0), max_in_flight=1)

    assert went == [client_id(PIDS[1], Leg.TP, 1), client_id(PIDS[3], Leg.TP, 1)]


def test_an_ordinary_cancel_waits_behind_protective_sends() -> None:
    jobs = [cancel(PIDS[0], Leg.TP, 1, urgent=False), place(PIDS[1], Leg.SL, 2)]

    went = started(jobs, None, max_in_flight=1)

    assert went == [client_id(PIDS[1], Leg.SL, 1)]
