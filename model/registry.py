"""Registries: the extension points of pvsim (design principle 11).

Modes, I/O paths, device kinds, arbitration policies, schedulers and workloads are
components registered by name in a :class:`Registry`. The scenario schema, validation,
the builder, ``compare`` and the plots ask the registry (its names, a component's own
attributes and methods); nothing outside a component's module and its registry compares
its name as a string. Adding a component is one class plus one registration, which may
happen outside the package (a notebook, a plug-in module, a test).

A scenario field that names a component is typed :func:`choice` of its registry: it
accepts the names registered when a scenario is validated and lists them in the JSON
schema when the schema is made, so a component registered later is accepted and shown.
What depends on the registered components themselves (the scenario's device fields,
built from the parameters components declare) follows with :meth:`Registry.subscribe`.

Examples
--------
>>> shapes = Registry("shape")
>>> @shapes.register("square")
... class Square:
...     sides = 4
>>> shapes["square"].sides, shapes.names(), "circle" in shapes
(4, ('square',), False)
>>> @shapes.register("square")  # the same class defined again (a notebook cell re-run)
... class Square:
...     sides = 4
>>> shapes["square"] is Square
True
>>> shapes.register("square", object())
Traceback (most recent call last):
...
model.errors.ConfigError: shape 'square' is already registered
>>> shapes["circle"]
Traceback (most recent call last):
...
model.errors.UnknownNameError: unknown shape 'circle'; valid choices: square
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Generic, TypeVar

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
        self._listeners: list[Callable[[], None]] = []

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
        before = self._items.get(name)
        if before is not None and not _redefinition(before, component):
            raise ConfigError(f"{self.what} {name!r} is already registered")
        self._items[name] = component
        try:
            self._changed()
        except Exception:  # a listener refused the component: as if never registered
            if before is None:
                del self._items[name]
            else:
                self._items[name] = before
            self._changed()
            raise
        return component

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and notebooks that register a component for a while)."""
        self[name]  # noqa: B018 (raises UnknownNameError with the choices)
        del self._items[name]
        self._changed()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every registration and removal, from now on.

        A listener that raises refuses a registration: the component is removed again
        (and the listeners told), and the error goes to the caller of :meth:`register`.

        Examples
        --------
        >>> colours = Registry("colour")
        >>> colours.subscribe(lambda: print("now", colours.names()))
        >>> _ = colours.register("red", 1)
        now ('red',)
        """
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.what, name, self.names()) from None

    def module_of(self, name: str) -> str | None:
        """The module that defines the component registered as ``name``.

        Examples
        --------
        >>> from model.modes import MODES
        >>> MODES.module_of("hvm")
        'model.modes'
        """
        return _identity(self[name])[0]

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._items.get(name, default)

    def values(self) -> Iterator[T]:
        """The components, in registration order.

        Examples
        --------
        >>> r = Registry("number")
        >>> _ = r.register("one", 1), r.register("two", 2)
        >>> list(r.values())
        [1, 2]
        """
        return iter(tuple(self._items.values()))

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


def _identity(c: object) -> tuple[str | None, str | None]:
    """(module, qualified name) that define component ``c``: a function or class itself,
    a component that wraps a function (a workload) by its ``function``, an instance (a
    mode, an I/O path) by its class; (None, None) for a built-in value."""
    c = getattr(c, "function", c)
    if not hasattr(c, "__qualname__"):
        c = type(c)
        if c.__module__ == "builtins":
            return None, None
    return getattr(c, "__module__", None), getattr(c, "__qualname__", None)


def _redefinition(before: object, after: object) -> bool:
    """Whether ``after`` is a new definition of the same thing as ``before`` (the same
    qualified name in the same module: a notebook cell run again), which replaces it."""
    return _identity(before)[1] is not None and _identity(before) == _identity(after) \
        and before is not after


def _expected(names: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``: the choices as pydantic words a ``Literal``'s."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class _Choice:
    """pydantic metadata: a registered name of ``registry``, asked when validating and
    when making the JSON schema (not when the model is made)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __get_pydantic_core_schema__(self, source: object, handler: object) -> Any:
        from pydantic_core import PydanticCustomError, core_schema

        registry = self.registry

        def check(value: object) -> str:
            if isinstance(value, str) and value in registry:
                return value
            raise PydanticCustomError(
                "literal_error",
                "Input should be {expected}",
                {"expected": _expected(registry.names())},
            )

        return core_schema.no_info_plain_validator_function(check)

    def __get_pydantic_json_schema__(self, schema: object, handler: object) -> dict:
        return {"enum": list(self.registry.names()), "type": "string"}


def choice(registry: Registry) -> Any:
    """A pydantic field type: one of the names registered in ``registry``.

    Validation asks the registry at that moment and refuses another value as a
    ``Literal`` of the names would (``Input should be 'a' or 'b'``); the JSON schema
    lists the names registered when it is made. A component registered after the model
    was defined is thus accepted and shown without rebuilding the model.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> pets = Registry("pet")
    >>> _ = pets.register("cat", object())
    >>> class Home(BaseModel):
    ...     pet: choice(pets) = "cat"
    >>> _ = pets.register("dog", object())
    >>> Home(pet="dog").pet, Home.model_json_schema()["properties"]["pet"]["enum"]
    ('dog', ['cat', 'dog'])
    >>> Home(pet="eel")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Home
    pet
      Input should be 'cat' or 'dog' [type=literal_error, input_value='eel', input_type=str]
    """
    return Annotated[str, _Choice(registry)]
