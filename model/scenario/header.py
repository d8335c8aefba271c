"""A scenario file's comment header: the question it asks, kept with the scenario.

The shipped scenarios open with a block of comments (what the scenario asks, what to
look at, why these parameters). :func:`~model.scenario.parse_scenario` keeps that block
with the scenario it returns (:attr:`Scenario.header <model.scenario.Scenario.header>`),
:func:`~model.scenario.with_overrides` carries it to the variant, and a results
directory's ``scenario.resolved.yaml`` opens with it again as comments, so the question
travels with the results. It is not part of the scenario's identity: two scenarios
that differ only in their comments are equal and hash alike.

Examples
--------
>>> comment_header("# why: a question\\n#\\n#   pvsim run x.yaml\\nname: x\\n# not this")
'why: a question\\n\\n  pvsim run x.yaml'
>>> print(as_comments("why: a question\\n\\n  pvsim run x.yaml"), end="")
# why: a question
#
#   pvsim run x.yaml
>>> comment_header("name: x\\n# a comment after the first key") is None
True
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_comments", "comment_header", "header_of", "set_header"]

#: Where a scenario keeps its header: an instance attribute that is not a field, so
#: neither equality, ``model_dump`` nor the scenario's hash see it.
_ATTR = "_pvsim_header"


def comment_header(text: str | bytes) -> str | None:
    """The leading comment block of scenario YAML ``text``: every line up to the first
    that is neither a comment nor blank, without the ``#`` and the one space after it;
    None if the text does not open with a comment.

    Parameters
    ----------
    text : str or bytes
        The scenario file's text (bytes are read as UTF-8; undecodable bytes replaced).

    Returns
    -------
    str or None
        The block, its lines joined with ``\\n``, leading and trailing blank lines
        dropped.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    lines = []
    for line in text.removeprefix("\ufeff").splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            break
        body = s[1:]
        lines.append(body[1:] if body.startswith(" ") else body)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(line.rstrip() for line in lines) or None


def as_comments(header: str | None) -> str:
    """``header`` as YAML comment lines (``# `` before each, a bare ``#`` for a blank
    line), ending with a newline; the empty string for None."""
    if not header:
        return ""
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())


def header_of(scenario: Any) -> str | None:
    """The comment header recorded with ``scenario`` (None if it has none)."""
    return scenario.__dict__.get(_ATTR)


def set_header(scenario: Any, header: str | None) -> Any:
    """Record ``header`` with ``scenario`` (in place) and return it."""
    if header:
        object.__setattr__(scenario, _ATTR, header)
    return scenario
