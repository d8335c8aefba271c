"""The I/O side of the machine: the I/O paths as strategy classes (:mod:`model.io.paths`)
and the driver domain's backend inbox (:mod:`model.io.inbox`).

Examples
--------
>>> from model.io import PATHS
>>> PATHS["pv"].via_driver_domain, PATHS["direct"].via_driver_domain
(True, False)
"""

from .inbox import BackendInbox, Work
from .paths import PATHS, IOPath

__all__ = ["PATHS", "BackendInbox", "IOPath", "Work"]
