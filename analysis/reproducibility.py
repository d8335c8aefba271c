"""The reproducibility block of ``summary.json``: what made a run, for whoever re-runs it.

:func:`reproducibility` says which pvsim (its version, and the git commit when pvsim runs
from a git checkout), which Python and libraries (numpy, numba, simpy, pandas, pydantic),
which platform, which command line and which fidelity level of the engine produced a run.
It differs between machines and installations, never between two runs of one scenario
and seed on the same one, and, like
the ``engine`` block, it is left out when runs are compared for equality
(:data:`MACHINE_BLOCKS`).

The command line is the ``pvsim`` command's arguments when the run was started by it
(:func:`invoked_as`, which :func:`analysis.cli.main` enters), and None when it was started
from the Python API. The git commit is read from the files of ``.git`` (HEAD, the refs,
``packed-refs``; a worktree's ``gitdir`` file), without running git: it is the checkout's
HEAD, and says nothing of changes not committed. It is None for an installed pvsim.

Examples
--------
>>> r = reproducibility()
>>> r.python == platform.python_version(), r.command is None  # not from the command line
(True, True)
>>> with invoked_as(["pvsim", "run", "quickstart.yaml"]):
...     reproducibility().command
['pvsim', 'run', 'quickstart.yaml']
"""

from __future__ import annotations

import functools
import platform
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from model import __version__

#: The libraries whose versions a run records (import names, also their distributions').
LIBRARIES = ("numpy", "numba", "simpy", "pandas", "pydantic")

#: Blocks of ``summary.json`` that describe the machine and installation, not the run:
#: two runs of one scenario and seed differ only in these.
MACHINE_BLOCKS = ("engine", "reproducibility")

#: The directory holding pvsim's packages (a git checkout's top, or site-packages).
ROOT = Path(__file__).resolve().parents[1]

_COMMAND: ContextVar[tuple[str, ...] | None] = ContextVar("pvsim_command", default=None)
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


@dataclass
class Reproducibility:
    """What produced a run (see the module docstring); a library's version is None when
    it is not installed."""

    pvsim_version: str
    git_commit: str | None
    python: str
    numpy: str | None
    numba: str | None
    simpy: str | None
    pandas: str | None
    pydantic: str | None
    platform: str
    command: list[str] | None
    fidelity: str | None = None  # None in a summary.json written before it was recorded

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict) -> Reproducibility:
        return cls(**d)


@contextmanager
def invoked_as(argv: Sequence[str]) -> Iterator[None]:
    """Within the block, runs record ``argv`` as their command line.

    Examples
    --------
    >>> with invoked_as(["pvsim", "--help"]):
    ...     reproducibility().command
    ['pvsim', '--help']
    """
    token = _COMMAND.set(tuple(argv))
    try:
        yield
    finally:
        _COMMAND.reset(token)


def reproducibility(fidelity: str | None = None) -> Reproducibility:
    """The reproducibility block of a run made now, in this process.

    Parameters
    ----------
    fidelity : str, optional
        The fidelity level of the engine that made the run
        (:attr:`model.record.RunRecord.fidelity`).

    Returns
    -------
    Reproducibility

    Examples
    --------
    >>> r = reproducibility()
    >>> r.pvsim_version == __version__ and r.numpy is not None
    True
    """
    command = _COMMAND.get()
    return Reproducibility(
        pvsim_version=__version__,
        git_commit=git_commit(ROOT),
        python=platform.python_version(),
        **_library_versions(),
        platform=_platform(),
        command=None if command is None else list(command),
        fidelity=fidelity,
    )


def git_commit(root: Path) -> str | None:
    """The commit checked out in the git work tree at ``root`` (its HEAD), read from the
    files of its ``.git``; None if ``root`` is not the top of a git work tree, or HEAD
    names a branch with no commit yet.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     print(git_commit(Path(d)))
    None
    """
    dot = root / ".git"
    try:
        if dot.is_file():  # a linked worktree (or a submodule): "gitdir: PATH"
            text = dot.read_text().strip()
            if not text.startswith("gitdir:"):
                return None
            gitdir = root / text[len("gitdir:"):].strip()
        elif dot.is_dir():
            gitdir = dot
        else:
            return None
        common = gitdir  # where the branches are (a worktree's are in the main .git)
        if (gitdir / "commondir").is_file():
            common = gitdir / (gitdir / "commondir").read_text().strip()
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):  # detached
            return head if _SHA.fullmatch(head) else None
        ref = head[len("ref:"):].strip()
        for base in (gitdir, common):
            if (base / ref).is_file():
                sha = (base / ref).read_text().strip()
                return sha if _SHA.fullmatch(sha) else None
        if (common / "packed-refs").is_file():
            for line in (common / "packed-refs").read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name == ref and _SHA.fullmatch(sha):
                    return sha
    except (OSError, UnicodeDecodeError):
        return None
    return None


@functools.cache
def _library_versions() -> dict[str, str | None]:
    """Each library's version: the imported module's own when it is loaded (what ran),
    otherwise its installed distribution's."""
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        loaded = getattr(sys.modules.get(name), "__version__", None)
        try:
            out[name] = str(loaded) if loaded is not None else version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


@functools.cache
def _platform() -> str:
    return f"{platform.platform()} ({platform.python_implementation()})"
