"""Exception types of pvsim. Every error the library raises on bad input derives from
:class:`PvsimError`, so a caller (or the CLI) can catch one type."""

from __future__ import annotations


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
        super().__init__(f"unknown {what} {value!r}; valid choices: {', '.join(self.choices)}")

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class UnsupportedModeError(ConfigError):
    """A guest configuration that the virtualization mode cannot run, such as an
    unmodified OS in ``pv`` mode."""


class InvariantError(PvsimError, AssertionError):
    """A model invariant (cycle conservation, request conservation) does not hold."""
