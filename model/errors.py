"""Exception types of pvsim. Every error the library raises on bad input derives from
:class:`PvsimError`, so a caller (or the CLI) can catch one type."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


def valid_choices(value: object, choices: Iterable[str], what: str = "valid choices") -> str:
    """``valid choices: a, b, c``, and ``; did you mean 'b'?`` when ``value`` is close to
    one of them (a typo): the end of every message about an unknown name or key.

    Examples
    --------
    >>> valid_choices("web_sever", ["spin", "web_server", "kv_store"])
    "valid choices: spin, web_server, kv_store; did you mean 'web_server'?"
    >>> valid_choices("mdoe", ["name", "mode"], "valid keys")
    "valid keys: name, mode; did you mean 'mode'?"
    >>> valid_choices("nehalem", ["core2-2.66ghz-vt", "nehalem-2.93ghz-ept"])
    "valid choices: core2-2.66ghz-vt, nehalem-2.93ghz-ept; did you mean 'nehalem-2.93ghz-ept'?"
    >>> valid_choices("zzz", ["a", "b"])
    'valid choices: a, b'
    """
    choices = [str(c) for c in choices]
    text = f"{what}: {', '.join(choices)}"
    v = str(value)
    close = get_close_matches(v, choices, n=1, cutoff=0.6)
    if not close and len(v) >= 3:  # a short name for one of them ('nehalem')
        close = [c for c in choices if v.lower() in c.lower()]
    return text + (f"; did you mean {close[0]!r}?" if len(close) == 1 else "")


class PvsimError(Exception):
    """Base class of every pvsim error."""


class ConfigError(PvsimError, ValueError):
    """A bad value in a configuration: an unknown name or a value out of range.

    The message quotes the bad value and lists the valid choices.
    """


class UnknownNameError(ConfigError, KeyError):
    """An unknown hardware profile, mode, op or policy name.

    Examples
    --------
    >>> raise UnknownNameError("hardware profile", "pentium", ["a", "b"])
    Traceback (most recent call last):
    ...
    model.errors.UnknownNameError: unknown hardware profile 'pentium'; valid choices: a, b
    """

    def __init__(self, what: str, value: object, choices: list[str] | tuple[str, ...]) -> None:
        self.what, self.value, self.choices = what, value, tuple(choices)
        super().__init__(f"unknown {what} {value!r}; {valid_choices(value, self.choices)}")

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class UnsupportedModeError(ConfigError):
    """A guest configuration that the virtualization mode cannot run, such as an
    unmodified OS in ``pv`` mode."""


class InvariantError(PvsimError, AssertionError):
    """A model invariant (cycle conservation, request conservation) does not hold."""
