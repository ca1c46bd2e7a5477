"""Fault switches of the paper venue: make it misbehave the way Binance does, on purpose.

Set them with ``POST /paper/faults`` (``bot paper faults SPEC...``) or in the config list
``paper.faults``. A spec is ``KIND[:ARG][:once]``; without ``:once`` a switch stays on until
cleared, with it the switch fires once and removes itself.

Response faults (ARG = the endpoint: the last path segment such as ``order``, ``algoOrder``,
``openOrders``, ``listenKey``; ``*`` or nothing = every endpoint; append ``@GET``, ``@POST``,
``@PUT``, ``@DELETE`` or ``@ANY`` to choose the methods):

- ``lost_response:ENDPOINT``  execute the request, persist, then close the connection without
  answering: the client sees a transport error and must resolve the outcome by querying.
- ``unknown_503:ENDPOINT``    execute, then answer HTTP 503 ``{"code": -1000, "msg": "Unknown error,
  please check your request or try again later."}`` (Binance's "outcome unknown" 503).
- ``timeout_1007:ENDPOINT``   execute, then answer HTTP 408 ``{"code": -1007, ...}`` (timeout
  waiting for the backend: send status unknown).
- ``rate_limit_429:ENDPOINT`` do NOT execute; answer HTTP 429 ``{"code": -1003, ...}``.

- ``slow_response:ENDPOINT[#N][:SECONDS]``  execute and persist (stream events pushed), then
  hold the answer SECONDS (default 30) before sending it. With ``#N`` only the Nth matching
  executed request since the switch was set is held, then the switch removes itself (``:once``
  = ``#1``); without either every matching request is held until cleared. A switch that has
  fired is gone from the list, so a test can wait for that, then kill the client while it waits
  for the answer. Refused requests (429, signature, book errors) are neither held nor counted.

  The three "execute, then fail" faults and ``slow_response`` match mutating methods (POST, PUT,
  DELETE) unless a method is given; ``rate_limit_429`` matches every method.

Other faults:

- ``late_visibility:SECONDS``  new orders and algo orders answer -2013 to queries (and are
  missing from open/all order lists) for SECONDS after creation (default 5).
- ``drop_stream``              close every user-stream socket now (a one-shot action).
- ``drop_stream:SECONDS``      close every user-stream socket every SECONDS.
- ``expire_listen_key``        expire the listenKey now: sockets get ``listenKeyExpired`` and are
  closed; PUT answers -1125 until a POST creates a new key (a one-shot action).
- ``countdown_cancels_algo``   a countdownCancelAll that ends also cancels every open algo
  order of its symbol (ALGO_UPDATE ``X=CANCELED``), not only the regular orders. Binance's docs
  say nothing of algo orders, so the venue leaves them by default; this covers the other answer.
  A switch: no argument, no ``:once``; it stays on until cleared.

Examples: ``lost_response:order:once``, ``unknown_503:algoOrder``, ``rate_limit_429:*@ANY``,
``late_visibility:5``, ``drop_stream:30``, ``slow_response:algoOrder@POST#2:20``,
``countdown_cancels_algo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


RESPONSE_KINDS = ("lost_response", "unknown_503", "timeout_1007", "rate_limit_429")
AFTER_KINDS = ("lost_response", "unknown_503", "timeout_1007")
SLOW_KIND = "slow_response"
SLOW_DEFAULT_S = 30.0
ACTION_KINDS = ("drop_stream", "expire_listen_key")
COUNTDOWN_KIND = "countdown_cancels_algo"
SWITCH_KINDS = (COUNTDOWN_KIND,)  # on until cleared: no argument, no ``:once``
KINDS = (*RESPONSE_KINDS, SLOW_KIND, "late_visibility", *ACTION_KINDS, *SWITCH_KINDS)
METHODS = ("GET", "POST", "PUT", "DELETE")
MUTATING = frozenset({"POST", "PUT", "DELETE"})
_SLOW_ARGS = 2  # slow_response:ENDPOINT[@METHOD][#N]:SECONDS


class FaultError(ValueError):
    """A fault spec that does not parse; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed switch; ``immediate`` ones are actions run once when set."""

    spec: str
    kind: str
    endpoint: str = "*"
    methods: frozenset[str] = field(default_factory=frozenset)
    seconds: float = 0.0
    once: bool = False
    nth: int = 0  # slow_response: hold only the Nth matching request (0 = every one)

    @property
    def immediate(self) -> bool:
        return self.kind == "expire_listen_key" or (
            self.kind == "drop_stream" and self.seconds == 0
        )

    def matches(self, endpoint: str, method: str) -> bool:
        return self.endpoint in ("*", endpoint) and method in self.methods


def parse(spec: str) -> Fault:
    """``KIND[:ARG][:once]`` -> Fault, or FaultError naming what is wrong."""
    parts = spec.strip().split(":")
    once = len(parts) > 1 and parts[-1] == "once"
    if once:
        parts = parts[:-1]
    kind, args = parts[0], parts[1:]
    if kind not in KINDS:
        raise FaultError(f"unknown fault {kind!r} in {spec!r}; known: {', '.join(KINDS)}")
    if kind == SLOW_KIND:
        return _slow(spec, args, once)
    if kind in SWITCH_KINDS:
        if args or once:
            raise FaultError(f"fault {spec!r} is a switch that stays on until cleared: no argument, no ':once'")
        return Fault(spec, kind)
    if len(args) > 1:
        raise FaultError(f"fault {spec!r} has too many ':' parts; the form is KIND[:ARG][:once]")
    arg = args[0] if args else ""
    if kind in RESPONSE_KINDS:
        endpoint, methods = _target(kind, arg, spec)
        return Fault(spec, kind, endpoint, methods, once=once)
    if kind == "expire_listen_key":
        if arg:
            raise FaultError(f"fault {spec!r} takes no argument")
        return Fault(spec, kind, once=True)
    seconds = _seconds(arg, spec, default=5.0 if kind == "late_visibility" else 0.0)
    return Fault(spec, kind, seconds=seconds, once=once or (kind == "drop_stream" and seconds == 0))


def _slow(spec: str, args: list[str], once: bool) -> Fault:
    if len(args) > _SLOW_ARGS:
        raise FaultError(
            f"fault {spec!r} has too many ':' parts; the form is "
            "slow_response:ENDPOINT[@METHOD][#N][:SECONDS][:once]"
        )
    target, _, nth_text = (args[0] if args else "").partition("#")
    nth = 1 if once else 0
    if nth_text:
        if not nth_text.isdigit() or int(nth_text) < 1:
            raise FaultError(f"fault {spec!r}: #N must be a whole number from 1")
        nth = int(nth_text)
    endpoint, methods = _target(SLOW_KIND, target, spec)
    seconds = _seconds(args[1] if len(args) > 1 else "", spec, default=SLOW_DEFAULT_S)
    return Fault(spec, SLOW_KIND, endpoint, methods, seconds=seconds, once=once, nth=nth)


def _target(kind: str, arg: str, spec: str) -> tuple[str, frozenset[str]]:
    endpoint, _, method = arg.partition("@")
    if not method:
        mutating = kind in AFTER_KINDS or kind == SLOW_KIND
        return endpoint or "*", (MUTATING if mutating else frozenset(METHODS))
    method = method.upper()
    if method == "ANY":
        return endpoint or "*", frozenset(METHODS)
    if method not in METHODS:
        raise FaultError(f"fault {spec!r}: method must be one of {', '.join(METHODS)} or ANY")
    return endpoint or "*", frozenset({method})


def _seconds(arg: str, spec: str, default: float) -> float:
    if not arg:
        return default
    try:
        value = float(arg)
    except ValueError:
        raise FaultError(f"fault {spec!r}: {arg!r} is not a number of seconds") from None
    if value < 0:
        raise FaultError(f"fault {spec!r}: seconds must not be negative")
    return value


class Faults:
    """The switches that are on, plus the bookkeeping of late visibility and periodic drops."""

    def __init__(self) -> None:
        self.active: list[Fault] = []
        self._hidden: dict[tuple[str, int], int] = {}  # (book, id) -> visible from (ms)
        self._next_drop: dict[str, int] = {}  # spec -> next stream drop (ms)
        self._seen: dict[int, int] = {}  # id(slow_response fault with #N) -> matches so far

    def add(self, spec: str) -> Fault:
        """Switch a fault on; an immediate one is returned for the caller to run, not kept."""
        fault = parse(spec)
        if not fault.immediate:
            self.active.append(fault)
        return fault

    def clear(self) -> None:
        self.active.clear()
        self._next_drop.clear()
        self._seen.clear()

    def specs(self) -> list[str]:
        return [f.spec for f in self.active]

    @property
    def countdown_cancels_algo(self) -> bool:
        """Whether an ending countdownCancelAll takes the symbol's algo orders too."""
        return any(f.kind == COUNTDOWN_KIND for f in self.active)

    def _take(self, kinds: tuple[str, ...], endpoint: str, method: str) -> Fault | None:
        for fault in self.active:
            if fault.kind in kinds and fault.matches(endpoint, method):
                if fault.once:
                    self.active.remove(fault)
                return fault
        return None

    def before(self, endpoint: str, method: str) -> Fault | None:
        """A fault that refuses the request before it executes (429)."""
        return self._take(("rate_limit_429",), endpoint, method)

    def after(self, endpoint: str, method: str) -> Fault | None:
        """A fault that replaces the answer of an executed request."""
        return self._take(AFTER_KINDS, endpoint, method)

    def slow(self, endpoint: str, method: str) -> Fault | None:
        """The ``slow_response`` switch that holds the answer of this executed request, if any."""
        for fault in list(self.active):
            if fault.kind != SLOW_KIND or not fault.matches(endpoint, method):
                continue
            if fault.nth:
                seen = self._seen.pop(id(fault), 0) + 1
                if seen < fault.nth:
                    self._seen[id(fault)] = seen
                    continue
                self.active.remove(fault)
            return fault
        return None

    # --- late visibility --------------------------------------------------------------------

    def created(self, book: str, ident: int, now_ms: int) -> None:
        """A new order (book "order") or algo order ("algo") was accepted at ``now_ms``."""
        fault = next((f for f in self.active if f.kind == "late_visibility"), None)
        if fault is None:
            return
        if fault.once:
            self.active.remove(fault)
        self._hidden[(book, ident)] = now_ms + int(fault.seconds * 1000)

    def hidden(self, book: str, ident: int, now_ms: int) -> bool:
        until = self._hidden.get((book, ident))
        if until is None:
            return False
        if now_ms >= until:
            del self._hidden[(book, ident)]
            return False
        return True

    # --- periodic stream drops --------------------------------------------------------------

    def stream_drop_due(self, now_ms: int) -> bool:
        """True when a periodic ``drop_stream:SECONDS`` is due (then it is re-armed)."""
        due = False
        for fault in [f for f in self.active if f.kind == "drop_stream"]:
            period = max(1, int(fault.seconds * 1000))
            next_at = self._next_drop.setdefault(fault.spec, now_ms + period)
            if now_ms >= next_at:
                due = True
                self._next_drop[fault.spec] = now_ms + period
                if fault.once:
                    self.active.remove(fault)
        return due
