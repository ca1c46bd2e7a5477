"""`bot notify test` through the real command line, against the capture server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from tests.notify.capture import Capture


runner = CliRunner()
TOKEN = "777:cli-secret-token"


def bot(tmp_path: Path, config: str, *, token: str | None = TOKEN) -> tuple[int, str, str]:
    path = tmp_path / "bot.toml"
    path.write_text(config)
    env = {"BOT_TELEGRAM_TOKEN": token}
    result = runner.invoke(
        app,
        ["--state-dir", str(tmp_path / "state"), "--config", str(path), "notify", "test"],
        env=env,
    )
    return result.exit_code, result.stdout, result.stderr


def both(url: str, webhook_path: str = "/hook") -> str:
    return (
        f'[notify]\nwebhook_url = "{url}{webhook_path}"\n'
        f'telegram_chat_id = "42"\ntelegram_url = "{url}"\n'
    )


def test_every_sink_delivered_is_exit_0(tmp_path: Path, capture: Capture) -> None:
    """One ok line per sink, the test message on both, exit 0; the token is printed nowhere."""
    # Act
    code, out, err = bot(tmp_path, both(capture.url))

    # Assert
    assert code == 0, err
    assert out.splitlines() == [
        "webhook (127.0.0.1): ok (HTTP 200)",
        "telegram (127.0.0.1): ok (HTTP 200)",
    ]
    seen = {s.path: s.json() for s in capture.wait_for(2)}
    assert seen["/hook"]["kind"] == "test"
    assert seen[f"/bot{TOKEN}/sendMessage"]["chat_id"] == "42"
    assert TOKEN not in out + err


def test_a_failing_sink_is_exit_1(tmp_path: Path, capture: Capture) -> None:
    """A sink answering 500 is one 'failed' line on stderr (tried once), exit 1; the other still
    says ok on stdout."""
    # Arrange
    capture.script("/hook", 500)

    # Act
    code, out, err = bot(tmp_path, both(capture.url))

    # Assert
    assert code == 1
    assert err.splitlines() == ["webhook (127.0.0.1): failed: HTTP 500 Internal Server Error: scripted 500"]
    assert out.splitlines() == ["telegram (127.0.0.1): ok (HTTP 200)"]
    assert len(capture.wait_for(2)) == 2


def test_nothing_configured_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """Without a sink: one line on stderr saying how to configure one, exit 1."""
    # Act
    code, out, err = bot(tmp_path, "")

    # Assert
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "no notification sink configured" in err


@pytest.mark.parametrize(
    ("config", "token", "expected"),
    [
        pytest.param(
            '[notify]\ntelegram_chat_id = "42"\n',
            None,
            "BOT_TELEGRAM_TOKEN is not in the environment",
            id="chat id without token",
        ),
        pytest.param(
            '[notify]\nwebhook_url = "localhost/hook"\n',
            TOKEN,
            "notify.webhook_url must be an http",
            id="webhook without scheme",
        ),
    ],
)
def test_a_half_configured_sink_is_one_line_and_exit_1(
    tmp_path: Path, config: str, token: str | None, expected: str
) -> None:
    """A sink set up wrong: one line naming the key (and the file), exit 1, no traceback."""
    # Act
    code, _, err = bot(tmp_path, config, token=token)

    # Assert
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert expected in err
    assert "Traceback" not in err
