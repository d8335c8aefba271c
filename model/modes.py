"""Virtualization modes as policy tables (design principle 2).

For each sensitive operation a mode says *how* it is handled and as which steps (its
table of :class:`~model.rules.Rule`, in :mod:`model.rules`); each step names a cycle
category and a cost from the hardware profile. :func:`compile_mode` turns a table and a
profile into the numeric arrays the CPU kernel consumes. New modes and CPU generations
are data: nothing else changes.

Each mode is a :class:`VirtMode` registered in :data:`MODES`: besides its table it
answers whether it can run a given OS on given hardware (and why not), its default
I/O path and the paths it may use, whether its TLB is tagged, and how its guests
reach devices. Adding a mode (PVH, say) is one subclass and one registration.

Examples
--------
>>> from model.hardware import load_profile
>>> m = resolve_mode("hvm", load_profile("netburst-3.8ghz-vt"))
>>> m.paging, m.rules[Op.CPUID].label
('shadow', 'exit:CPUID')
>>> resolve_mode("hvm", load_profile("nehalem-2.93ghz-ept")).paging
'nested'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from . import categories as C
from .errors import UnsupportedModeError, valid_choices
from .hardware import HardwareProfile
from .isa import N_OPS, STOP_OPS, Op
from .registry import Registry
from .rules import H, Rule, Step, T, full_rules, hvm_rules, native_rules, pv_rules
from .vectors import (
    B_ALU,
    B_BRANCH,
    B_BT_RET,
    B_BT_TRANSLATE,
    B_CALL,
    B_LOCKED,
    B_MEM,
    B_PIN_TABLE,
    B_PT_ZERO,
    B_RET,
    B_SHADOW_TABLE,
    B_TC_CAPACITY,
    B_VALIDATE,
    B_WALK,
    B_WALK_NESTED,
    BASE_VECTOR,
    M_BATCH_LIMIT,
    M_BT,
    M_EARLY_UNSHADOW,
    M_PAGING,
    M_PV,
    M_SHADOW_ROOTS,
    M_SMALL_KERNEL,
    M_WALK_LEVELS,
    MODE_VECTOR,
    PAGING_DIRECT,
    PAGING_NESTED,
    PAGING_SHADOW,
    POL_BASE,
    POL_BATCH,
    POL_MODE,
    POLICY_VECTOR,
)


@dataclass(frozen=True)
class Mode:
    """A virtualization mode resolved against a hardware profile."""

    name: str
    paging: str  # "direct" | "shadow" | "nested"
    translated_kernel: bool
    pv: bool
    rules: dict[Op, Rule] = field(repr=False)
    batch_steps: tuple[Step, ...] = ()
    world_switch: tuple[Step, ...] = ()
    kind: VirtMode | None = field(default=None, repr=False, compare=False)  # its component


# fmt: off
#: The kernel's paging codes, and the cost names of ordinary instructions (B_*).
_PAGING = {"direct": PAGING_DIRECT, "shadow": PAGING_SHADOW, "nested": PAGING_NESTED}
_BASE_COSTS = ((B_ALU, "alu"), (B_MEM, "mem"), (B_BRANCH, "branch"), (B_CALL, "call"),
               (B_RET, "ret"), (B_WALK, "walk_ref"), (B_WALK_NESTED, "walk_ref_nested"),
               (B_BT_RET, "bt_ret_lookup"), (B_BT_TRANSLATE, "bt_translate_per_insn"),
               (B_PIN_TABLE, "pv_pin_table"), (B_VALIDATE, "pv_validate_pte"),
               (B_PT_ZERO, "pt_page_zero"), (B_SHADOW_TABLE, "shadow_new_table"),
               (B_LOCKED, "locked_rmw"))
# fmt: on


class VirtMode(ABC):
    """A virtualization mode as a component: what it can run and on what hardware, how
    its guests reach devices, and its policy table (:meth:`resolve`).

    Subclasses set the class attributes and build the rule table; one instance of each
    is registered in :data:`MODES` under its :attr:`name`. Validation, ``compare``, the
    CLI, the microbenchmarks and the plots ask these objects, never the name.

    Examples
    --------
    >>> from model.hardware import load_profile
    >>> p4 = load_profile("netburst-2.4ghz")  # no VT-x
    >>> MODES["hvm"].reason(p4), MODES["full"].reason(p4, modified_os=False) is None
    ('hvm needs VT-x, which netburst-2.4ghz lacks', True)
    >>> MODES["pv"].problem(modified_os=False)  # doctest: +NORMALIZE_WHITESPACE
    'an unmodified OS cannot run in pv mode (paravirtualization needs a kernel modified to
    make hypercalls); use full (binary translation) or hvm (hardware assist)'
    >>> MODES["hvm"].default_path, MODES["native"].paths()
    ('emulated', ('direct',))
    """

    #: The registered name (``"pv"``).
    name: str = ""
    #: A few words for advice and help texts (``"binary translation"``).
    summary: str = ""
    #: Its colour in the plots (a hex colour).
    color: str = "#7f7f7f"
    #: The I/O path of an attachment that names none (a key of ``model.io.paths.PATHS``).
    default_path: str = "emulated"
    #: The only paths it may use (None: every path that serves it, see :meth:`paths`),
    #: and what to say to a guest that asks for another.
    only_paths: tuple[str, ...] | None = None
    only_paths_reason: str = ""
    #: Why it needs a modified (paravirtualized) OS; None if it runs an unmodified one.
    modified_os_reason: str | None = None
    #: Whether it needs hardware virtualization (VT-x).
    needs_vtx: bool = False
    #: Whether its guests' kernels have paravirtual split drivers (netfront/blkfront).
    pv_drivers: bool = False
    #: Whether its VMM may be a hosted one, whose devices the host OS serves (VMware
    #: Workstation: the ``hosted`` I/O path).
    hosted_devices: bool = False
    #: Whether a hypervisor runs under it (False for native): only these are offered
    #: as alternatives in advice.
    virtualized: bool = True
    #: A yield runs inline (no hypervisor to yield to: a pause), not as a stop.
    yield_inline: bool = False

    # --- what it can run ---------------------------------------------------------------
    def reason(self, hw: HardwareProfile | None = None, modified_os: bool = True) -> str | None:
        """Why this mode cannot run the OS (modified or not) on ``hw`` (hardware not
        considered when None), in a few words; None if it can."""
        if self.modified_os_reason is not None and not modified_os:
            return f"an unmodified OS cannot run in {self.name} mode"
        if hw is not None and self.needs_vtx and not hw.features.vtx:
            return f"{self.name} needs VT-x, which {hw.name} lacks"
        return None

    def problem(
        self, hw: HardwareProfile | None = None, modified_os: bool = True, *, detail: bool = True
    ) -> str | None:
        """:meth:`reason`, explained (``detail``) or not, with the modes to use instead:
        the one message of validation, the CLI and :func:`resolve_mode`; None if it can
        run."""
        short = self.reason(hw, modified_os)
        if short is None:
            return None
        os_problem = self.modified_os_reason is not None and not modified_os
        if detail and os_problem:
            short += f" ({self.modified_os_reason})"
        elif detail:
            short = f"{self.name} needs hardware virtualization (VT-x), which {hw.name} lacks"
        others = [
            f"{m.name} ({m.summary})"
            for _, m in MODES.items()
            if m is not self and m.virtualized and m.reason(hw, modified_os) is None
        ]
        if not others:
            return short
        return f"{short}; use " + (
            others[0] if len(others) == 1 else f"{', '.join(others[:-1])} or {others[-1]}"
        )

    def resolve(self, hw: HardwareProfile, *, modified_os: bool = True) -> Mode:
        """The mode's policy table on ``hw``.

        Raises
        ------
        UnsupportedModeError
            If it cannot run the OS on ``hw`` (:meth:`problem` says why).
        """
        problem = self.problem(hw, modified_os)
        if problem is not None:
            raise UnsupportedModeError(problem)
        return self.table(hw)

    @abstractmethod
    def table(self, hw: HardwareProfile) -> Mode:
        """The policy table on ``hw`` (which :meth:`resolve` checked first)."""

    def tlb_tagged(self, hw: HardwareProfile) -> bool:
        """Whether its guests' TLB entries are tagged, so survive world switches."""
        return False

    # --- how it reaches devices ------------------------------------------------------
    def paths(self) -> tuple[str, ...]:
        """The I/O paths its guests may use."""
        from .io.paths import PATHS

        if self.only_paths is not None:
            return self.only_paths
        return tuple(n for n, p in PATHS.items() if p.serves(self))

    def path_problem(self, path: str) -> str | None:
        """Why its guests cannot use I/O ``path`` (None if they can)."""
        from .io.paths import PATHS

        if path not in PATHS:
            return f"unknown I/O path {path!r}; {valid_choices(path, PATHS)}"
        if path in self.paths():
            return None
        return self.only_paths_reason or PATHS[path].refusal(self.name)

    def register_op(self, port_io: bool) -> Op:
        """The instruction an emulated device's register access is (``port_io``: the
        device has I/O ports, as IDE; else memory-mapped registers, as e1000)."""
        return Op.MMIO

    def access_exit(self, hw: HardwareProfile, cm: CompiledMode) -> np.ndarray:
        """Cycles by category of leaving the guest for an emulated register access
        (before the ioreq is forwarded to the device model)."""
        return cm.cost[Op.MMIO].copy()

    def assigned_irq_exit(self, hw: HardwareProfile) -> np.ndarray | None:
        """Cycles by category an assigned (passthrough) device's interrupt costs beyond
        its delivery, or None if it costs no exit."""
        return None


#: The virtualization modes, by name (:class:`VirtMode` instances).
MODES: Registry[VirtMode] = Registry("virtualization mode")


def _row(*steps: tuple[int, int]) -> np.ndarray:
    row = np.zeros(C.N_CATEGORIES, np.int64)
    for cat, cycles in steps:
        row[cat] += cycles
    return row


class Native(VirtMode):
    """No hypervisor: the baseline; its guest drives the devices itself."""

    name, summary, color = "native", "no hypervisor", "#404040"
    default_path = "direct"
    only_paths = ("direct",)
    only_paths_reason = "a native guest drives its devices directly (path: direct)"
    virtualized = False
    yield_inline = True

    def table(self, hw: HardwareProfile) -> Mode:
        return Mode(self.name, "direct", False, False, native_rules(), kind=self)


class Paravirtual(VirtMode):
    """Xen-style paravirtualization: a modified kernel makes hypercalls."""

    name, summary, color = "pv", "modified OS", "#1f77b4"
    default_path = "pv"
    modified_os_reason = "paravirtualization needs a kernel modified to make hypercalls"
    pv_drivers = True

    def table(self, hw: HardwareProfile) -> Mode:
        batch = ((T, "hypercall_entry"), (H, "hypercall_dispatch"), (T, "hypercall_exit"))
        return Mode(
            self.name,
            "direct",
            False,
            True,
            pv_rules(hw),
            batch,
            ((H, "context_switch"), (H, "cr3_load")),
            kind=self,
        )


class BinaryTranslation(VirtMode):
    """VMware-style full virtualization: the kernel runs translated, on shadow tables."""

    name, summary, color = "full", "binary translation", "#d62728"
    hosted_devices = True

    def table(self, hw: HardwareProfile) -> Mode:
        return Mode(
            self.name,
            "shadow",
            True,
            False,
            full_rules(),
            world_switch=((H, "context_switch"), (H, "cr3_load")),
            kind=self,
        )


class HardwareAssist(VirtMode):
    """VT-x: sensitive operations exit; nested paging where the CPU has EPT."""

    name, summary, color = "hvm", "hardware assist", "#2ca02c"
    needs_vtx = True

    def table(self, hw: HardwareProfile) -> Mode:
        nested = hw.features.ept
        return Mode(
            self.name,
            "nested" if nested else "shadow",
            False,
            False,
            hvm_rules(hw, nested, hw.features.apicv),
            world_switch=((T, "vmexit"), (H, "context_switch"), (T, "vmentry")),
            kind=self,
        )

    def tlb_tagged(self, hw: HardwareProfile) -> bool:
        return hw.features.vpid  # VPID tags entries by guest

    def register_op(self, port_io: bool) -> Op:
        return Op.PIO if port_io else Op.MMIO  # an exit whose reason depends on the register

    def access_exit(self, hw: HardwareProfile, cm: CompiledMode) -> np.ndarray:
        return _row((T, hw.cost("vmexit")), (T, hw.cost("vmentry")))

    def assigned_irq_exit(self, hw: HardwareProfile) -> np.ndarray | None:
        if hw.features.apicv:
            return None  # posted interrupts deliver it
        return _row((T, hw.cost("vmexit")), (H, hw.cost("vintr_inject")), (T, hw.cost("vmentry")))


for _mode in (Native(), Paravirtual(), BinaryTranslation(), HardwareAssist()):
    MODES.register(_mode.name, _mode)

#: What a guest's ``os`` may be: ``modified`` (paravirtualized) or not.
OS_KINDS = ("modified", "unmodified")


def is_modified(os: str) -> bool:
    """Whether a guest ``os`` of :data:`OS_KINDS` is a modified (paravirtualized) kernel.

    Examples
    --------
    >>> is_modified("modified"), is_modified("unmodified")
    (True, False)
    """
    return os == OS_KINDS[0]


def baseline_mode() -> str | None:
    """The mode without a hypervisor, which ``compare`` and ``bench`` relate the others
    to (``native``); None if none is registered.

    Examples
    --------
    >>> baseline_mode()
    'native'
    """
    return next((n for n, m in MODES.items() if not m.virtualized), None)


def resolve_mode(name: str, hw: HardwareProfile, *, modified_os: bool = True) -> Mode:
    """The policy table of mode ``name`` on hardware ``hw`` (``MODES[name].resolve``).

    Raises
    ------
    UnknownNameError
        For a mode not in :data:`MODES`.
    UnsupportedModeError
        For an unmodified OS in pv mode (paravirtualization needs a modified
        kernel), or hvm on a CPU without VT-x.
    """
    return MODES[name].resolve(hw, modified_os=modified_os)


@dataclass(frozen=True)
class CompiledMode:
    """A mode's policy as the arrays :func:`model.cpu.execute` consumes."""

    mode: Mode
    vector: np.ndarray  # mode flags (M_*)
    base: np.ndarray  # ordinary-instruction costs (B_*)
    cost: np.ndarray  # (N_OPS, N_CATEGORIES) cycles per occurrence
    batch_cost: np.ndarray  # (N_CATEGORIES,) cycles per hypercall batch
    batchable: np.ndarray  # (N_OPS,) -1 stop, 0 inline, 1 batchable
    world_switch: np.ndarray  # (N_CATEGORIES,) cycles of a world switch to this mode's vCPU
    policy: np.ndarray  # vector, base and batch_cost packed (the kernel's ``policy``)
    costs: np.ndarray  # cost with batchable as an extra column (the kernel's ``costs``)

    def row_total(self, op: Op) -> int:
        return int(self.cost[op].sum())


def _steps(hw: HardwareProfile, steps: tuple[Step, ...]) -> np.ndarray:
    row = np.zeros(C.N_CATEGORIES, np.int64)
    for cat, name in steps:
        row[cat] += hw.cost(name)
    return row


def compile_mode(mode: Mode, hw: HardwareProfile) -> CompiledMode:
    """Turn ``mode``'s policy and ``hw``'s costs into numeric tables.

    Examples
    --------
    >>> from model.hardware import load_profile
    >>> hw = load_profile("netburst-3.8ghz-vt")
    >>> cm = compile_mode(resolve_mode("hvm", hw), hw)
    >>> cm.row_total(Op.PIO) == hw.cost("vmexit") + hw.cost("io_emulate") + hw.cost("vmentry")
    True
    """
    cost = np.zeros((N_OPS, C.N_CATEGORIES), np.int64)
    batchable = np.zeros(N_OPS, np.int8)
    for op, rule in mode.rules.items():
        cost[op] = _steps(hw, rule.steps)
        batchable[op] = 1 if rule.batchable else 0
    for op in STOP_OPS:
        batchable[op] = -1
    if mode.kind is not None and mode.kind.yield_inline:  # a pause, run inline
        batchable[Op.YIELD] = 0
    vector = np.zeros(MODE_VECTOR, np.int64)
    vector[M_PAGING] = _PAGING[mode.paging]
    vector[M_BT] = int(mode.translated_kernel)
    vector[M_PV] = int(mode.pv)
    vector[M_BATCH_LIMIT] = int(hw.param("pv_batch_limit"))
    # a PV kernel may not use global or large pages (Linux arch/x86/xen/enlighten.c:
    # xen_start_kernel clears _PAGE_GLOBAL from the PTE masks, xen_write_cr4 clears PGE
    # and PSE): on x86-32, where it shares the page tables with its processes, every
    # CR3 load loses its TLB entries
    vector[M_SMALL_KERNEL] = int(mode.pv and hw.arch == "x86_32")
    vector[M_SHADOW_ROOTS] = int(hw.param("shadow_root_cache"))
    vector[M_EARLY_UNSHADOW] = int(hw.param("shadow_early_unshadow"))
    vector[M_WALK_LEVELS] = hw.walk_levels
    base = np.zeros(BASE_VECTOR, np.int64)
    for idx, name in _BASE_COSTS:
        base[idx] = hw.cost(name)
    base[B_TC_CAPACITY] = int(hw.param("bt_tc_capacity"))
    batch_cost = _steps(hw, mode.batch_steps)
    policy = np.zeros(POLICY_VECTOR, np.int64)
    policy[POL_MODE:POL_BASE] = vector
    policy[POL_BASE:POL_BATCH] = base
    policy[POL_BATCH:] = batch_cost
    costs = np.concatenate([cost, batchable[:, None].astype(np.int64)], axis=1)
    switch = _steps(hw, mode.world_switch)
    return CompiledMode(mode, vector, base, cost, batch_cost, batchable, switch, policy, costs)
