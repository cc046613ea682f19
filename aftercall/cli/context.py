"""What every `aftercall` command shares: the settings, read from the environment once,
on first use (a command that needs none, like `--help`, never fails on a bad setting)."""

from __future__ import annotations

import click

from core.config import ConfigError, Settings


class Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings.from_env()
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._settings


pass_context = click.make_pass_decorator(Context, ensure=True)
