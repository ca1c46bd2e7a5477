"""Config: TOML into frozen dataclasses; every error names the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_cli.config import Config, credentials, load_config
from bot_cli.core.model import TriggerPolicy
from bot_cli.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(text)
    return path


def test_no_file_means_the_paper_venue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without bot.toml the defaults run on the embedded paper venue."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.venue.kind == "paper"
    assert cfg.rest_url() == "http://127.0.0.1:18765"


def test_the_example_file_is_valid_and_documents_every_key() -> None:
    """bot.toml.example loads, and every key of every section appears in it."""
    example = Path(__file__).parents[2] / "bot.toml.example"
    cfg = load_config(example)
    text = example.read_text()
    for section in ("venue", "protection", "paper", "demo"):
        for key in type(getattr(cfg, section)).__dataclass_fields__:
            assert f"\n{key} = " in text, f"{section}.{key} is not documented in bot.toml.example"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[venue]\nkind = 'kraken'\n", "venue.kind = 'kraken' is not one of paper, binance"),
        ("[venue]\nrecv_windw_ms = 5000\n", "unknown key venue.recv_windw_ms"),
        ("[venu]\n", "unknown section [venu]"),
        ("[venue]\nrecv_window_ms = '5000'\n", "venue.recv_window_ms must be int, got str"),
        ("[protection]\non_immediate_trigger = 'ignore'\n", "not one of close, alert"),
        ("[venue]\nkind = 'binance'\nnetwork = 'live'\n", "set venue.allow_live = true"),
        ("[venue]\nrecv_window_ms = 0\n", "between 1 and 60000"),
        ("[venue\n", "is not valid TOML"),
    ],
    ids=["bad choice", "typo in a key", "typo in a section", "wrong type", "bad policy", "live without opt-in",
         "recv window out of range", "broken TOML"],
)
def test_bad_config_names_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    """A bad config is one clear error naming what is wrong and where."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    """--config pointing nowhere is refused, not silently replaced by defaults."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_live_trading_needs_the_explicit_opt_in(tmp_path: Path) -> None:
    """network = live with allow_live = true loads, with Binance's live URLs."""
    cfg = load_config(write(tmp_path, "[venue]\nkind = 'binance'\nnetwork = 'live'\nallow_live = true\n"))
    assert cfg.rest_url() == "https://fapi.binance.com"
    assert cfg.ws_url() == "wss://fstream.binance.com/private"


def test_policy_comes_from_the_protection_section(tmp_path: Path) -> None:
    """on_immediate_trigger and the timing knobs reach the engine's Policy."""
    cfg = load_config(write(tmp_path, "[protection]\non_immediate_trigger = 'alert'\nrecheck_ms = 750\n"))
    assert cfg.policy.on_immediate_trigger is TriggerPolicy.ALERT
    assert cfg.policy.recheck_ms == 750


def test_credentials_come_from_the_environment_and_never_print() -> None:
    """Keys are read from BOT_API_KEY/BOT_API_SECRET; their repr hides both."""
    creds = credentials({"BOT_API_KEY": "k" * 64, "BOT_API_SECRET": "s" * 64})
    assert creds.api_key == "k" * 64
    assert "k" * 8 not in repr(creds) and "s" * 8 not in repr(creds)
    with pytest.raises(ConfigError, match="BOT_API_KEY and BOT_API_SECRET"):
        credentials({})
