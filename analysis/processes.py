"""Processes: whether one is alive, and pool workers that die with the process that
started them (issue 10, M7: a SIGKILLed sweep must not leave workers computing)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed parent not yet reaped
    by its own parent still answers ``kill(pid, 0)``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True  # no /proc: existence is all we know
    return fields[fields.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def die_with_parent(main_pid: int, poll_s: float = 0.2) -> None:
    """Initializer of a local pool worker: the worker exits as soon as the sweep's process
    (``main_pid``) or its own parent (the fork server) is gone, however they ended (a
    SIGKILL runs no cleanup, and a worker waiting for work would wait forever: it holds
    the write end of its own task queue).

    A daemon thread polls both every ``poll_s`` and ends the worker. The fork server stays
    up while its workers do (they hold its "alive" pipe), so the sweep's process is the
    one that matters; once the workers are gone the fork server and the resource tracker
    see end-of-file and exit. On Linux the kernel also kills the worker should the fork
    server die first (``PR_SET_PDEATHSIG``).
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent and alive(main_pid):
            time.sleep(poll_s)
        os._exit(1)  # orphaned: nobody will read this worker's results

    threading.Thread(target=watch, name="pvsim-watch-parent", daemon=True).start()
