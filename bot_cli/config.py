"""Configuration: TOML read once into frozen dataclasses; secrets only from the environment.

Unknown keys are errors (a typo in a trading bot's config must not pass silently),
and every error names the key and the file.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot_cli.core.model import Policy, TriggerPolicy
from bot_cli.errors import ConfigError


BINANCE_URLS = {
    "live": ("https://fapi.binance.com", "wss://fstream.binance.com/private"),
    "testnet": ("https://demo-fapi.binance.com", "wss://fstream.binancefuture.com/private"),
}


@dataclass(frozen=True, slots=True)
class VenueConfig:
    kind: str = "paper"  # "paper" | "binance"
    network: str = "testnet"  # binance: "testnet" | "live"
    allow_live: bool = False
    rest_url: str = ""  # override; empty = the network's default
    ws_url: str = ""
    recv_window_ms: int = 5000
    position_mode: str = "auto"  # "auto" (ask the exchange once) | "one-way" | "hedge"
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ProtectionConfig:
    on_immediate_trigger: str = "close"  # "close" | "alert"
    not_found_margin_ms: int = 5000
    recheck_ms: int = 2000
    max_attempts: int = 5
    retry_max_ms: int = 5000  # the longest wait between tries after transient trouble (jittered)
    position_confirm_ms: int = 1000  # a position read short of the shares is read again this much later
    unclaimed: str = "alert"  # a position no entry holds: "alert" (tell a person) | "protect" (adopt it)
    unclaimed_stop_pct: float = 2.0  # "protect": the stop-loss this far from the mark, on the losing side
    unclaimed_take_pct: float = 0.0  # "protect": a take-profit this far on the other side; 0 = none
    stacking: bool = False  # more than one entry on one position (each leg exact to its entry's share)
    breakeven_fee_pct: float = 0.1  # `bot amend --breakeven`: the round trip's fees above (below) the average fill


@dataclass(frozen=True, slots=True)
class PaperConfig:
    host: str = "127.0.0.1"
    port: int = 18765
    seed: int = 7
    volatility: float = 0.0005  # per-second relative move of the simulated price
    faults: tuple[str, ...] = ()
    order_limit_10s: int = 300  # new orders per account per 10 s, as Binance's ORDERS limits
    order_limit_1m: int = 1200  # ... and per minute; beyond either, -1015 (HTTP 429)


@dataclass(frozen=True, slots=True)
class DemoConfig:
    enabled: bool = False
    symbol: str = "BTCUSDT"
    quantity: str = "0.010"
    every_s: float = 20.0
    stop_pct: float = 0.5
    take_pct: float = 1.0


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Where alerts go; secrets (a Telegram bot token) only from the environment."""

    webhook_url: str = ""  # a generic JSON POST
    telegram_chat_id: str = ""  # with BOT_TELEGRAM_TOKEN in the environment
    telegram_url: str = "https://api.telegram.org"  # override for tests
    unprotected_s: float = 60.0  # a filled share without a full stop this long is told
    stream_down_s: float = 60.0  # the user stream down this long is told
    queue_size: int = 100  # beyond it a message is dropped (and the drop logged), never waited for
    timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class InboxConfig:
    """The signal inbox `bot run` serves when enabled; the secret only from the environment."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 18766
    max_body_bytes: int = 16_384
    max_per_minute: int = 120


@dataclass(frozen=True, slots=True)
class DeadmanConfig:
    """Binance's countdownCancelAll, armed per symbol while an entry order rests."""

    countdown_s: float = 120.0  # resting entries are cancelled this long after the daemon's last renewal; 0 = off
    foreign_orders: str = "skip"  # a symbol with regular orders that are not the bot's: "skip" it | "include" them


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus text on http://host:port/metrics while `bot run` runs."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 18767


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None = None
    venue: VenueConfig = field(default_factory=VenueConfig)
    protection: ProtectionConfig = field(default_factory=ProtectionConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    deadman: DeadmanConfig = field(default_factory=DeadmanConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    @property
    def policy(self) -> Policy:
        p = self.protection
        return replace(
            Policy(TriggerPolicy(p.on_immediate_trigger), p.not_found_margin_ms, p.recheck_ms, p.max_attempts),
            unprotected_alert_ms=int(self.notify.unprotected_s * 1000),
            retry_max_ms=p.retry_max_ms, position_confirm_ms=p.position_confirm_ms, stacking=p.stacking,
        )

    def rest_url(self) -> str:
        if self.venue.kind == "paper":
            return self.venue.rest_url or f"http://{self.paper.host}:{self.paper.port}"
        return self.venue.rest_url or BINANCE_URLS[self.venue.network][0]

    def ws_url(self) -> str:
        if self.venue.kind == "paper":
            return self.venue.ws_url or f"ws://{self.paper.host}:{self.paper.port}/private"
        return self.venue.ws_url or BINANCE_URLS[self.venue.network][1]


_SECTIONS: dict[str, type[Any]] = {
    "venue": VenueConfig, "protection": ProtectionConfig, "paper": PaperConfig, "demo": DemoConfig,
    "notify": NotifyConfig, "inbox": InboxConfig, "deadman": DeadmanConfig, "metrics": MetricsConfig,
}
_CHOICES = {
    ("venue", "kind"): ("paper", "binance"),
    ("venue", "network"): ("testnet", "live"),
    ("venue", "position_mode"): ("auto", "one-way", "hedge"),
    ("protection", "on_immediate_trigger"): ("close", "alert"),
    ("protection", "unclaimed"): ("alert", "protect"),
    ("deadman", "foreign_orders"): ("skip", "include"),
}


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read the config; None means ./bot.toml if it exists, else the defaults (paper venue)."""
    if path is None:
        default = Path("bot.toml")
        if not default.exists():
            return Config()
        path = default
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {p} does not exist: create it (see bot.toml.example) or omit --config"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {p} is not valid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"config file {p} cannot be read: {err.strerror}") from None
    return _build(p, data)


def _build(path: Path, data: dict[str, Any]) -> Config:
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            raise ConfigError(f"{path}: unknown section [{name}]; known: {', '.join(_SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name} must be a [{name}] table")
        sections[name] = _section(path, name, _SECTIONS[name], value)
    config = Config(path=path, **sections)
    _check_live(path, config.venue)
    _check_ports(path, config)
    _check_order_limits(path, config.paper)
    _check_protection(path, config.protection)
    _check_numbers(path, config)
    _check_faults(path, config.paper)
    _check_demo(path, config.demo)
    return config


def _section(path: Path, name: str, cls: type[Any], values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown key {name}.{key}; known: {', '.join(known)}")
        default = getattr(cls(), key)
        kwargs[key] = _typed(path, f"{name}.{key}", value, default)
        choices = _CHOICES.get((name, key))
        if choices and kwargs[key] not in choices:
            raise ConfigError(f"{path}: {name}.{key} = {value!r} is not one of {', '.join(choices)}")
    return cls(**kwargs)


def _typed(path: Path, key: str, value: Any, default: Any) -> Any:
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: {key} must be {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


MAX_RECV_WINDOW_MS = 60_000  # Binance refuses a larger recvWindow
MAX_PORT = 65_535
# The countdown is renewed every quarter of it; Binance checks countdowns every ~10 ms and
# advises against tiny ones. One day is far beyond any sensible dead-man switch.
MIN_COUNTDOWN_S, MAX_COUNTDOWN_S = 2.0, 86_400.0
WHOLE_PCT = 100.0  # a distance from the mark of 100 % or more puts a trigger at or below 0
MAX_FEE_PCT = 5.0  # fees of a round trip beyond this are a typo, not a fee schedule


def _check_live(path: Path, venue: VenueConfig) -> None:
    if venue.kind == "binance" and venue.network == "live" and not venue.allow_live:
        raise ConfigError(
            f"{path}: venue.network = \"live\" trades real money; set venue.allow_live = true to confirm"
        )
    if not 1 <= venue.recv_window_ms <= MAX_RECV_WINDOW_MS:
        raise ConfigError(f"{path}: venue.recv_window_ms must be between 1 and {MAX_RECV_WINDOW_MS}")


def _check_ports(path: Path, config: Config) -> None:
    ports = {"paper.port": config.paper.port, "inbox.port": config.inbox.port, "metrics.port": config.metrics.port}
    for key, port in ports.items():
        if not 1 <= port <= MAX_PORT:
            raise ConfigError(f"{path}: {key} = {port} is not a TCP port (1 to {MAX_PORT})")


def _check_order_limits(path: Path, paper: PaperConfig) -> None:
    limits = {"paper.order_limit_10s": paper.order_limit_10s, "paper.order_limit_1m": paper.order_limit_1m}
    for key, limit in limits.items():
        if limit < 1:
            raise ConfigError(f"{path}: {key} = {limit} must be a positive number of orders")


def _check_numbers(path: Path, config: Config) -> None:
    """Durations and rates a command would divide by, sleep for or time out on: finite, and
    above 0 (volatility: 0 or more)."""
    positive = {
        "venue.timeout_s": config.venue.timeout_s, "notify.timeout_s": config.notify.timeout_s,
        "notify.unprotected_s": config.notify.unprotected_s, "notify.stream_down_s": config.notify.stream_down_s,
    }  # fmt: skip
    for key, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{path}: {key} = {value} must be a number of seconds above 0")
    countdown = config.deadman.countdown_s
    if not (math.isfinite(countdown) and (countdown == 0 or MIN_COUNTDOWN_S <= countdown <= MAX_COUNTDOWN_S)):
        raise ConfigError(f"{path}: deadman.countdown_s = {countdown} must be 0 (off) or seconds from"
                          f" {MIN_COUNTDOWN_S:g} to {MAX_COUNTDOWN_S:g}")  # fmt: skip
    if not (math.isfinite(config.paper.volatility) and config.paper.volatility >= 0):
        raise ConfigError(f"{path}: paper.volatility = {config.paper.volatility} must be 0 or more")


def _check_faults(path: Path, paper: PaperConfig) -> None:
    from bot_cli.paper.faults import FaultError, parse  # the pure parser the venue uses

    for spec in paper.faults:
        try:
            parse(spec)
        except FaultError as err:
            raise ConfigError(f"{path}: paper.faults has {spec!r}: {err}") from None


def _check_demo(path: Path, demo: DemoConfig) -> None:
    try:
        quantity = Decimal(demo.quantity)
    except ArithmeticError:
        quantity = Decimal("NaN")
    if not (quantity.is_finite() and quantity > 0):
        raise ConfigError(f"{path}: demo.quantity = {demo.quantity!r} must be a quantity above 0, e.g. \"0.010\"")
    if not (math.isfinite(demo.every_s) and demo.every_s > 0):
        raise ConfigError(f"{path}: demo.every_s = {demo.every_s} must be a number of seconds above 0")
    for key, pct in (("demo.stop_pct", demo.stop_pct), ("demo.take_pct", demo.take_pct)):
        if not (math.isfinite(pct) and 0 < pct < WHOLE_PCT):
            raise ConfigError(f"{path}: {key} = {pct} must be a percentage above 0 and below 100")


def _check_protection(path: Path, p: ProtectionConfig) -> None:
    times = {
        "protection.not_found_margin_ms": p.not_found_margin_ms, "protection.recheck_ms": p.recheck_ms,
        "protection.retry_max_ms": p.retry_max_ms, "protection.position_confirm_ms": p.position_confirm_ms,
    }  # fmt: skip
    for key, value in times.items():
        if value < 1:
            raise ConfigError(f"{path}: {key} = {value} must be a positive number of milliseconds")
    if p.retry_max_ms < p.recheck_ms:
        raise ConfigError(f"{path}: protection.retry_max_ms ({p.retry_max_ms}) must be at least"
                          f" protection.recheck_ms ({p.recheck_ms}), the first wait")  # fmt: skip
    _check_unclaimed(path, p)
    if not (math.isfinite(p.breakeven_fee_pct) and 0 <= p.breakeven_fee_pct < MAX_FEE_PCT):
        raise ConfigError(f"{path}: protection.breakeven_fee_pct = {p.breakeven_fee_pct} must be a percentage"
                          f" from 0 to below {MAX_FEE_PCT:g} (the fees of a round trip, e.g. 0.1)")  # fmt: skip


def _check_unclaimed(path: Path, p: ProtectionConfig) -> None:
    """Distances from the mark in percent: below 100, or a long's stop (a short's take-profit) is not a price."""
    if not (math.isfinite(p.unclaimed_stop_pct) and 0 < p.unclaimed_stop_pct < WHOLE_PCT):
        raise ConfigError(f"{path}: protection.unclaimed_stop_pct = {p.unclaimed_stop_pct} must be a percentage"
                          " above 0 and below 100 (the stop-loss's distance from the mark)")  # fmt: skip
    if not (math.isfinite(p.unclaimed_take_pct) and 0 <= p.unclaimed_take_pct < WHOLE_PCT):
        raise ConfigError(f"{path}: protection.unclaimed_take_pct = {p.unclaimed_take_pct} must be a percentage"
                          " from 0 (no take-profit) to below 100")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    api_secret: str

    def __repr__(self) -> str:  # never print the secret, not even in a traceback
        return "Credentials(api_key=***, api_secret=***)"


def credentials(env: dict[str, str] | None = None) -> Credentials:
    env = dict(os.environ) if env is None else env
    key, secret = env.get("BOT_API_KEY", ""), env.get("BOT_API_SECRET", "")
    if not key or not secret:
        raise ConfigError("the binance venue needs BOT_API_KEY and BOT_API_SECRET in the environment")
    return Credentials(key, secret)
