"""pvsim's simulated machine: guests on an emulated CPU/MMU under a hypervisor.

The core machine is flat here (instruction streams, the CPU/MMU kernel, page tables,
modes, the guest kernel, vCPUs, the hypervisor: they share one packed-vector layout);
the I/O side is :mod:`model.io`, scenario files and the builder :mod:`model.scenario`,
the vCPU schedulers :mod:`model.sched`. The names a notebook needs most are importable
from here (loaded on first use, so ``import model`` stays cheap).

Examples
--------
>>> from model import Host, DomainConfig, MODES
>>> from model.workloads import spin
>>> host = Host("nehalem-2.93ghz-ept", pcpus=1)
>>> _ = host.add_guest(DomainConfig("a", "hvm"), spin())
>>> stats = host.run(seconds=0.001)
>>> MODES.names(), round(stats.busy_fraction(), 2)
(('native', 'pv', 'full', 'hvm'), 1.0)
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pvsim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

#: public name -> the module that defines it
_PUBLIC = {
    "Host": "model.host",
    "DomainConfig": "model.domain",
    "MODES": "model.modes",
    "resolve_mode": "model.modes",
    "load_profile": "model.hardware",
    "Registry": "model.registry",
    "workload": "model.workload_registry",
    "Param": "model.workload_registry",
    "run_bench": "model.microbench",
    "RunRecord": "model.record",
    "PATHS": "model.io",
    "DEVICE_KINDS": "model.io",
    "POLICIES": "model.io",
    "SCHEDULERS": "model.sched",
    "Scenario": "model.scenario",
    "ScenarioError": "model.scenario",
    "build_host": "model.scenario",
    "load_scenario": "model.scenario",
    "parse_scenario": "model.scenario",
    "PvsimError": "model.errors",
    "ConfigError": "model.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
