"""Registries: the extension points of pvsim (design principle 11).

Modes, I/O paths, device kinds, arbitration policies, schedulers and workloads are
components registered by name in a :class:`Registry`. The scenario schema, validation,
the builder, ``compare`` and the plots ask the registry (its names, a component's own
attributes and methods); nothing outside a component's module and its registry compares
its name as a string. Adding a component is one class plus one registration, which may
happen outside the package (a notebook, a plug-in module, a test).

Examples
--------
>>> shapes = Registry("shape")
>>> @shapes.register("square")
... class Square:
...     sides = 4
>>> shapes["square"].sides, shapes.names(), "circle" in shapes
(4, ('square',), False)
>>> shapes["circle"]
Traceback (most recent call last):
...
model.errors.UnknownNameError: unknown shape 'circle'; valid choices: square
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Components of one kind by name, in registration order.

    Parameters
    ----------
    what : str
        What a component is, for messages (``"arbitration policy"``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, component: T | None = None) -> Callable[[T], T] | T:
        """Register ``component`` under ``name``; without ``component``, a decorator.

        A name can be registered once: a second registration is a :class:`ConfigError`
        (two components silently shadowing each other would change results unseen).
        """
        if component is not None:
            return self._add(name, component)

        def decorate(c: T) -> T:
            return self._add(name, c)

        return decorate

    def _add(self, name: str, component: T) -> T:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.what} name must be a non-empty string, not {name!r}")
        if name in self._items:
            raise ConfigError(f"{self.what} {name!r} is already registered")
        self._items[name] = component
        return component

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and notebooks that register a component for a while)."""
        self[name]  # noqa: B018 (raises UnknownNameError with the choices)
        del self._items[name]

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.what, name, self.names()) from None

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._items.get(name, default)

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(tuple(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._items)})"
