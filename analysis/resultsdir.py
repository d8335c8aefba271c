"""The life of a results directory on disk: built aside, swapped in whole, marked.

A results directory (``pvsim run``, ``pvsim compare``, :meth:`Results.save
<analysis.results.Results.save>`) is never written in place. :func:`staged` builds it
in a fresh sibling directory ``.NAME.pvsim-tmp-PID-RANDOM`` (same parent, so the
final rename is atomic), writes the marker :data:`MARKER` last, and only then
swaps it in for ``NAME``: on Linux with one ``renameat2(RENAME_EXCHANGE)``, elsewhere
with two renames. Whatever happens (an exception, a full disk, a kill), ``NAME`` is
either the old complete directory or the new complete one, never a mixture; the
stray staging directory of a killed run is removed by the next run into the same
parent.

The marker ``.pvsim`` is a small JSON file: the kind (``run`` or ``compare``), the
pvsim version, a run id and the manifest of every file pvsim wrote there. pvsim
replaces an existing directory only if it is empty, or is a pvsim results directory
holding nothing but the files in its manifest (or, written before markers, nothing
but the files a run writes); anything else is refused unless ``force=True``, which
replaces the directory as a whole (the old one is removed only after the new one is
in place, so a failed run still leaves it intact).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     with staged(Path(d) / "out") as st:
...         write_atomically(st.path / "a.txt", "hello")
...     print(st.dest.name, read_marker(st.dest)["files"])
out ['a.txt']
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from model import __version__
from model.errors import PvsimError

from .processes import alive

__all__ = ["MARKER", "Staging", "check_replaceable", "default_dir", "mark", "new_run_id",
           "preflight", "read_marker", "record_files", "remove_stale_temps", "staged",
           "write_atomically"]

#: The file that makes a directory a pvsim results directory (written last).
MARKER = ".pvsim"
#: The longest name component (bytes) pvsim makes of a user-chosen name.
NAME_BYTES = 200

_UMASK = os.umask(0)  # read once, at import: setting it later would race with threads
os.umask(_UMASK)

_STAGING = re.compile(r"^\.(?P<stem>.+)\.pvsim-(?P<what>tmp|old)-(?P<pid>\d+)-[0-9a-z]{8}$")
_FILE_TEMP = re.compile(r"^\..+\.tmp-(?P<pid>\d+)-[^.]+\.tmp$")
#: Files a run wrote before directories had markers (with RUN_GRAPHS under plots/).
_LEGACY = {"summary.json", "scenario.resolved.yaml", "requests.parquet", "cpu.parquet",
           "timeseries.parquet", "schedule.parquet", "guests.parquet", "app_requests.parquet"}


def _short(name: str, limit: int = NAME_BYTES) -> str:
    """``name`` cut to at most ``limit`` UTF-8 bytes (at a character boundary)."""
    return name.encode()[:limit].decode(errors="ignore")


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a partial file: write a
    temporary file ``.NAME.tmp-PID-*.tmp`` beside it, then rename it over ``path``.

    On an error (a full disk, a read-only file system) ``path`` is unchanged and the
    ``OSError`` names ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_atomically(Path(d) / "x.txt", "hi")
    ...     print((Path(d) / "x.txt").read_text())
    hi
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{_short(path.name)}.tmp-"
                                   f"{os.getpid()}-", suffix=".tmp")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as an ordinary new file, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def remove_stale_temps(directory: Path, name: str | None = None) -> None:
    """Remove the temporary files :func:`write_atomically` left in ``directory`` when
    its process was killed (those of dead processes only; only for ``name`` if
    given)."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for e in entries:
        m = _FILE_TEMP.match(e)
        if m and (name is None or e.startswith(f".{_short(name)}.tmp-")) \
                and not alive(int(m["pid"])):
            Path(directory, e).unlink(missing_ok=True)


# --- the marker --------------------------------------------------------------------------
def _files(directory: Path) -> list[str]:
    """Every file under ``directory`` (relative, POSIX), but the marker."""
    out = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for f in files:
            rel = Path(root, f).relative_to(directory).as_posix()
            if rel != MARKER:
                out.append(rel)
    return sorted(out)


def mark(directory: Path, kind: str = "run", run_id: str | None = None) -> dict:
    """Write ``directory``'s marker: ``kind``, the pvsim version, ``run_id`` and the
    manifest of every file in it now. Returns the marker."""
    doc = {"pvsim": "results directory", "kind": kind, "pvsim_version": __version__,
           "run_id": run_id or new_run_id(), "files": _files(directory)}
    write_atomically(Path(directory) / MARKER, json.dumps(doc, indent=1) + "\n")
    return doc


class NotAResultsDirectory(PvsimError):
    """A path that is not a results directory pvsim wrote (missing, a file, or holding
    none of the files of a run, a compare, a sweep or a plan)."""


def results_kind(directory: str | Path) -> str:
    """Which kind of results directory ``directory`` is: ``"run"`` (summary.json),
    ``"compare"`` (its marker says so, or compare.csv), ``"plan"`` (sweep.parquet and
    plan.json) or ``"sweep"`` (sweep.parquet); the one rule ``pvsim report`` and
    ``pvsim diff`` use.

    Raises
    ------
    NotAResultsDirectory
        It is not a directory, or holds none of the files that make one of the four.
    """
    d = Path(directory)
    if not d.is_dir():
        what = "not a directory" if d.exists() else "no such directory"
        raise NotAResultsDirectory(f"{d}: {what}; give a results directory written by pvsim "
                                   "run, compare, sweep or plan")
    if (d / "summary.json").is_file():
        return "run"
    if (read_marker(d) or {}).get("kind") == "compare" or (d / "compare.csv").is_file():
        return "compare"
    if (d / "sweep.parquet").is_file():
        return "plan" if (d / "plan.json").is_file() else "sweep"
    raise NotAResultsDirectory(
        f"{d}: not a pvsim results directory: expected a run (summary.json), a compare "
        "(compare.csv and a run per mode), a sweep (sweep.parquet) or a plan (sweep.parquet "
        "and plan.json); an interrupted run leaves none")


def read_marker(directory: Path) -> dict | None:
    """``directory``'s marker, or None if it has none or it is unreadable."""
    try:
        doc = json.loads((Path(directory) / MARKER).read_bytes().decode())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list) \
            or not all(isinstance(f, str) for f in doc["files"]):
        return None
    return doc


def record_files(directory: Path, added: Sequence[Path] = (),
                 removed: Sequence[Path] = ()) -> None:
    """Add ``added`` to (and drop ``removed`` from) the manifest of ``directory``, if it
    has a marker (so a redraw of its plots keeps it a pvsim results directory)."""
    directory = Path(directory)
    doc = read_marker(directory)
    if doc is None:
        return
    rel = {Path(p).relative_to(directory).as_posix() for p in added}
    gone = {Path(p).relative_to(directory).as_posix() for p in removed}
    doc["files"] = sorted((set(doc["files"]) | rel) - gone)
    write_atomically(directory / MARKER, json.dumps(doc, indent=1) + "\n")


def new_run_id() -> str:
    """A run id: the time, then random hex (``20250101-120000-3f9a1c2b``)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"


# --- may pvsim replace it? ---------------------------------------------------------------
def _foreign(directory: Path) -> list[str] | None:
    """The files in ``directory`` that pvsim did not write there, or None if it is not
    a pvsim results directory at all."""
    doc = read_marker(directory)
    if doc is not None:
        known = set(doc["files"])
    else:  # written before markers: a summary.json of pvsim's, the files of a run
        try:
            summary = json.loads((directory / "summary.json").read_bytes().decode())
        except (OSError, ValueError):
            return None
        if not isinstance(summary, dict) or "pvsim_version" not in summary:
            return None
        from .plots.save import RUN_GRAPHS
        known = _LEGACY | {f"plots/{g}.png" for g in RUN_GRAPHS}
    nested: dict[str, set[str]] = {}  # a marked subdirectory (a compare's run) -> its files

    def listed(f: str) -> bool:
        parts = f.split("/")
        for i in range(1, len(parts)):
            sub = "/".join(parts[:i])
            if sub not in nested:
                nested[sub] = set((read_marker(directory / sub) or {"files": ()})["files"])
            if "/".join(parts[i:]) in nested[sub]:
                return True
        return False
    return [f for f in _files(directory)
            if f not in known and not _FILE_TEMP.match(Path(f).name) and not listed(f)]


def check_replaceable(dest: Path, force: bool = False) -> None:
    """Raise :class:`PvsimError` unless pvsim may put a results directory at ``dest``:
    it does not exist, is an empty directory, or is a pvsim results directory holding
    only files pvsim wrote (a marked subdirectory by its own manifest); or ``force``.
    Never a file, a symbolic link, the working directory, the home directory or one of
    their parents.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "notes.txt").write_text("mine")
    ...     check_replaceable(Path(d))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    model.errors.PvsimError: ...: not a pvsim results directory and not empty ...
    """
    dest = Path(dest)
    if dest.is_symlink():
        raise PvsimError(f"{dest}: is a symbolic link; give the directory itself")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise PvsimError(f"{dest}: exists and is not a directory; choose another output "
                         "directory")
    real = dest.resolve()
    try:
        home = [Path.home()]
    except RuntimeError:  # no home directory
        home = []
    for keep in (Path.cwd(), *home, Path("/")):
        if real == keep.resolve() or real in keep.resolve().parents:
            raise PvsimError(f"{dest}: will not replace the working directory, the home "
                             "directory or one of their parents (even with --force); give "
                             "another output directory")
    if force:
        return
    try:
        empty = next(os.scandir(dest), None) is None
    except OSError as e:
        raise PvsimError(f"{dest}: cannot read: {e.strerror}") from None
    if empty:
        return
    foreign = _foreign(dest)
    if foreign is None:
        raise PvsimError(f"{dest}: not a pvsim results directory and not empty (it has no "
                         f"{MARKER} marker); choose a new or empty directory, or use --force "
                         "to replace it and everything in it")
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise PvsimError(f"{dest}: has files pvsim did not write ({shown}); move them out, "
                         "or use --force to replace the directory and everything in it")


def preflight(dest: str | Path, force: bool = False, unique: bool = False) -> Path:
    """Check before a run that its results can go to ``dest``: :func:`check_replaceable`
    (unless ``unique``, as for :func:`staged`), and its parent exists (it is created) and
    is writable. Raises :class:`PvsimError`.

    Examples
    --------
    >>> preflight("/dev/null/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    model.errors.PvsimError: /dev/null/x: cannot create the results directory (...)
    """
    dest = Path(dest)
    if not unique:
        check_replaceable(dest, force)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PvsimError(f"{dest}: cannot create the results directory ({e.filename}: "
                         f"{e.strerror or e})") from None
    if not os.access(dest.parent, os.W_OK | os.X_OK):
        raise PvsimError(f"{dest}: cannot create the results directory ({dest.parent}: "
                         f"{os.strerror(errno.EACCES)})")
    return dest


# --- building aside and swapping in ------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the directories ``a`` and ``b`` atomically; False if this system or file
    system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _sibling(dest: Path, what: str) -> Path:
    return dest.parent / (f".{_short(dest.name)}.pvsim-{what}-{os.getpid()}-"
                          f"{secrets.token_hex(4)}")


def _clean_parent(dest: Path) -> None:
    """Remove the staging directories of dead pvsim processes beside ``dest``; if a
    swap by two renames was killed half-way (``dest`` missing, its old copy aside),
    put the old copy back."""
    try:
        entries = os.listdir(dest.parent)
    except OSError:
        return
    for e in sorted(entries):
        m = _STAGING.match(e)
        if not m or alive(int(m["pid"])):
            continue
        p = dest.parent / e
        if m["what"] == "old" and m["stem"] == _short(dest.name) and not dest.exists():
            try:
                os.rename(p, dest)
                continue
            except OSError:
                pass
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def default_dir(parent: str | Path, name: str, suffix: str = "") -> Path:
    """The default output directory ``PARENT/NAME-YYYYmmdd-HHMMSS[SUFFIX]`` with
    ``NAME`` cut so the component fits in a file name; :func:`staged` with
    ``unique=True`` adds ``-2``, ``-3``, ... if it is taken when the run ends.

    Examples
    --------
    >>> len(default_dir("results", "a" * 300).name.encode()) <= 255
    True
    """
    return Path(parent) / f"{_short(name)}-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"


@dataclass
class Staging:
    """A results directory being built: write into :attr:`path`; after the ``with``
    block of :func:`staged`, :attr:`dest` is where it is."""

    path: Path
    dest: Path
    kind: str
    run_id: str = field(default_factory=new_run_id)


def _taken(e: OSError) -> bool:
    return e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)


@contextmanager
def staged(dest: str | Path, *, force: bool = False, kind: str = "run",
           unique: bool = False) -> Iterator[Staging]:
    """Build a results directory aside and put it at ``dest`` when the block ends.

    Parameters
    ----------
    dest : str or Path
        Where the directory goes. It must pass :func:`check_replaceable` (checked on
        entry and again at the swap).
    force : bool, default False
        Replace ``dest`` as a whole even if it is not a pvsim results directory.
    kind : str, default "run"
        Recorded in the marker (``run`` or ``compare``).
    unique : bool, default False
        Never replace: if ``dest`` is taken when the block ends, use ``dest-2``,
        ``dest-3``, ... (default output directories of concurrent runs).

    Yields
    ------
    Staging
        Write into its ``path``. If the block raises, the staging directory is removed
        and ``dest`` is untouched; an ``OSError`` becomes a :class:`PvsimError` saying so.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for _ in range(2):
    ...         with staged(Path(d) / "r", unique=True) as st:
    ...             write_atomically(st.path / "x", "1")
    ...         print(st.dest.name)
    r
    r-2
    """
    dest = Path(dest)
    if not unique:
        check_replaceable(dest, force)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _clean_parent(dest)
        tmp = _sibling(dest, "tmp")
        tmp.mkdir()
    except OSError as e:
        raise PvsimError(f"{dest}: cannot create the results directory ({e.filename}: "
                         f"{e.strerror or e})") from None
    st = Staging(tmp, dest, kind)
    try:
        yield st
        mark(tmp, kind, st.run_id)
        st.dest = _claim(tmp, dest) if unique else _replace(tmp, dest, force)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        what = e.filename
        where = f" ({Path(what).name})" if what and str(tmp) in str(what) else (
            f" ({what})" if what else "")
        then = "its previous contents are untouched" if dest.exists() else "nothing written"
        raise PvsimError(f"{dest}: cannot write the results: {e.strerror or e}{where}; "
                         f"{then}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _claim(tmp: Path, dest: Path) -> Path:
    for k in range(1, 10_000):
        cand = dest if k == 1 else dest.with_name(f"{dest.name}-{k}")
        try:
            os.rename(tmp, cand)  # fails if cand is taken (anything but an empty directory)
            return cand
        except OSError as e:
            if not _taken(e):
                raise
    raise PvsimError(f"{dest}: 9999 directories of that name exist; choose one with -o")


def _replace(tmp: Path, dest: Path, force: bool) -> Path:
    check_replaceable(dest, force)  # again: the run may have taken a while
    try:
        os.rename(tmp, dest)  # dest missing or an empty directory
        return dest
    except OSError as e:
        if not _taken(e):
            raise
    if _exchange(tmp, dest):
        old = tmp  # now holds the previous directory
    else:
        old = _sibling(dest, "old")
        os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except BaseException:
            os.rename(old, dest)
            raise
    shutil.rmtree(old, ignore_errors=True)
    return dest
