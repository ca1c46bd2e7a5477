"""The dead-man switch, decided (pure): which symbols' countdowns to arm, renew or turn off.

Binance's ``countdownCancelAll`` cancels every open regular order of a symbol when the daemon
stops renewing it, so a resting entry cannot fill while nobody is there to protect it. It is
armed for a symbol while an entry order of the journal works there, renewed every quarter of
the countdown, and turned off when none does. It cancels regular orders that are not the
bot's too: a symbol where the exchange lists such orders is skipped unless the operator said
"include". Whether it also cancels the Algo-service orders (the legs) is undocumented, so
whether it may be armed at all is the probe verdict's to say (``allowed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot_cli.core.model import ENTRY_WORKING, Pending


RENEW_PARTS = 4  # renewed every quarter of the countdown: three renewals may fail before it fires
# The probe verdicts the switch reads (``bot probe deadman``).
LEGS_SURVIVE = "legs-survive"
LEGS_CANCELLED = "legs-cancelled"


@dataclass(frozen=True, slots=True)
class Switch:
    """The operator's settings and what the venue's rules allow."""

    countdown_ms: int  # 0: off by config
    include_foreign: bool = False  # arm even where regular orders that are not the bot's rest
    allowed: bool = True  # False: the probe verdict (or its absence) forbids arming
    why_not: str = ""  # why it is not allowed, in one line
    basis: str = ""  # what it goes by: the probe verdict, or the venue's documented behaviour

    @property
    def renew_ms(self) -> int:
        return max(self.countdown_ms // RENEW_PARTS, 1)


@dataclass(frozen=True, slots=True)
class Plan:
    arm: tuple[str, ...] = ()  # arm or renew, with the switch's countdown
    disarm: tuple[str, ...] = ()  # send 0: no entry order works there any more
    skipped: Mapping[str, str] = field(default_factory=dict)  # symbol -> why it is not armed


def working_symbols(entries: Iterable[Pending]) -> set[str]:
    """Symbols where an entry order of the journal rests (or may: its send is unanswered)."""
    return {p.spec.symbol for p in entries if p.status in ENTRY_WORKING}


def switch_for(countdown_ms: int, *, include_foreign: bool, paper: bool, verdict: str | None, probed: str) -> Switch:
    """Whether the switch may be armed on this venue.

    ``verdict`` is the saved ``deadman`` probe verdict for this venue (None: never probed);
    ``probed`` when it was found, for the line that says why. Binance documents only that
    regular orders are cancelled: a live venue waits for a probe that saw the legs survive;
    the paper venue implements the documented behaviour, unless a probe saw otherwise.
    """
    if verdict == LEGS_CANCELLED:
        return Switch(countdown_ms, include_foreign, allowed=False, why_not=(
            f"`bot probe deadman` saw the countdown cancel algo orders (the stop-losses) on this venue"
            f" ({probed}): arming it would strip every stop when the daemon dies"))
    if verdict == LEGS_SURVIVE:
        return Switch(countdown_ms, include_foreign, basis=f"`bot probe deadman`: {LEGS_SURVIVE} ({probed})")
    if paper:
        return Switch(countdown_ms, include_foreign, basis="the paper venue's documented behaviour (never probed)")
    why = "never probed on this venue" if verdict is None else f"the last probe was inconclusive ({probed})"
    return Switch(countdown_ms, include_foreign, allowed=False, why_not=(
        f"off until `bot probe deadman` shows the countdown leaves the stop-losses alone ({why})"))


def due(symbol: str, armed: Mapping[str, int], now_ms: int, switch: Switch) -> bool:
    """Not armed yet, or its last renewal is a quarter of the countdown old."""
    return symbol not in armed or now_ms - armed[symbol] >= switch.renew_ms


def plan(
    wanted: set[str], foreign: Mapping[str, int], armed: Mapping[str, int], now_ms: int, switch: Switch
) -> Plan:
    """What to send now.

    ``wanted``: symbols with a working entry order; ``foreign``: regular open orders that are not
    the bot's, per wanted symbol (as just read); ``armed``: symbol -> when its countdown was last
    set. A symbol armed but no longer to be armed is turned off, so the countdown never cancels
    orders placed by hand later.
    """
    skipped: dict[str, str] = {}
    keep: set[str] = set()
    for symbol in sorted(wanted):
        if switch.countdown_ms <= 0:
            skipped[symbol] = "off: [deadman] countdown_s = 0"
        elif not switch.allowed:
            skipped[symbol] = switch.why_not
        elif foreign.get(symbol, 0) and not switch.include_foreign:
            skipped[symbol] = (
                f"{foreign[symbol]} regular order(s) on {symbol} are not the bot's and the countdown would"
                " cancel them too; [deadman] foreign_orders = \"include\" arms it anyway")
        else:
            keep.add(symbol)
    arm = tuple(s for s in sorted(keep) if due(s, armed, now_ms, switch))
    disarm = tuple(sorted(set(armed) - keep))
    return Plan(arm, disarm, skipped)
