"""The argument parser of the ``pvsim`` command, cheap to build.

Building the parser imports nothing of the engine: the names a help lists (modes, ops,
hardware profiles, OS kinds) are filled in when that help is printed
(:class:`Formatter`, ``{name}`` of :data:`HELP_NAMES` in a help text), and a choice list
that comes from the engine is looked up when a value is checked (:class:`Later`). Errors
are one line and exit status 2 (:meth:`Parser.error`).

Examples
--------
>>> p = Parser(prog="pvsim x")
>>> _ = p.add_argument("--os", choices=Later(os_kinds), default="modified", metavar="OS",
...                    help="the guest's OS: {os_kinds}")
>>> p.parse_args([]).os, "modified or unmodified" in p.format_help()
('modified', True)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def _modes() -> list[str]:
    from model.modes import MODES

    return list(MODES)


def _ops() -> list[str]:
    from model.microbench import OPS

    return list(OPS)


def _profiles() -> list[str]:
    from model.hardware import profile_names

    return profile_names()


def os_kinds() -> tuple[str, ...]:
    """The guest OS kinds (``--os``'s choices), from :mod:`model.modes`."""
    from model.modes import OS_KINDS

    return OS_KINDS


#: ``{name}`` in a help text -> the text it stands for, computed when the help is printed.
HELP_NAMES: dict[str, Callable[[], str]] = {
    "modes": lambda: ",".join(_modes()),
    "ops": lambda: ",".join(_ops()),
    "profiles": lambda: ", ".join(_profiles()),
    "os_kinds": lambda: " or ".join(os_kinds()),
}


class Formatter(argparse.HelpFormatter):
    """Help texts with the ``{name}`` of :data:`HELP_NAMES` filled in: only ``--help``
    needs the engine's registries, not parsing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        for name, names in HELP_NAMES.items():
            if text and "{" + name + "}" in text:
                text = text.replace("{" + name + "}", names())
        return text


class RawEpilog(Formatter, argparse.RawDescriptionHelpFormatter):
    """An epilog printed as written (a table)."""


class Later(Sequence[str]):
    """Choices looked up when first needed (a value to check, a help to print)."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names
        self._known: tuple[str, ...] | None = None

    def _all(self) -> tuple[str, ...]:
        if self._known is None:
            self._known = tuple(self._names())
        return self._known

    def __getitem__(self, i: int | slice) -> str | tuple[str, ...]:
        return self._all()[i]

    def __len__(self) -> int:
        return len(self._all())


class Parser(argparse.ArgumentParser):
    """An argument parser whose helps are formatted by :class:`Formatter` (unless told
    otherwise) and whose errors are one line on stderr and exit status 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one line, status 2
        print(f"pvsim: error: {message}", file=sys.stderr)
        raise SystemExit(2)
