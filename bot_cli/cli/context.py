"""What every command shares: the state dir and the config, resolved once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot_cli.config import Config, load_config


@dataclass
class AppContext:
    state_dir: Path
    config_path: Path | None
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config
