"""The two hot loops of the ELF comparison, decoded natively: sameness and references.

Comparing a rebuilt extension function by function decodes every instruction of both sides,
twice: once to compare the functions, once for the call graph of the invariant checks. capstone
formats each instruction as text and its Python binding builds the strings one instruction at a
time: on numpy's ``_multiarray_umath`` (1.26 M instructions a side) that was most of the
comparison's time. iced-x86 decodes to instruction values without formatting, about five times
faster here, and two decoded instructions compare with ``==``: the same operation, operands,
prefixes and immediates (its ``==`` ignores only the instruction's own address and length).

:func:`surely_same` only ever answers "the same" or "cannot tell". An instruction that refers to
an address (a near branch, a RIP-relative operand) is compared with that address set aside and
the address named on each side by the comparison's own :class:`Symboliser`, as the capstone
path names it: a call re-aimed at another function, or an operand pointed at other data, still
differs. Anything else (another instruction, bytes iced cannot decode, the deadline) is "cannot
tell", and the capstone comparison in :mod:`rebuild.compare.elf_code` decides and writes what
the report shows.

:func:`references` yields what the call graph needs of one function: its system calls, the
addresses its branches reach, the addresses its other instructions load through RIP.

iced-x86 ships wheels for x86 hosts only; elsewhere :data:`AVAILABLE` is false and capstone does
both jobs alone (the same answers, slower).
"""

from __future__ import annotations

import enum
import importlib.util
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rebuild.compare.elf_code import Symboliser

if TYPE_CHECKING:
    from iced_x86 import Instruction

AVAILABLE = importlib.util.find_spec("iced_x86") is not None

Side = tuple[bytes, int, Symboliser]  # code, address, the names of its image


def surely_same(old: Side, new: Side, *, deadline: Callable[[], bool] | None = None) -> bool:
    """True only when both functions are the same instructions once addresses are named."""
    if not AVAILABLE:
        return False
    from iced_x86 import Code, Decoder, OpKind

    (a_code, a_addr, a_names), (b_code, b_addr, b_names) = old, new
    a_within, b_within = (a_addr, len(a_code)), (b_addr, len(b_code))
    theirs = iter(Decoder(64, b_code, ip=b_addr))
    invalid, branch = Code.INVALID, OpKind.NEAR_BRANCH64
    for count, mine in enumerate(Decoder(64, a_code, ip=a_addr), 1):
        if deadline is not None and count % 4096 == 0 and deadline():
            return False
        other = next(theirs, None)
        if other is None or mine.code != other.code or mine.code == invalid:
            return False
        if mine.is_ip_rel_memory_operand:
            if not other.is_ip_rel_memory_operand:
                return False
            targets = mine.ip_rel_memory_address, other.ip_rel_memory_address
            field = "memory_displacement"
        elif mine.op0_kind == branch:
            if other.op0_kind != branch:
                return False
            targets = mine.near_branch_target, other.near_branch_target
            field = "near_branch64"
        elif mine != other:
            return False
        else:
            continue
        if a_names.name(targets[0], within=a_within) != b_names.name(targets[1], within=b_within):
            return False
        if not _same_apart_from(mine, other, field):
            return False
    return next(theirs, None) is None


def _same_apart_from(mine: Instruction, other: Instruction, field: str) -> bool:
    """The two instructions equal once ``field`` (the address each names) is set aside."""
    if getattr(mine, field) != getattr(other, field):
        mine, other = mine.copy(), other.copy()
        setattr(mine, field, 0)
        setattr(other, field, 0)
    return mine == other


class Reference(enum.Enum):
    """What an instruction does that the call graph records."""

    SYSCALL = "syscall"  # syscall, sysenter, int 0x80
    BRANCH = "branch"  # a call or jump to a known address (direct, or through a RIP slot)
    LOAD = "load"  # any other instruction's RIP-relative operand: the address it names


def references(code: bytes, addr: int) -> Iterator[tuple[Reference, int]]:
    """(kind, address) of each instruction of ``code`` that the call graph records.

    A branch through a register reaches no address known here and is not yielded; a SYSCALL's
    address is the instruction's own. Where iced cannot decode, reading resumes at the next
    byte, so what follows is still read (capstone stops there).
    """
    from iced_x86 import Code, Decoder, FlowControl, OpKind

    syscalls = frozenset({Code.SYSCALL, Code.SYSENTER})
    int_imm8, branch, invalid = Code.INT_IMM8, OpKind.NEAR_BRANCH64, Code.INVALID
    through_memory = frozenset({FlowControl.INDIRECT_BRANCH, FlowControl.INDIRECT_CALL})
    decoder = Decoder(64, code, ip=addr)
    for ins in decoder:
        kind = ins.code
        if kind == invalid:
            # Read on from the next byte, not from where iced's guess of the length ends:
            # an instruction hidden behind bytes no decoder reads is still found.
            decoder.position = ins.ip - addr + 1
            decoder.ip = ins.ip + 1
        elif kind in syscalls or (kind == int_imm8 and ins.immediate8 == 0x80):
            yield Reference.SYSCALL, ins.ip
        elif ins.op0_kind == branch:
            yield Reference.BRANCH, ins.near_branch_target
        elif ins.is_ip_rel_memory_operand:
            through = ins.flow_control in through_memory
            yield (Reference.BRANCH if through else Reference.LOAD), ins.ip_rel_memory_address
