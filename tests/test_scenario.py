"""Scenario validation: what a good file gives, and a clear message for each broken one."""

from __future__ import annotations

import pytest

from analysis.cli import main
from model.scenario import ScenarioError, parse_duration, parse_scenario

GOOD = """
name: consolidation
seed: 7
duration: 500ms
hardware: nehalem-2.93ghz-ept
host:
  pcpus: 4
  scheduler: credit
  devices:
    ssd0: {kind: ssd, arbitration: weighted_fair, caps: {backup: [2000, null]}}
    nic0: {kind: nic, rate_gbit_s: 10}
driver_domain: {vcpus: 1, weight: 512, pinning: [0]}
guests:
  - name: web
    count: 8
    mode: pv
    workload: {profile: web_server, params: {arrivals: {kind: poisson, rate_per_s: 500}}}
    devices: [{device: ssd0}, {device: nic0, path: pv}]
  - name: backup
    os: unmodified
    mode: hvm
    workload: {profile: disk_io, params: {size: 65536, queue_depth: 8}}
    devices: [{device: ssd0, path: virtio}]
record: {interval: 10ms, requests: true}
"""


def test_a_good_scenario_has_every_default_filled_in():
    s = parse_scenario(GOOD, "good.yaml")
    assert s.duration == 0.5 and s.seed == 7
    assert s.guests[0].count == 8 and s.guests[0].cap == 0 and s.guests[0].weight == 256
    assert s.host.devices["ssd0"].caps == {"backup": (2000.0, None)}
    assert s.host.timeslice_ms == 30.0 and s.record.trace is False


@pytest.mark.parametrize(("text", "where"), [
    ("", "empty"),
    ("name: x\n", "guests: missing required key"),
    ("- a\n- b\n", "a mapping of keys"),
    ("name: x\nguests: []\n", "guests: List should have at least 1 item"),
    ("name: x\nguests:\n  - {name: a, mdoe: pv, workload: {profile: spin}}\n",
     ":3:21: guests[0].mdoe: unknown key 'mdoe'"),
    ("name: x\nduraton: 1s\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "duraton: unknown key"),
    ("name: x\nduration: 2\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "duration: 2 is not a duration"),
    ("name: x\nduration: 2 sec\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "duration: '2 sec' is not a duration"),
    ("name: x\nduration: -1s\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "duration"),
    ("name: x\nrecord: {interval: 5}\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "record.interval: 5 is not a duration"),
    ("name: x\nguests:\n  - {name: a, count: -1, workload: {profile: spin}}\n",
     "guests[0].count: -1 is out of range; valid: 1 to 1,024"),
    ("name: x\nguests:\n  - {name: a, count: 0, workload: {profile: spin}}\n", "guests[0].count"),
    ("name: x\nguests:\n  - {name: a, vcpus: 0, workload: {profile: spin}}\n", "guests[0].vcpus"),
    ("name: x\nguests:\n  - {name: a, weight: 70000, workload: {profile: spin}}\n",
     "guests[0].weight: 70000 is out of range; valid: 1 to 65,535"),
    ("name: x\nguests:\n  - {name: a, cap: -5, workload: {profile: spin}}\n", "guests[0].cap"),
    ("name: x\nhardware: pentium\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "hardware: unknown hardware profile 'pentium'; valid choices: core2-2.66ghz-vt"),
    ("name: x\nguests:\n  - {name: a, os: unmodified, mode: pv, workload: {profile: spin}}\n",
     "guests[0].mode: an unmodified OS cannot run in pv mode"),
    ("name: x\nguests:\n  - {name: a, mode: paravirt, workload: {profile: spin}}\n",
     "guests[0].mode: Input should be 'native', 'pv', 'full' or 'hvm' (got 'paravirt')"),
    ("name: x\nguests:\n  - {name: a, os: windows, workload: {profile: spin}}\n",
     "guests[0].os"),
    ("name: x\nguests:\n  - {name: a, workload: {profile: bitcoin}}\n",
     "guests[0].workload.profile"),
    ("name: x\nguests:\n  - {name: a, workload: {profile: sleeper, params: {rate: 3}}}\n",
     "unknown parameter 'rate' of workload 'sleeper'; valid: work_us, sleep_us"),
    ("name: x\nguests:\n  - {name: a}\n", "guests[0].workload: missing required key"),
    ("name: x\nguests:\n  - {name: a, workload: {profile: spin}, devices: [{device: ssd9}]}\n",
     "unknown device 'ssd9'"),
    ("name: x\nguests:\n  - {name: a, workload: {profile: spin}}\n"
     "  - {name: a, workload: {profile: spin}}\n", "guests[1].name: duplicate guest name 'a'"),
    ("name: x\nguests:\n  - {name: '1bad', workload: {profile: spin}}\n", "guests[0].name"),
    ("name: x\nhost: {pcpus: 0}\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "host.pcpus"),
    ("name: x\nhost: {scheduler: bvt}\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "host.scheduler: Input should be 'credit' or 'round_robin'"),
    ("name: x\nhost: {devices: {d: {kind: floppy}}}\nguests:\n"
     "  - {name: a, workload: {profile: spin}}\n", "host.devices.d.kind"),
    ("name: x\nhost: {devices: {d: {kind: ssd, arbitration: lottery}}}\nguests:\n"
     "  - {name: a, workload: {profile: spin}}\n", "host.devices.d.arbitration"),
    ("name: x\ndriver_domain: {pinning: [5]}\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "driver_domain.pinning: pCPU 5 does not exist"),
    ("name: x\nduration: 1s\nrecord: {interval: 1us}\nguests:\n"
     "  - {name: a, workload: {profile: spin}}\n", "cuts the 1.0s run into more than 100,000"),
    ("name: x\nhost: {memory_mb: 512, devices: {d: {kind: ssd}}}\nguests:\n"
     "  - {name: a, count: 2, workload: {profile: disk_io}, devices: [{device: d}]}\n",
     "host.memory_mb: the guests need 512 MB (count x memory_mb) and the driver domain 256 MB"),
    ("name: x\nguests:\n  - {name: a, pinning: [2], workload: {profile: spin}}\n",
     "guests[0].pinning: pCPU 2 does not exist (the host has 2: 0..1)"),
    ("name: x\nhost: {devices: {d: {kind: ssd, priorities: {a: 1}}}}\nguests:\n"
     "  - {name: a, workload: {profile: spin}}\n",
     "host.devices.d.priorities: only used with arbitration priority"),
    ("name: x\nhost: {devices: {d: {kind: ssd, arbitration: priority, priorities: {b: 1}}}}"
     "\nguests:\n  - {name: a, workload: {profile: spin}}\n",
     "host.devices.d.priorities.b: unknown guest 'b'; valid choices: a"),
    ("name: x\nhardware: netburst-2.4ghz\nguests:\n"
     "  - {name: a, mode: hvm, workload: {profile: spin}}\n", "hvm needs VT-x"),
    ("name: x\nname: y\nguests: []\n", ":2:1: duplicate key 'name' at top level"),
    ("name: x\nguests:\n  - {name: a, workload: {profile: spin\n", "YAML syntax error"),
    ("name: !!python/object/apply:os.system [ls]\nguests: []\n", "is not allowed: only plain data"),
    ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
     "expands to more than 100,000 nodes"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
    (b"\xff\xfe\xfd", "not a text file (invalid UTF-8"),
    ("name: x\nhost: {devices: {nic0: {kind: nic}}}\nguests:\n"
     "  - {name: a, workload: {profile: disk_io}, devices: [{device: nic0}]}\n",
     "guests[0].devices: workload 'disk_io' needs a disk attached"),
    ("name: x\nhost: {devices: {ssd0: {kind: ssd}}}\nguests:\n"
     "  - {name: a, mode: full, workload: {profile: disk_io}, devices: [{device: ssd0, "
     "path: pv}]}\n", "guests[0].devices[0].path: the pv split driver needs a pv guest"),
    ("name: x\nhost: {devices: {ssd0: {kind: ssd}}}\nguests:\n"
     "  - {name: a, mode: native, workload: {profile: disk_io}, devices: [{device: ssd0, "
     "path: virtio}]}\n", "a native guest drives its devices directly"),
])
def test_a_broken_scenario_gets_a_clear_message_and_exit_status_2(text, where, tmp_path,
                                                                  capsys):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "broken.yaml")
    message = str(err.value)
    assert message.startswith("broken.yaml")
    assert where in message
    path = tmp_path / "broken.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err_text = capsys.readouterr().err
    assert err_text.startswith(f"pvsim: error: {path}") and where in err_text
    assert "Traceback" not in err_text and not (tmp_path / "out").exists()


def test_durations_need_units():
    assert parse_duration("2s") == 2.0 and parse_duration("20us") == pytest.approx(2e-5)
    with pytest.raises(ValueError, match="unit"):
        parse_duration(3)


def test_every_field_of_the_schema_is_described():
    """pvsim schema (and an editor using it) says what each key is."""
    from model.scenario import scenario_schema

    schema = scenario_schema()
    missing = []

    def walk(node: dict, path: str) -> None:
        for key, sub in node.get("properties", {}).items():
            if "description" not in sub:
                missing.append(f"{path}.{key}")
            walk(sub, f"{path}.{key}")

    walk(schema, "Scenario")
    for name, d in schema.get("$defs", {}).items():
        walk(d, name)
    assert missing == []
