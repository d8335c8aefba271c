"""The policy tables: how each virtualization mode handles each sensitive operation.

A :class:`Rule` says how one operation is handled (a :class:`Handling`: directly, by a
batchable hypercall, emulated in the translation cache, by a trap, by a VM exit with a
reason, through shared memory) and as which steps; each step names a cycle category and
a cost of the hardware profile. The tables of the shipped modes are here, aligned by hand
for reading side by side; the modes themselves (:mod:`model.modes`) choose a table and
compile it for the CPU kernel.

Examples
--------
>>> from model.hardware import load_profile
>>> from model.isa import Op
>>> rule = pv_rules(load_profile())[Op.PTE_WRITE]
>>> rule.handling, rule.label, rule.batchable
(<Handling.HYPERCALL: 'hypercall'>, 'hypercall:mmu_update', True)
>>> transition_of(rule), transition_of(full_rules()[Op.CPUID])
(('hypercalls', 'mmu_update'), ('bt_emulations', 'callout'))
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from . import categories as C
from .hardware import HardwareProfile
from .isa import Op


class Handling(StrEnum):
    DIRECT = "direct"  # executes on the hardware as it would natively
    HYPERCALL = "hypercall"  # a (batchable) call into the hypervisor
    SHARED_MEMORY = "shared_memory"  # paravirtualized as a write to a shared page
    BT_EMULATED = "bt_emulated"  # emulated inside translated code or by a VMM callout
    TRAP = "trap"  # a fault into the hypervisor, which emulates or reflects it
    VM_EXIT = "vm_exit"  # a hardware VM exit with a reason
    DELIVERY = "delivery"  # a virtual interrupt delivered (event-channel upcall, vAPIC)
    NONE = "none"  # not executed in this mode


Step = tuple[int, str]  # (category, cost name)


@dataclass(frozen=True)
class Rule:
    """How one sensitive operation is handled: a kind, steps, and a label
    (``hypercall:mmu_update``, ``exit:CPUID``, ``trap:#GP``) for statistics."""

    handling: Handling
    steps: tuple[Step, ...] = ()
    label: str = ""
    batchable: bool = False


# The policy tables are aligned by hand.
# fmt: off
#: The transition statistics each kind of handling is counted under.
TRANSITION_KINDS = {Handling.HYPERCALL: "hypercalls", Handling.VM_EXIT: "vm_exits",
                    Handling.TRAP: "traps", Handling.BT_EMULATED: "bt_emulations",
                    Handling.DELIVERY: "interrupts"}


def transition_of(rule: Rule) -> tuple[str, str] | None:
    """(statistic, label) a rule's execution is counted as, or None if it is not a
    transition: ``("vm_exits", "IO_INSTRUCTION")``, ``("hypercalls", "mmu_update")``."""
    kind = TRANSITION_KINDS.get(rule.handling)
    return None if kind is None else (kind, rule.label.split(":", 1)[1])


def _d(*steps: Step, label: str = "") -> Rule:
    return Rule(Handling.DIRECT, steps, label)


K, H, T, E = C.KERNEL, C.HYPERVISOR, C.TRANSITION, C.EMULATION


def native_rules() -> dict[Op, Rule]:
    return {
        Op.SYSCALL: _d((K, "syscall_insn")),
        Op.SYSRET: _d((K, "sysret_insn")),
        Op.IRET: _d((K, "iret_insn")),
        Op.PTE_WRITE: _d((K, "mem")),
        Op.CR3_LOAD: _d((K, "cr3_load")),
        Op.TLB_FLUSH: _d((K, "cr3_load")),
        Op.INVLPG: _d((K, "invlpg")),
        Op.PIO: _d((K, "port_io")),
        Op.MMIO: _d((K, "mmio_uncached")),
        Op.CLI: _d((K, "cli")),
        Op.STI: _d((K, "cli")),
        Op.TIMER: _d((K, "apic_timer_write")),
        Op.HLT: _d((K, "hlt")),
        Op.CPUID: _d((K, "cpuid")),
        Op.RDTSC: _d((K, "rdtsc")),
        Op.EXC: _d((K, "exception")),
        Op.CR8_WRITE: _d((K, "cr8_write")),
        Op.LAZY_BEGIN: Rule(Handling.NONE),
        Op.LAZY_END: Rule(Handling.NONE),
        Op.PT_ALLOC: _d((K, "pt_page_zero")),
        Op.PT_PIN: Rule(Handling.NONE),
        Op.PT_UNPIN: Rule(Handling.NONE),
        Op.YIELD: _d((K, "alu")),  # no hypervisor to yield to: a pause
        Op.STACK_SWITCH: _d(),  # a store to the TSS: in the context switch's instructions
        Op.PAGE_FAULT: _d((K, "exception")),
        Op.HIDDEN_FAULT: Rule(Handling.NONE),
        Op.PTE_CLEAR: Rule(Handling.NONE),  # traced writes: shadow paging only
        Op.PTE_FILL: Rule(Handling.NONE),
        Op.INTERRUPT: Rule(Handling.DELIVERY, ((K, "interrupt_delivery"),), "native:irq"),
    }


def _hc(name: str, *steps: Step, batchable: bool = True) -> Rule:
    return Rule(Handling.HYPERCALL, steps, f"hypercall:{name}", batchable)


def pv_rules(hw: HardwareProfile) -> dict[Op, Rule]:
    r = native_rules()
    bounce = ((T, "exception"), (H, "pv_bounce"), (T, "xen_to_guest"))
    if hw.arch == "x86_64":
        # SYSCALL enters Xen, which bounces to the guest kernel (switching to its page
        # tables); the return is the iret hypercall (Xen docs pv-traps.rst).
        r[Op.SYSCALL] = Rule(Handling.TRAP, ((T, "syscall_insn"), (H, "pv_bounce"),
                                            (H, "cr3_load"), (T, "xen_to_guest")),
                             "trap:syscall")
        iret = _hc("iret", (T, "hypercall_entry"), (H, "pv_iret"), (H, "cr3_load"),
                   (T, "xen_to_guest"), batchable=False)
        r[Op.SYSRET] = iret
        r[Op.IRET] = iret
    # x86-32: the set_trap_table fast system-call gate reaches ring 1 directly (XEN03)
    r[Op.PTE_WRITE] = _hc("mmu_update", (H, "pv_validate_pte"))
    r[Op.CR3_LOAD] = _hc("mmuext_op", (H, "pv_new_baseptr"), (H, "cr3_load"))
    # the TSS belongs to Xen: the guest asks it to record the next kernel stack
    r[Op.STACK_SWITCH] = _hc("stack_switch", (H, "pv_stack_switch"))
    r[Op.TLB_FLUSH] = _hc("mmuext_op", (H, "cr3_load"))
    r[Op.INVLPG] = _hc("mmuext_op", (H, "invlpg"))
    r[Op.PT_ALLOC] = _hc("mmuext_op", (K, "pt_page_zero"), (H, "pv_pin_table"))
    r[Op.PT_PIN] = _hc("mmuext_op")
    r[Op.PT_UNPIN] = _hc("mmuext_op")
    r[Op.PIO] = Rule(Handling.TRAP, ((T, "exception"), (E, "xen_priv_op_emulate"),
                                     (T, "xen_to_guest")), "trap:#GP")
    r[Op.MMIO] = r[Op.PIO]
    r[Op.CPUID] = r[Op.PIO]
    shared = Rule(Handling.SHARED_MEMORY, ((K, "mem"),), "shared:vcpu_info")
    r[Op.CLI] = shared
    r[Op.STI] = shared
    r[Op.CR8_WRITE] = shared
    r[Op.TIMER] = _hc("set_timer_op", (T, "hypercall_entry"), (H, "pv_set_timer"),
                      (T, "hypercall_exit"), batchable=False)
    sched = ((T, "hypercall_entry"), (H, "pv_sched_op"), (T, "hypercall_exit"))
    r[Op.HLT] = _hc("sched_op:block", *sched, batchable=False)
    r[Op.YIELD] = _hc("sched_op:yield", *sched, batchable=False)
    r[Op.EXC] = Rule(Handling.TRAP, bounce, "trap:exception")
    r[Op.PAGE_FAULT] = Rule(Handling.TRAP, bounce, "trap:#PF")
    r[Op.INTERRUPT] = Rule(Handling.DELIVERY, ((H, "evtchn_upcall"), (T, "xen_to_guest"),
                                               (K, "interrupt_delivery")), "upcall:evtchn")
    return r


def _bt(*steps: Step, label: str = "bt:callout") -> Rule:
    return Rule(Handling.BT_EMULATED, steps, label)


def full_rules() -> dict[Op, Rule]:
    r = native_rules()
    callout = (E, "bt_callout")
    reflect = ((T, "exception"), (E, "bt_reflect"))
    r[Op.SYSCALL] = Rule(Handling.TRAP, ((T, "exception"), (E, "bt_syscall_emulate")),
                         "trap:syscall")
    r[Op.SYSRET] = _bt(callout)
    r[Op.IRET] = _bt((E, "bt_iret"))
    r[Op.PTE_WRITE] = _bt((E, "bt_traced_write"), label="bt:traced_write")
    r[Op.PTE_CLEAR] = _bt((E, "bt_trace_clear"), label="bt:traced_write")
    r[Op.PTE_FILL] = _bt((E, "bt_trace_fill"), label="bt:traced_write")
    r[Op.CR3_LOAD] = _bt(callout, (H, "shadow_cr3_switch"))
    r[Op.TLB_FLUSH] = _bt(callout, (H, "shadow_resync"))
    r[Op.INVLPG] = _bt(callout, (H, "shadow_invlpg"))
    r[Op.PIO] = _bt((E, "bt_in_tc_emulate"), label="bt:in_tc")
    r[Op.MMIO] = _bt(callout)
    r[Op.CLI] = _bt((E, "bt_cli"), label="bt:in_tc")
    r[Op.STI] = r[Op.CLI]
    r[Op.TIMER] = _bt(callout, (H, "vapic_timer"))
    r[Op.HLT] = _bt(callout)
    r[Op.CPUID] = _bt(callout)
    r[Op.RDTSC] = _bt((E, "bt_rdtsc_tc"), label="bt:in_tc")
    r[Op.EXC] = Rule(Handling.TRAP, reflect, "trap:exception")
    r[Op.CR8_WRITE] = _bt((E, "bt_cr8"), label="bt:in_tc")
    r[Op.PT_ALLOC] = _d((K, "pt_page_zero"), (H, "shadow_new_table"))
    r[Op.PAGE_FAULT] = Rule(Handling.TRAP, ((T, "exception"), (H, "shadow_fault_walk"),
                                            (E, "bt_reflect")), "trap:#PF")
    r[Op.HIDDEN_FAULT] = Rule(Handling.TRAP, ((T, "exception"), (H, "shadow_fill"),
                                              (T, "iret_insn")), "trap:hidden#PF")
    r[Op.INTERRUPT] = Rule(Handling.DELIVERY, ((T, "interrupt_delivery"), (E, "bt_reflect")),
                           "reflect:interrupt")
    return r


def _exit(reason: str, *handler: Step) -> Rule:
    return Rule(Handling.VM_EXIT, ((T, "vmexit"), *handler, (T, "vmentry")), f"exit:{reason}")


def hvm_rules(hw: HardwareProfile, nested: bool, apicv: bool) -> dict[Op, Rule]:
    r = native_rules()
    if not nested:
        r[Op.PTE_WRITE] = _exit("EXCEPTION_NMI", (H, "shadow_emulate_write"))
        r[Op.PTE_CLEAR] = _exit("EXCEPTION_NMI", (H, "shadow_emulate_clear"))
        r[Op.PTE_FILL] = _exit("EXCEPTION_NMI", (H, "shadow_emulate_fill"))
        r[Op.CR3_LOAD] = _exit("CR_ACCESS", (H, "shadow_cr3_switch"))
        r[Op.TLB_FLUSH] = _exit("CR_ACCESS", (H, "shadow_resync"))
        r[Op.INVLPG] = _exit("INVLPG", (H, "shadow_invlpg"))
        r[Op.PT_ALLOC] = _d((K, "pt_page_zero"), (H, "shadow_new_table"))
        r[Op.PAGE_FAULT] = _exit("EXCEPTION_NMI", (H, "shadow_fault_walk"),
                                 (H, "shadow_fault_inject"), (K, "exception"))
        r[Op.HIDDEN_FAULT] = _exit("EXCEPTION_NMI", (H, "shadow_fill"))
    r[Op.PIO] = _exit("IO_INSTRUCTION", (E, "io_emulate"))
    r[Op.MMIO] = _exit("EPT_MISCONFIG", (E, "mmio_emulate"))
    r[Op.CPUID] = _exit("CPUID", (H, "cpuid_emulate"))
    r[Op.TIMER] = _exit("MSR_WRITE", (H, "vapic_timer"))
    r[Op.HLT] = _exit("HLT", (H, "hlt_handle"))
    r[Op.CR8_WRITE] = _d((K, "cr8_write_tpr_shadow")) if hw.features.tpr_shadow else _exit(
        "CR_ACCESS", (H, "apic_emulate"))
    inject = ((H, "vintr_inject"), (K, "interrupt_delivery"))
    if not apicv:  # the guest's EOI write exits to the hypervisor
        inject += ((T, "vmexit"), (H, "apic_emulate"), (T, "vmentry"))
    r[Op.INTERRUPT] = Rule(Handling.DELIVERY, inject, "inject:vapic")
    return r
# fmt: on
