"""What the journal holds, summed up for people and monitors (pure): entries by status, each
symbol's exposure with the protection live for it, and positions no entry explains."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from bot_cli.core.model import Leg, LegState, Pending, PositionSide, Side
from bot_cli.core.shares import unclaimed


@dataclass(frozen=True, slots=True)
class Exposure:
    """The entries' shares on one symbol, side and position side, and their live legs."""

    symbol: str
    side: Side
    position_side: PositionSide
    share: Decimal
    stop_loss: Decimal  # live SL quantity
    take_profit: Decimal  # live TP quantity
    entries: int

    @property
    def covered(self) -> bool:
        return self.stop_loss >= self.share

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "side": self.side.value, "position_side": self.position_side.value,
            "share": str(self.share), "stop_loss": str(self.stop_loss), "take_profit": str(self.take_profit),
            "entries": self.entries, "covered": self.covered,
        }


def by_status(entries: Iterable[Pending]) -> dict[str, int]:
    return dict(sorted(Counter(p.status.value for p in entries).items()))


def exposure(entries: Iterable[Pending]) -> list[Exposure]:
    groups: dict[tuple[str, Side, PositionSide], list[Pending]] = {}
    for p in entries:
        if p.share > 0:
            groups.setdefault((p.spec.symbol, p.spec.side, p.spec.position_side), []).append(p)
    return [_exposure(key, group) for key, group in sorted(groups.items(), key=_group_order)]


def _group_order(item: tuple[tuple[str, Side, PositionSide], list[Pending]]) -> tuple[str, str, str]:
    (symbol, side, position_side), _ = item
    return symbol, side.value, position_side.value


def _exposure(key: tuple[str, Side, PositionSide], group: list[Pending]) -> Exposure:
    symbol, side, position_side = key
    share = sum((p.share for p in group), Decimal(0))
    return Exposure(symbol, side, position_side, share, _live(group, Leg.SL), _live(group, Leg.TP), len(group))


def _live(entries: list[Pending], leg: Leg) -> Decimal:
    return sum(
        (x.quantity for p in entries for x in p.protections if x.leg is leg and x.state is LegState.LIVE), Decimal(0)
    )


@dataclass(frozen=True, slots=True)
class Unclaimed:
    """Part of a position that no entry holds: not the bot's, and nothing of the bot protects it."""

    symbol: str
    position_side: PositionSide
    side: Side
    quantity: Decimal
    position: Decimal  # the signed position it is part of

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "position_side": self.position_side.value, "side": self.side.value,
            "quantity": str(self.quantity), "position": str(self.position),
        }


def unclaimed_positions(
    entries: Iterable[Pending], positions: Mapping[tuple[str, PositionSide], Decimal]
) -> list[Unclaimed]:
    """Every position larger than the entries on it explain (core.shares.unclaimed), by symbol."""
    live = list(entries)
    found = []
    for (symbol, position_side), amount in sorted(positions.items(), key=lambda kv: (kv[0][0], kv[0][1].value)):
        excess = unclaimed(live, symbol, position_side, amount)
        if excess is not None:
            found.append(Unclaimed(symbol, position_side, excess[0], excess[1], amount))
    return found

