"""The I/O side of the machine: shared devices (:mod:`.devices`) under arbitration
policies (:mod:`.arbitration`), the I/O paths as strategy classes (:mod:`.paths`),
shared rings (:mod:`.ring`), requests and their stage times (:mod:`.requests`), the
I/O system that ties them to guests and the driver domain (:mod:`.system`, with the
backend's inbox in :mod:`.inbox`), and the I/O workloads (:mod:`.workloads`).

Device kinds, arbitration policies and I/O paths are registries
(:data:`DEVICE_KINDS`, :data:`POLICIES`, :data:`PATHS`): a new one is one class and one
registration, and scenarios can name it at once.

Examples
--------
>>> from model.io import DEVICE_KINDS, PATHS, POLICIES
>>> DEVICE_KINDS.names(), POLICIES.names()[:2]
(('hdd', 'ssd', 'nvme', 'nic'), ('fifo', 'round_robin'))
>>> PATHS["pv"].via_driver_domain, PATHS["direct"].via_driver_domain
(True, False)
"""

from .arbitration import POLICIES, PerGuest, Policy, make_policy
from .devices import DEVICE_KINDS, Device, ServiceModel
from .inbox import BackendInbox, Work
from .paths import PATHS, IOPath
from .requests import STAGES, IORequest, RequestLog
from .ring import Ring

__all__ = [
    "DEVICE_KINDS",
    "PATHS",
    "POLICIES",
    "STAGES",
    "BackendInbox",
    "Device",
    "IOPath",
    "IORequest",
    "PerGuest",
    "Policy",
    "RequestLog",
    "Ring",
    "ServiceModel",
    "Work",
    "make_policy",
]
