"""pvsim's simulated machine: guests on an emulated CPU/MMU under a hypervisor.

Start with :class:`model.host.Host` and :class:`model.domain.DomainConfig`, or run
the OS microbenchmarks with :func:`model.microbench.run_bench`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pvsim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
