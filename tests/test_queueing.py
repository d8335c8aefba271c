"""Queueing theory through the whole stack: ``pvsim run`` on scenario files whose
requests' response time is almost all one device's queue (tests/data/queueing/).

A native guest serves Poisson arrivals; each request reads 4 KiB from a device whose
service time is exponential (or deterministic) with a mean of 1 ms per channel, and does
a few microseconds of CPU and network work besides (0.2% of the response time). Its mean
response time must match the closed form: M/M/1 ``1 / (mu - lambda)``, M/M/c with Erlang's
C formula, M/D/1 with the Pollaczek-Khinchine mean ``S + lambda S^2 / (2 (1 - rho))``.

How many requests: the mean of a sample of M/M/1 sojourn times is strongly correlated
(at rho = 0.8 its relative standard deviation is about 3.5% with 64,000 requests). The
slow tests run 60,000 requests at rho = 0.5 (standard deviation 1.2%) and 400,000 at rho
= 0.8 (1.4%), so 5% is more than three standard deviations; the default suite runs
shorter versions at rho = 0.5 against a 10% bound (four standard deviations).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from analysis.cli import main

DATA = Path(__file__).parent / "data" / "queueing"


def erlang_c(c: int, a: float) -> float:
    """The probability that an arrival waits in an M/M/c queue with offered load ``a``
    (erlangs).

    Examples
    --------
    >>> round(erlang_c(1, 0.5), 3), round(erlang_c(4, 2.0), 4)
    (0.5, 0.1739)
    """
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def _mean_ms(tmp_path: Path, scenario: str, rate: float, seconds: float, *extra: str) -> dict:
    out = tmp_path / "r"
    assert main(["run", str(DATA / scenario), "-o", str(out), "--force",
                 "--set", f"guests.srv.workload.params.arrivals.rate_per_s={rate}",
                 "--set", f"duration={seconds}s", *extra]) == 0
    app = json.loads((out / "summary.json").read_text())["guests"]["srv"]["app"]
    assert app["dropped"] == 0
    return app


def _check(app: dict, expected_ms: float, bound: float) -> None:
    got = app["latency"]["mean_ms"]
    assert abs(got / expected_ms - 1) < bound, (got, expected_ms, app["latency"]["n"])
    # the device's queue is the response time: the other parts are tiny
    assert app["parts_ms"]["disk"] / got > 0.99


@pytest.mark.parametrize("rho", [0.5])
def test_mm1_mean_response_time(tmp_path, rho):
    app = _mean_ms(tmp_path, "mm1.yaml", 1000 * rho, 20.0)  # about 10,000 requests
    _check(app, 1 / (1000 - 1000 * rho) * 1e3, 0.10)


@pytest.mark.slow
@pytest.mark.parametrize(("rho", "seconds"), [(0.5, 120.0), (0.8, 500.0)])
def test_mm1_mean_response_time_tight(tmp_path, rho, seconds):
    app = _mean_ms(tmp_path, "mm1.yaml", 1000 * rho, seconds)
    _check(app, 1 / (1000 - 1000 * rho) * 1e3, 0.05)


@pytest.mark.parametrize(("c", "rho", "seconds", "bound"), [
    (4, 0.5, 5.0, 0.10),
    pytest.param(4, 0.5, 30.0, 0.05, marks=pytest.mark.slow),
    pytest.param(4, 0.8, 100.0, 0.05, marks=pytest.mark.slow)])
def test_mmc_mean_response_time(tmp_path, c, rho, seconds, bound):
    """c channels, each serving in 1 ms on average (the bandwidth is split per channel,
    the latency is not)."""
    mu, lam = 1000.0, c * 1000.0 * rho
    app = _mean_ms(tmp_path, "mm1.yaml", lam, seconds, "--set", f"host.devices.disk0.channels={c}")
    expected = (erlang_c(c, lam / mu) / (c * mu - lam) + 1 / mu) * 1e3
    _check(app, expected, bound)


@pytest.mark.parametrize(("rho", "seconds", "bound"), [
    (0.5, 10.0, 0.05),
    pytest.param(0.8, 60.0, 0.05, marks=pytest.mark.slow)])
def test_md1_mean_response_time_is_pollaczek_khinchine(tmp_path, rho, seconds, bound):
    lam, s = 1000.0 * rho, 1e-3
    app = _mean_ms(tmp_path, "mm1.yaml", lam, seconds,
                   "--set", "host.devices.disk0.distribution=deterministic")
    _check(app, (s + lam * s * s / (2 * (1 - rho))) * 1e3, bound)
