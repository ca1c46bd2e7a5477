"""`bot init`: a commented bot.toml that the bot's own loader reads back, never a secret."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.config import load_config


KEY, SECRET = "K" * 64, "S" * 64
runner = CliRunner(env={"BOT_API_KEY": KEY, "BOT_API_SECRET": SECRET, "BOT_CONFIG": None, "BOT_STATE_DIR": None})


def init(tmp_path: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    out = tmp_path / "bot.toml"
    result = runner.invoke(app, ["--config", str(out), "init", *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_flags_write_a_config_the_loader_reads_back(tmp_path: Path) -> None:
    """Off a terminal, flags decide; the file loads into exactly what was asked for."""
    code, out, _ = init(tmp_path, "--venue", "binance", "--network", "testnet", "--position-mode", "hedge",
                        "--on-immediate-trigger", "alert")  # fmt: skip
    assert code == 0, out
    cfg = load_config(tmp_path / "bot.toml")
    assert (cfg.venue.kind, cfg.venue.network, cfg.venue.position_mode) == ("binance", "testnet", "hedge")
    assert cfg.protection.on_immediate_trigger == "alert"
    assert "wrote" in out
    assert "BOT_API_KEY" in out


def test_no_flags_means_the_paper_venue(tmp_path: Path) -> None:
    """Without flags: the paper venue with the defaults, loadable, every value commented."""
    code, _, _ = init(tmp_path)
    assert code == 0
    text = (tmp_path / "bot.toml").read_text()
    cfg = load_config(tmp_path / "bot.toml")
    assert cfg.venue.kind == "paper"
    assert cfg.paper.port == 18765
    for key in ("kind", "position_mode", "on_immediate_trigger", "port"):
        before = text.split(f"\n{key} = ")[0]
        assert before.rsplit("\n", 1)[-1].startswith("# "), f"{key} has no comment above it"


def test_never_writes_a_secret(tmp_path: Path) -> None:
    """Keys in the environment are not written, and the file is readable by its owner only."""
    code, _, _ = init(tmp_path, "--venue", "binance")
    assert code == 0
    text = (tmp_path / "bot.toml").read_text()
    assert KEY not in text
    assert SECRET not in text
    assert "K" * 8 not in text
    assert stat.S_IMODE((tmp_path / "bot.toml").stat().st_mode) == 0o600


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """An existing file is kept (exit 1, one line) unless --force."""
    (tmp_path / "bot.toml").write_text("# mine\n")
    code, _, err = init(tmp_path, "--venue", "binance")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "--force" in err
    assert (tmp_path / "bot.toml").read_text() == "# mine\n"
    code, _, _ = init(tmp_path, "--venue", "binance", "--force")
    assert code == 0
    assert load_config(tmp_path / "bot.toml").venue.kind == "binance"


def test_live_needs_its_own_flag(tmp_path: Path) -> None:
    """--network live without --allow-live is refused; with it the file says allow_live."""
    code, _, err = init(tmp_path, "--venue", "binance", "--network", "live")
    assert code == 1
    assert "--allow-live" in err
    assert not (tmp_path / "bot.toml").exists()
    code, _, _ = init(tmp_path, "--venue", "binance", "--network", "live", "--allow-live")
    cfg = load_config(tmp_path / "bot.toml")
    assert code == 0
    assert cfg.venue.network == "live"
    assert cfg.venue.allow_live


@pytest.mark.parametrize(
    ("answers", "kind", "network", "mode"),
    [("binance\ntestnet\none-way\nclose\n", "binance", "testnet", "one-way"),
     ("paper\n18800\nauto\nalert\n", "paper", "testnet", "auto"),
     ("kraken\nbinance\nlive\nn\nhedge\nclose\n", "binance", "testnet", "hedge")],
    ids=["binance testnet", "paper on a port", "a wrong answer, then live declined"],
)  # fmt: skip
def test_interactive_asks_what_the_flags_do_not_say(
    tmp_path: Path, answers: str, kind: str, network: str, mode: str
) -> None:
    """On a terminal each choice is asked, a wrong answer asked again, live confirmed."""
    code, out, _ = init(tmp_path, "--interactive", input=answers)
    assert code == 0, out
    cfg = load_config(tmp_path / "bot.toml")
    assert (cfg.venue.kind, cfg.venue.network, cfg.venue.position_mode) == (kind, network, mode)
    assert not cfg.venue.allow_live


def test_init_works_whatever_the_state_dir(tmp_path: Path) -> None:
    """init never uses the state dir, so a broken one does not stop it."""
    (tmp_path / "state").write_text("")
    result = runner.invoke(app, ["--state-dir", str(tmp_path / "state"), "init", "-o", str(tmp_path / "b.toml")])
    assert result.exit_code == 0
    assert load_config(tmp_path / "b.toml").venue.kind == "paper"
