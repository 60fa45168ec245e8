"""`contacthub`: the project's one command line.

Each package contributes its own commands (``speech.cli``, ``ivr_dialogs.cli``) so this file
stays a table of contents. Imports are lazy: `contacthub say` must not pay for the web app.
"""

from __future__ import annotations

import importlib

import click

# (module, attribute) pairs, each a click command or group added under its own name.
_COMMAND_SOURCES: tuple[tuple[str, str], ...] = (
    ("hub.serve", "run"),
    ("hub.serve", "migrate"),
    ("hub.serve", "seed"),
    ("speech.cli", "commands"),
    ("ivr_dialogs.cli", "commands"),
)


class _LazyGroup(click.Group):
    def _load(self) -> None:
        if getattr(self, "_loaded", False):
            return
        self._loaded = True
        for module_name, attr in _COMMAND_SOURCES:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:  # a package not built yet
                if exc.name and module_name.startswith(exc.name):
                    continue
                raise
            found = getattr(module, attr, None)
            if found is None:
                continue
            for command in found if isinstance(found, list | tuple) else [found]:
                self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup)
def main() -> None:
    """Contact Hub: an offline, omnichannel contact center."""
