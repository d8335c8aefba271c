"""The base of every scenario model: unknown keys are errors, numbers are numbers.

Examples
--------
>>> from pydantic import Field
>>> class Box(Strict):
...     size: int = Field(1, ge=1)
>>> Box.model_validate({"size": 2}).size
2
>>> try:
...     Box.model_validate({"size": "2"})
... except ScenarioError as e:
...     print(e)
Box.model_validate: size: Input should be a valid integer (got '2')
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from .errors import NAME_PATTERN, ScenarioError, explain

#: set while a validation explains its own errors (pydantic calls Scenario.__init__ in it)
RAW: ContextVar[bool] = ContextVar("raw_validation", default=False)


class Strict(BaseModel):
    """Unknown keys are errors; numbers are numbers (``8``, not ``"8"`` or ``true``), and
    finite. Made with ``model_validate`` or ``model_copy`` with an update, a model is
    validated like a file and a problem raises :class:`ScenarioError`."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              use_attribute_docstrings=True, strict=True,
                              allow_inf_nan=False)

    @classmethod
    def model_validate(cls, obj: object, **kwargs: object):  # type: ignore[override]
        token = RAW.set(True)  # Scenario.__init__, which pydantic calls, explains nothing
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as e:
            raise ScenarioError(explain(e, f"{cls.__name__}.model_validate", {}, cls)) \
                from None
        finally:
            RAW.reset(token)

    def model_copy(self, *, update: Mapping[str, object] | None = None,
                   deep: bool = False):  # type: ignore[override]
        """A copy; with ``update``, validated again (pydantic's own does not validate)."""
        copy = super().model_copy(update=update, deep=deep)
        if not update:
            return copy
        data = copy.model_dump(mode="json", warnings=False)
        return type(self).model_validate(data)


#: Guest and device names: they become file names, table values and graph labels.
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
