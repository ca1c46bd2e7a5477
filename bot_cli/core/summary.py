"""What the journal holds, summed up for people and monitors (pure): entries by status and
each symbol's exposure with the protection live for it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from bot_cli.core.model import Leg, LegState, Pending, PositionSide, Side


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
    return [
        Exposure(symbol, side, ps, sum((p.share for p in ps_), Decimal(0)), _live(ps_, Leg.SL), _live(ps_, Leg.TP), len(ps_))
        for (symbol, side, ps), ps_ in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1].value, kv[0][2].value))
    ]


def _live(entries: list[Pending], leg: Leg) -> Decimal:
    return sum(
        (x.quantity for p in entries for x in p.protections if x.leg is leg and x.state is LegState.LIVE), Decimal(0)
    )
