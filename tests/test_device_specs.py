"""Devices as the user's own (issue 12): a scenario describes its hardware, each device
kind with its own keys, units and defaults, and any device with a service-time
distribution; a NIC has segmentation offload and interrupt coalescing.

Each kind is a model of its own (``KIND_device`` in ``pvsim schema``): a key of another
kind is refused, naming the key, the kind and the valid keys.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import numpy as np
import pytest
from pydantic import Field

from analysis.run import simulate
from model.clock import Environment
from model.errors import ConfigError
from model.io.devices import (
    DEVICE_KINDS,
    TSO_MAX_BYTES,
    Device,
    HddService,
    NicService,
    ServiceDistribution,
    ServiceModel,
    SsdService,
)
from model.io.requests import STAGES, IORequest
from model.scenario import (
    ScenarioError,
    build_host,
    parse_scenario,
    scenario_schema,
    with_overrides,
)
from model.scenario.device_specs import kind_model

GUEST = "guests: [{name: a, workload: {profile: spin}}]\n"


def device(spec: str, source: str = "d.yaml"):
    """The device ``d`` of a scenario whose host has just it (``spec`` is its YAML)."""
    return parse_scenario(f"name: t\nhost:\n  devices:\n    d: {spec}\n{GUEST}",
                          source).host.devices["d"]


def own(d) -> dict:
    """The parameters of a device's kind, as the scenario resolved them."""
    return {k: getattr(d, k) for k in DEVICE_KINDS[d.kind].params}


# --- each kind's keys and defaults --------------------------------------------------------
def test_each_kind_has_its_own_keys_and_defaults():
    assert own(device("{kind: ssd}")) == {
        "channels": 8, "read_us": 80.0, "write_us": 30.0, "bandwidth_mb_s": 500.0}
    assert own(device("{kind: nvme}")) == {
        "channels": 32, "read_us": 20.0, "write_us": 15.0, "bandwidth_mb_s": 3000.0}
    assert own(device("{kind: hdd}")) == {
        "rpm": 7200.0, "track_ms": 0.8, "full_stroke_ms": 16.0, "transfer_mb_s": 150.0,
        "capacity_gb": 1000.0}
    assert own(device("{kind: nic}")) == {
        "rate_gbit_s": 1.0, "per_packet_us": 1.0, "mtu": 1500, "tso": True,
        "coalesce_us": 0.0}


def test_every_device_has_arbitration_distribution_and_the_policies_fields():
    for kind in DEVICE_KINDS:
        fields = list(kind_model(kind).model_fields)
        assert fields[:2] == ["kind", "arbitration"]
        assert fields[-4:] == ["distribution", "cv", "caps", "priorities"]
    assert list(kind_model("ssd").model_fields)[2:6] == [
        "channels", "read_us", "write_us", "bandwidth_mb_s"]


def test_nvme_and_ssd_share_keys_not_defaults():
    ssd, nvme = device("{kind: ssd}"), device("{kind: nvme}")
    assert own(ssd).keys() == own(nvme).keys() and own(ssd) != own(nvme)
    read = IORequest(0, guest=1, device=0, size=4096, write=False, issued=0)
    built = {k: DEVICE_KINDS[k].from_spec(d) for k, d in (("ssd", ssd), ("nvme", nvme))}
    assert built["ssd"].channels == 8 and built["nvme"].channels == 32
    assert built["ssd"].seconds(read, None) == pytest.approx(80e-6 + 4096 / (500e6 / 8))
    assert built["nvme"].seconds(read, None) == pytest.approx(20e-6 + 4096 / (3000e6 / 32))


def test_a_scenario_sets_its_own_hardware():
    d = device("{kind: ssd, channels: 4, read_us: 100, write_us: 50, bandwidth_mb_s: 400}")
    ssd = DEVICE_KINDS["ssd"].from_spec(d)
    write = IORequest(0, guest=1, device=0, size=1_000_000, write=True, issued=0)
    assert ssd.channels == 4 and ssd.seconds(write, None) == pytest.approx(50e-6 + 0.01)
    hdd = DEVICE_KINDS["hdd"].from_spec(device("{kind: hdd, rpm: 15000, capacity_gb: 300}"))
    assert (hdd.rpm, hdd.capacity) == (15000.0, 300e9)


def test_constructor_defaults_are_the_scenario_defaults():
    """A service model built in Python is the one a scenario gets by default."""
    for name, kind in DEVICE_KINDS.items():
        signature = inspect.signature(kind.__init__).parameters
        for key, (_, info) in kind.params.items():
            assert signature[key].default == info.default, (name, key)


def test_the_schema_shows_each_kind_with_its_defaults_and_units():
    defs = scenario_schema()["$defs"]
    assert defs["ssd_device"]["properties"]["channels"]["default"] == 8
    assert defs["nvme_device"]["properties"]["channels"]["default"] == 32
    assert "mtu" not in defs["ssd_device"]["properties"]
    assert "channels" not in defs["nic_device"]["properties"]
    assert defs["hdd_device"]["properties"]["rpm"]["description"].startswith(
        "spindle speed, revolutions per minute")
    assert "microseconds" in defs["nic_device"]["properties"]["coalesce_us"]["description"]
    for name, kind in DEVICE_KINDS.items():
        for key, (_, info) in kind.params.items():
            assert defs[f"{name}_device"]["properties"][key]["description"] == info.description


# --- refused, with the file position, the key, the kind and what is valid ----------------
def test_a_key_of_another_kind_is_refused_with_the_valid_keys():
    with pytest.raises(ScenarioError) as e:
        device("{kind: ssd, mtu: 9000}")
    assert str(e.value) == (
        "d.yaml:4:25: host.devices.d.mtu: unknown key 'mtu' for kind ssd; valid keys: kind, "
        "arbitration, channels, read_us, write_us, bandwidth_mb_s, distribution, cv, caps, "
        "priorities ('mtu' is a key of kind nic)")


@pytest.mark.parametrize("spec, message", [
    ("{kind: floppy}", "host.devices.d.kind: unknown device kind 'floppy'; valid choices: "
     "hdd, ssd, nvme, nic"),
    ("{arbitration: fifo}", "host.devices.d: a device needs a kind; valid choices: hdd, "
     "ssd, nvme, nic"),
    ("{kind: ssd, channels: 0}", "host.devices.d.channels: 0 is out of range; valid: 1 to "
     "4,096 (requests served at once)"),
    ("{kind: nvme, read_us: -1}", "host.devices.d.read_us: -1 is out of range; valid: 0 to "
     "1,000,000 (read latency, microseconds)"),
    ("{kind: ssd, bandwidth_mb_s: 0}", "host.devices.d.bandwidth_mb_s: 0 is out of range; "
     "valid: more than 0 and at most 1,000,000 (bandwidth of all channels together, MB/s)"),
    ("{kind: hdd, rpm: 0}", "host.devices.d.rpm: 0 is out of range; valid: more than 0"),
    ("{kind: nic, mtu: 100}", "host.devices.d.mtu: 100 is out of range; valid: 576 to 9,000 "
     "(MTU, bytes)"),
    ("{kind: nic, tso: 1}", "host.devices.d.tso: Input should be a valid boolean (got 1)"),
    ("{kind: hdd, channels: 2}", "unknown key 'channels' for kind hdd; valid keys: kind, "
     "arbitration, rpm,"),
    ("{kind: ssd, distribution: gamma}", "host.devices.d.distribution: Input should be "
     "'modeled', 'deterministic', 'exponential' or 'lognormal' (got 'gamma')"),
    ("{kind: ssd, distribution: exponential, cv: 0.5}", "host.devices.d.cv: only used with "
     "distribution lognormal (this device has exponential)"),
    ("{kind: ssd, cv: 0.5}", "host.devices.d.cv: only used with distribution lognormal "
     "(this device has modeled)"),
    ("{kind: ssd, distribution: lognormal}", "host.devices.d.cv: distribution lognormal "
     "needs cv (the coefficient of variation, more than 0)"),
    ("{kind: ssd, distribution: lognormal, cv: 0}", "host.devices.d.cv: 0 is out of range; "
     "valid: more than 0 and at most 100 (coefficient of variation"),
])
def test_a_bad_device_is_refused_at_its_line(spec, message):
    with pytest.raises(ScenarioError) as e:
        device(spec)
    assert str(e.value).startswith("d.yaml:4:")
    assert message in str(e.value)


# --- another kind by override: its own defaults ---------------------------------------------
def test_changing_a_devices_kind_by_override_gives_the_new_kinds_defaults():
    text = f"name: t\nhost: {{devices: {{d: {{kind: ssd, read_us: 50}}}}}}\n{GUEST}"
    s = parse_scenario(text, "t.yaml", ["host.devices.d.kind=nvme"])
    assert own(s.host.devices["d"]) == {
        "channels": 32, "read_us": 50.0, "write_us": 15.0, "bandwidth_mb_s": 3000.0}
    # a validated scenario lists every default: the ssd's 8 channels are not kept either
    ssd = parse_scenario(text, "t.yaml")
    assert with_overrides(ssd, ["host.devices.d.kind=nvme"]).host.devices["d"].channels == 32
    assert with_overrides(ssd, ["host.devices.d.kind=nvme", "host.devices.d.channels=8"]
                          ).host.devices["d"].channels == 8
    # a value the user gave that the new kind has no key for is refused, not dropped
    with pytest.raises(ScenarioError, match="unknown key 'read_us' for kind hdd"):
        with_overrides(ssd, ["host.devices.d.kind=hdd"])
    default = parse_scenario(text.replace(", read_us: 50", ""), "t.yaml")
    assert with_overrides(default, ["host.devices.d.kind=hdd"]).host.devices["d"].rpm == 7200


# --- service-time distributions -------------------------------------------------------------
def draws(distribution: str, n: int, cv: float | None = None, service=None) -> np.ndarray:
    """``n`` service times of 4 KiB reads, drawn as a device draws them."""
    draw = ServiceDistribution(distribution, cv).sampler(service or SsdService())
    rng = np.random.default_rng(7)
    r = IORequest(0, guest=1, device=0, size=4096, write=False, issued=0)
    return np.array([draw(r, rng) for _ in range(n)])


MODELED = 80e-6 + 4096 / (500e6 / 8)  # an ssd's 4 KiB read


def test_modeled_and_deterministic_are_the_formula_on_a_flash_device():
    assert set(draws("modeled", 100)) == {MODELED}
    assert set(draws("deterministic", 100)) == {MODELED}


def test_exponential_has_the_modeled_time_as_its_mean():
    t = draws("exponential", 200_000)
    assert t.mean() == pytest.approx(MODELED, rel=0.01)
    assert t.std() / t.mean() == pytest.approx(1.0, rel=0.02)  # an exponential's cv is 1


@pytest.mark.parametrize("cv", [0.2, 1.5])
def test_lognormal_has_the_modeled_mean_and_the_given_cv(cv):
    t = draws("lognormal", 400_000, cv)
    assert t.mean() == pytest.approx(MODELED, rel=0.01)
    assert t.std() / t.mean() == pytest.approx(cv, rel=0.05)


def test_a_deterministic_hdd_charges_the_mean_seek_and_half_a_turn():
    """The formula with its random parts at their means: a request without an offset
    seeks the mean time to a random place (sqrt(distance) averages 8/15 between two
    random places) and waits half a turn, so random requests take the modeled mean
    without its spread; a request that continues where the previous one ended neither
    seeks nor waits."""
    hdd = HddService()
    unplaced = IORequest(0, 1, 0, 4096, False, 0)
    hdd.fixed_seconds(unplaced)  # leaves the head at an unknown place
    mean = 4096 / 150e6 + (0.8 + 15.2 * 8 / 15) / 1e3 + 0.5 * 60 / 7200
    assert hdd.fixed_seconds(unplaced) == pytest.approx(mean)
    hdd.fixed_seconds(IORequest(1, 1, 0, 4096, False, 0, offset=0))
    assert hdd.fixed_seconds(IORequest(2, 1, 0, 4096, False, 0, offset=4096)) == \
        pytest.approx(4096 / 150e6)
    fixed = draws("deterministic", 50, service=HddService())
    assert np.all(fixed[1:] == mean) and fixed[0] > mean  # the first seeks from 0
    modeled = draws("modeled", 100_000, service=HddService())
    assert len(set(modeled)) > 1000 and modeled.mean() == pytest.approx(mean, rel=0.01)


def run_disk(distribution: str, seed: int = 0) -> np.ndarray:
    text = (f"name: t\nseed: {seed}\nduration: 10ms\nhost: {{devices: {{d: {{kind: ssd, "
            f"distribution: {distribution}}}}}}}\nguests: [{{name: a, mode: native, "
            "workload: {profile: disk_io}, devices: [{device: d}]}]\n")
    return simulate(parse_scenario(text)).requests["service_ms"].to_numpy()


def test_a_scenarios_device_draws_from_its_own_stream_deterministic_by_seed():
    modeled, exponential = run_disk("modeled"), run_disk("exponential")
    assert len(set(modeled.round(9))) == 1  # the ssd's 4 KiB reads: one time
    assert len(set(exponential.round(9))) > 10
    assert np.array_equal(exponential, run_disk("exponential"))
    assert not np.array_equal(exponential[:20], run_disk("exponential", seed=1)[:20])


# --- segmentation offload and interrupt coalescing ------------------------------------------
def test_max_request_bytes_with_and_without_tso():
    env = Environment()
    assert Device(env, "n", NicService()).max_request_bytes == TSO_MAX_BYTES == 65536
    assert Device(env, "n", NicService(tso=False)).max_request_bytes == 1460
    assert Device(env, "n", NicService(tso=False, mtu=9000)).max_request_bytes == 8960
    assert Device(env, "d", SsdService()).max_request_bytes is None  # a disk: any size
    s = parse_scenario(f"name: t\nhost: {{devices: {{n: {{kind: nic, tso: false}}}}}}\n{GUEST}")
    assert build_host(s).io.devices["n"].max_request_bytes == 1460


def test_tso_does_not_change_the_nics_service_time():
    """Hardware segmentation still sends every frame: n frames of per-packet cost and
    wire bytes, as without."""
    big = IORequest(0, 1, 0, 65536, True, 0)
    on, off = NicService(rate_gbit_s=10), NicService(rate_gbit_s=10, tso=False)
    n = -(-65536 // 1460)
    assert on.seconds(big, None) == off.seconds(big, None) == pytest.approx(
        n * 1e-6 + (65536 + n * 78) * 8 / 10e9)


def coalesced(window_us: float, submits: list[int]) -> list[tuple[int, int, int]]:
    """(request, service end, completion callback) times in ns of 1 us requests submitted
    at ``submits`` (ns) to a NIC with a coalescing window of ``window_us``."""
    env = Environment()
    # 8 Gbit/s, no per-packet cost: 922 payload + 78 overhead bytes take exactly 1 us
    nic = Device(env, "n", NicService(rate_gbit_s=8, per_packet_us=0, coalesce_us=window_us),
                 freq_hz=1e9)
    out = []

    def done(r):
        out.append((r.id, r.t[STAGES.index("service_end")], env.now))

    def source():
        for i, t in enumerate(submits):
            yield env.timeout(t - env.now)
            r = IORequest(i, 1, 0, 922, True, env.now)
            r.on_done = done
            nic.submit(r)

    env.process(source())
    env.run()
    return out


def test_coalescing_releases_the_completions_of_a_window_at_its_end():
    # served back to back (one channel): done at 1, 2, 3 us; the window opens at the first
    # (1 us) and closes 2.5 us later, releasing all three in order; the fourth opens another
    assert coalesced(2.5, [0, 0, 0, 5000]) == [
        (0, 1000, 3500), (1, 2000, 3500), (2, 3000, 3500), (3, 6000, 8500)]


def test_a_completion_at_a_windows_very_end_opens_the_next_window():
    assert coalesced(2.0, [0, 0, 0]) == [(0, 1000, 3000), (1, 2000, 3000), (2, 3000, 5000)]


def test_without_coalescing_each_completion_is_signalled_at_once():
    assert coalesced(0.0, [0, 0, 5000]) == [(0, 1000, 1000), (1, 2000, 2000), (2, 6000, 6000)]


def test_a_coalescing_nic_in_a_scenario_holds_completions_in_the_irq_stage():
    text = ("name: t\nduration: 10ms\nhost: {devices: {n: {kind: nic, rate_gbit_s: 10, "
            "coalesce_us: %s}}}\nguests: [{name: a, mode: native, workload: {profile: "
            "net_tx}, devices: [{device: n}]}]\n")
    plain, held = (simulate(parse_scenario(text % c)).requests for c in (0, 50))
    assert plain["completion_irq_ms"].max() == 0.0
    assert 0 < held["completion_irq_ms"].mean() <= 0.050 + 1e-9
    assert held["service_ms"].round(9).eq(plain["service_ms"].iloc[0].round(9)).all()


# --- a kind registered later --------------------------------------------------------------
class Floppy(ServiceModel):
    """A floppy drive: a fixed time per sector."""

    params: ClassVar[dict] = {
        "sector_ms": (float, Field(20.0, gt=0, le=1e4, description="time per 512-byte "
                                   "sector, milliseconds"))}

    def __init__(self, sector_ms: float = 20.0) -> None:
        self.sector_s = sector_ms / 1e3

    def seconds(self, req, rng):
        return self.sector_s * max(1, -(-req.size // 512))


@pytest.fixture
def floppy():
    DEVICE_KINDS.register("floppy", Floppy)
    yield Floppy
    DEVICE_KINDS.unregister("floppy")


def test_a_kind_registered_later_gets_its_own_model_and_schema(floppy):
    defs = scenario_schema()["$defs"]
    assert defs["floppy_device"]["properties"]["sector_ms"]["default"] == 20.0
    assert "floppy" in defs["HostSpec"]["properties"]["devices"]["patternProperties"][
        "^[A-Za-z][A-Za-z0-9_-]{0,63}$"]["discriminator"]["mapping"]
    d = device("{kind: floppy, sector_ms: 10, distribution: deterministic}")
    assert type(d).__name__ == "floppy_device" and d.sector_ms == 10.0
    assert list(type(d).model_fields)[-4:] == ["distribution", "cv", "caps", "priorities"]
    with pytest.raises(ScenarioError, match="unknown key 'mtu' for kind floppy"):
        device("{kind: floppy, mtu: 1500}")
    with pytest.raises(ScenarioError, match="unknown key 'sector_ms' for kind ssd; .* "
                       r"\('sector_ms' is a key of kind floppy\)"):
        device("{kind: ssd, sector_ms: 1}")
    DEVICE_KINDS.unregister("floppy")
    try:
        assert "floppy_device" not in scenario_schema()["$defs"]
        with pytest.raises(ScenarioError, match="unknown device kind 'floppy'"):
            device("{kind: floppy}")
    finally:
        DEVICE_KINDS.register("floppy", Floppy)  # for the fixture to remove


def test_a_kind_declaring_a_key_every_device_has_is_refused():
    class Clash(Floppy):
        params: ClassVar[dict] = {"caps": (float, Field(1.0, description="a clash"))}

    with pytest.raises(ConfigError, match="declares the device field 'caps', which "
                       "TokenBucket declares for every device"):
        DEVICE_KINDS.register("clash", Clash)
    assert "clash" not in DEVICE_KINDS
    assert device("{kind: ssd, caps: {a: [10, null]}}").caps == {"a": (10.0, None)}


def test_a_scenario_with_devices_still_pickles_after_another_kind_is_registered(floppy):
    """The kinds' models are changed in place, never replaced: a scenario validated
    earlier pickles (for a sweep's workers) after a kind or policy is registered."""
    import pickle

    s = parse_scenario(f"name: t\nhost: {{devices: {{d: {{kind: nvme}}}}}}\n{GUEST}")
    DEVICE_KINDS.unregister("floppy")
    DEVICE_KINDS.register("floppy", Floppy)
    assert pickle.loads(pickle.dumps(s)) == s
    assert type(pickle.loads(pickle.dumps(s)).host.devices["d"]) is kind_model("nvme")
