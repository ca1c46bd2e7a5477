"""What every command shares: the state dir and the config, resolved once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from bot_cli.config import Config


@dataclass
class AppContext:
    state_dir: Path
    config_path: Path | None
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            from bot_cli.config import load_config

            self._config = load_config(self.config_path)
        return self._config
