"""The stack a firmware needs, read from its code before it runs: each function's frame and
the deepest chain of calls through the linked ELF, from the reset handler, plus what an
exception taken at that deepest point adds.

Frames come from gcc's own figures (the `.su` files `-fstack-usage` writes beside each
object) for the code ariel compiles, and from the prologue (pushes and `sub sp`) for library
code (newlib, libgcc), which has no `.su` file. Calls come from the machine code (capstone,
Thumb): BL, a branch into another function (a tail call, which leaves its caller's frame
first), and a call through a register loaded from a literal pool (the fault handler's
`ldr r2, =fault_report; bx r2`). Any other call through a register (the adaptive
dispatcher's table of stages) is taken as a call to each function whose address the image
holds as data. What the code does not show cannot be bounded here: recursion, a frame that
grows at run time (alloca, a variable-length array), an indirect call where no function's
address is held. Those are listed in `unbounded`, the figure is then a lower bound, and the
high-water check after every run (stack_usage.py) is what guards it."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import capstone
import numpy as np
from capstone import arm
from elftools.elf.elffile import ELFFile

# What the core pushes when it takes an exception: eight words (r0-r3, r12, lr, pc, xPSR),
# with the FPU's lazy context (s0-s15, FPSCR and a reserved word) eighteen more, and up to
# one word of padding to keep the frame 8-byte aligned (Armv7-M ARM B1.5.7).
EXCEPTION_FRAME = 8 * 4 + 4
EXCEPTION_FRAME_FP = 26 * 4 + 4

# A stack raised above the board's figure is rounded up to a multiple of this, which also
# leaves room for the profiling build's hooks (the same code with a call around each kernel).
STACK_ROUNDING = 256

# One line of a .su file: "path:line:column:function<TAB>bytes<TAB>qualifier".
_SU_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+):(?P<name>[^\t]+)\t"
                      r"(?P<bytes>\d+)\t(?P<kind>\S+)\s*$")


@dataclass
class Function:
    """One function of the ELF: where it lies, its frame, and whom it calls."""

    name: str
    source: str  # the .su file's source path, else the ELF's file symbol ("" if none)
    start: int
    end: int
    frame: int = 0
    frame_from: str = "prologue"  # "gcc" (-fstack-usage) or "prologue" (read from the code)
    # Stores that push (SP pre-decremented) in the body, after the prologue: inline
    # assembly's (ariel_dot_4x2_s16 pushes its end pointer for the length of its loop), which
    # gcc's figure leaves out; gcc's own frames grow by PUSH, STMDB and SUB.
    body_pushed: int = 0
    dynamic: bool = False  # the frame grows at run time by an amount the code does not bound
    calls: set[int] = field(default_factory=set)  # callee start addresses
    tail_calls: set[int] = field(default_factory=set)
    indirect: list[int] = field(default_factory=list)  # calls through unknown registers
    weak: bool = False  # named by a weak symbol (an alias of a handler)

    @property
    def base(self) -> str:
        """The source function's name: gcc's clones (n01_conv.constprop.0, .isra, .part)
        keep it before the first dot."""
        return self.name.split(".")[0]


@dataclass
class FunctionStack:
    """A function's own frame and the deepest stack from its entry down (its frame and its
    deepest callee chain), for the report and ariel.json."""

    name: str
    source: str
    frame: int
    depth: int
    frame_from: str = "gcc"  # "gcc" (its .su file) or "prologue" (read from the code)

    def to_dict(self) -> dict:
        return {"fn": self.name, "source": self.source, "frame": self.frame,
                "frame_from": self.frame_from, "depth": self.depth}


@dataclass
class StackNeed:
    """The stack a firmware needs, from its code."""

    deepest: int  # bytes from the reset handler's entry to the end of the deepest chain
    chain: list[FunctionStack]  # the functions along that chain, the reset handler first
    exception: int  # an exception taken there: the hardware frame and the deepest handler
    handler: str  # that handler
    kernels: list[FunctionStack]  # each kernel's frame and depth, in address order
    unbounded: list[str]  # what the figure cannot include (recursion, dynamic frames, ...)
    assumed: list[str] = field(default_factory=list)  # how indirect calls were followed

    @property
    def total(self) -> int:
        return self.deepest + self.exception

    @property
    def deepest_kernel(self) -> FunctionStack | None:
        """The kernel on the deepest chain (None if the deepest chain runs through none)."""
        kernels = {(k.name, k.source) for k in self.kernels}
        return next((f for f in self.chain if (f.name, f.source) in kernels), None)

    def describe_chain(self) -> str:
        return " > ".join(f.name for f in self.chain)

    def to_dict(self) -> dict:
        kernel = self.deepest_kernel
        return {"need": self.total, "deepest_chain": self.deepest,
                "chain": [f.name for f in self.chain], "exception": self.exception,
                "exception_handler": self.handler,
                "deepest_kernel": kernel.to_dict() if kernel else None,
                "kernels": [k.to_dict() for k in self.kernels],
                "unbounded": self.unbounded, "indirect_calls": self.assumed}


@dataclass
class StackPlan:
    """How much stack a build reserves, and why."""

    need: StackNeed
    reserved: int  # bytes the linker script gives the stack
    board_bytes: int  # the board file's stack_bytes

    @property
    def raised(self) -> bool:
        return self.reserved > self.board_bytes

    def to_dict(self) -> dict:
        return {"reserved": self.reserved, "board": self.board_bytes, **self.need.to_dict()}


def stack_to_reserve(need: StackNeed, board_bytes: int) -> int:
    """The board's stack, or the code's need rounded up where that is more."""
    if need.total <= board_bytes:
        return board_bytes
    return -(-need.total // STACK_ROUNDING) * STACK_ROUNDING


def stack_usage_files(build: Path, profile: bool = False) -> list[Path]:
    """The .su files of the firmware built in `build` (build/, or with `profile` the
    profiling firmware's build/profile/)."""
    if profile:
        return sorted((Path(build) / "profile").rglob("*.su"))
    return sorted(p for p in Path(build).rglob("*.su")
                  if "profile" not in p.relative_to(build).parts)


def su_files_for(elf: Path) -> list[Path]:
    """The .su files gcc wrote beside the objects of `elf` (an ELF in a build folder's
    build/: firmware.elf, or the profiling firmware-profile.elf)."""
    return stack_usage_files(Path(elf).parent, profile=Path(elf).stem.endswith("-profile"))


def read_stack_usage(files: Iterable[Path]) -> dict[tuple[str, str], tuple[int, str]]:
    """(source path, function name) -> (frame bytes, gcc's qualifier: static, dynamic or
    dynamic,bounded), from -fstack-usage files."""
    frames = {}
    for path in files:
        for line in Path(path).read_text().splitlines():
            match = _SU_LINE.match(line)
            if match:
                key = (match["file"], match["name"])
                size, kind = int(match["bytes"]), match["kind"]
                # Two clones of one function (foo.constprop twice) share a line: the larger.
                frames[key] = max(frames.get(key, (size, kind)), (size, kind))
    return frames


def analyse_stack(elf: Path, su_files: Iterable[Path] = (), fpu: bool = True,
                  kernels: Collection[str] | None = None) -> StackNeed:
    """The stack `elf` needs. `su_files`: gcc's -fstack-usage output for the sources it was
    built from; `fpu`: whether exceptions stack the FPU's registers; `kernels`: the names of
    the model's kernel functions, reported one by one (None: the functions a model's run
    function, `<prefix>_run`, calls)."""
    program = _read_program(Path(elf))
    _apply_su(program.functions, read_stack_usage(su_files))
    graph = _Depths(program)
    reset = program.function_at(program.vectors[0]) if program.vectors else None
    if reset is None:
        raise ValueError(f"{elf}: no reset handler in the vector table")
    deepest = graph.depth(reset)
    chain = graph.chain(reset)
    handlers = [f for f in (program.function_at(a) for a in program.vectors[1:])
                if f is not None and f is not reset]
    frame = EXCEPTION_FRAME_FP if fpu else EXCEPTION_FRAME
    handler = max(handlers, key=graph.depth, default=None)
    exception = frame + (graph.depth(handler) if handler else 0)
    if kernels is None:
        kernels = _called_by_run_functions(program)
    kernel_stacks = [graph.stack_of(f) for f in program.ordered() if f.base in kernels]
    return StackNeed(deepest, [graph.stack_of(f) for f in chain], exception,
                     handler.name if handler else "", kernel_stacks,
                     sorted(set(graph.unbounded)), sorted(set(graph.assumed)))


def _called_by_run_functions(program: _Program) -> set[str]:
    """The kernels of the generated models: what a `<prefix>_run` function calls directly,
    other run functions (the adaptive dispatcher's stages) left out."""
    runs = [f for f in program.functions.values()
            if f.base.endswith("_run") and not f.source.startswith("firmware/")]
    return {callee.base for run in runs for callee in map(program.function_at, run.calls)
            if callee is not None and not callee.base.endswith("_run")}


def need_of(elf: Path | None) -> StackNeed | None:
    """The stack need of a built ELF, from the .su files beside its objects (or from its
    prologues alone); None where it cannot be read (no ELF, no symbols)."""
    if elf is None or not Path(elf).is_file():
        return None
    try:
        return analyse_stack(elf, su_files_for(elf))
    except (OSError, ValueError):
        return None


def describe_need(need: StackNeed, reserved: int | None) -> str:
    """The code's stack need against the reserved stack, naming the deepest kernel."""
    text = f"the code's deepest call chain needs {need.total:,} B"
    if reserved is not None:
        text += f" of the {reserved:,} B reserved"
    kernel = need.deepest_kernel
    if kernel is not None:
        text += f" (deepest kernel {kernel.name}, frame {kernel.frame:,} B)"
    return text


# ----------------------------------------------------------------------------- the ELF


@dataclass
class _Program:
    functions: dict[int, Function]  # by start address
    vectors: list[int]  # exception handlers' addresses, the reset handler first
    address_taken: list[int] = field(default_factory=list)  # functions held as data

    def function_at(self, address: int) -> Function | None:
        """The function whose code holds `address` (Thumb bit ignored)."""
        address &= ~1
        if address in self.functions:
            return self.functions[address]
        return next((f for f in self.functions.values() if f.start <= address < f.end), None)

    def ordered(self) -> list[Function]:
        return [self.functions[a] for a in sorted(self.functions)]


def _read_program(elf: Path) -> _Program:
    with open(elf, "rb") as handle:
        image = ELFFile(handle)
        symbols = image.get_section_by_name(".symtab")
        if symbols is None:
            raise ValueError(f"{elf}: no symbol table")
        functions: dict[int, Function] = {}
        data_marks: list[int] = []
        code_marks: list[int] = []
        current_file = ""
        for sym in symbols.iter_symbols():
            kind = sym["st_info"]["type"]
            if kind == "STT_FILE":
                current_file = sym.name
            elif sym.name.startswith("$d"):
                data_marks.append(sym["st_value"])
            elif sym.name.startswith("$t"):
                code_marks.append(sym["st_value"])
            elif kind == "STT_FUNC":
                start = sym["st_value"] & ~1
                local = sym["st_info"]["bind"] == "STB_LOCAL"
                # Aliases (a weak handler and the one it stands for) share one entry,
                # named after the strong symbol.
                if start not in functions or functions[start].weak:
                    functions[start] = Function(sym.name, current_file if local else "",
                                                start, start + sym["st_size"],
                                                weak=sym["st_info"]["bind"] == "STB_WEAK")
        sections = [(s["sh_addr"], s.data()) for s in image.iter_sections()
                    if s["sh_type"] == "SHT_PROGBITS" and s["sh_flags"] & 0x4]  # executable
        data = [(s["sh_addr"], s.data()) for s in image.iter_sections()
                if s["sh_type"] == "SHT_PROGBITS" and s["sh_flags"] & 0x2  # allocated
                and s.name != ".isr_vector"]
        vectors = _vector_table(image)
    _extend_unsized(functions, sections)
    program = _Program(functions, vectors, _address_taken(functions, data))
    marks = sorted([(a, "d") for a in data_marks] + [(a, "t") for a in code_marks])
    for function in functions.values():
        code = _bytes_at(sections, function.start, function.end - function.start)
        if code is not None:
            _scan(function, code, _code_ranges(function, marks), program, sections)
    return program


def _extend_unsized(functions: dict[int, Function], sections) -> None:
    """Give a function whose symbol has no size (libgcc's assembly, such as
    __aeabi_ldivmod) the code up to the next function or the end of its section."""
    starts = sorted(functions)
    for index, start in enumerate(starts):
        function = functions[start]
        if function.end > function.start:
            continue
        ends = [base + len(data) for base, data in sections if base <= start < base + len(data)]
        following = starts[index + 1] if index + 1 < len(starts) else None
        function.end = min(x for x in [*ends, following] if x is not None) if ends else start


def _vector_table(image: ELFFile) -> list[int]:
    """The handler addresses of the vector table (word 0, the initial SP, left out)."""
    table = image.get_section_by_name(".isr_vector")
    if table is None:
        return []
    raw = table.data()
    words = [int.from_bytes(raw[i:i + 4], "little") for i in range(4, len(raw) - 3, 4)]
    seen: list[int] = []
    for word in words:
        if word & 1 and word not in seen:
            seen.append(word)
    return seen


def _address_taken(functions: dict[int, Function], sections: list[tuple[int, bytes]]
                   ) -> list[int]:
    """Functions whose Thumb address some aligned word of the image holds (a table of
    function pointers, a literal pool): the possible targets of a call through a register.
    A word of code or weights that happens to equal one only adds a caller that cannot
    happen, which errs on the safe side."""
    entries = np.array(sorted(start | 1 for start in functions), dtype=np.uint32)
    found: set[int] = set()
    for address, raw in sections:
        skip = -address % 4
        count = (len(raw) - skip) // 4
        words = np.frombuffer(raw, dtype="<u4", count=max(count, 0), offset=skip)
        found.update(int(w) & ~1 for w in np.unique(words[np.isin(words, entries)]))
    return sorted(found)


def _bytes_at(sections, address: int, size: int) -> bytes | None:
    for base, data in sections:
        if base <= address and address + size <= base + len(data):
            return data[address - base:address - base + size]
    return None


def _code_ranges(function: Function, marks: list[tuple[int, str]]) -> list[tuple[int, int]]:
    """The parts of `function` that hold instructions: the mapping symbols ($t, $d) of the
    Arm ELF ABI say where literal pools and jump tables lie."""
    ranges, start = [], function.start
    state = "t"
    for address, kind in marks:
        if address <= function.start:
            state = kind
            continue
        if address >= function.end:
            break
        if kind != state:
            if state == "t":
                ranges.append((start, address))
            start, state = address, kind
    if state == "t":
        ranges.append((start, function.end))
    return [(a, b) for a, b in ranges if b > a]


@functools.cache
def _disassembler() -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    md.detail = True
    return md


def _instructions(code: bytes, base: int, ranges: list[tuple[int, int]]):
    """The decoded instructions of the code ranges; an undecodable halfword is skipped."""
    md = _disassembler()
    for start, end in ranges:
        address = start
        while address < end:
            decoded = None
            for decoded in md.disasm(code[address - base:end - base], address):
                yield decoded
            address = decoded.address + decoded.size + 2 if decoded else address + 2


def _scan(function: Function, code: bytes, ranges, program: _Program, sections) -> None:
    """Calls and the prologue's frame of one function."""
    literals: dict[int, int] = {}  # register -> value loaded from a literal pool
    prologue = True
    for insn in _instructions(code, function.start, ranges):
        ident, ops = insn.id, insn.operands
        target = ops[0].imm if ops and ops[0].type == arm.ARM_OP_IMM else None
        if ident in (arm.ARM_INS_BL, arm.ARM_INS_BLX) and target is not None:
            function.calls.add(target & ~1)
        elif ident in (arm.ARM_INS_B, arm.ARM_INS_BX, arm.ARM_INS_BLX) and target is not None:
            if not function.start <= target < function.end:
                function.tail_calls.add(target & ~1)
        elif ident in (arm.ARM_INS_BLX, arm.ARM_INS_BX) and ops[0].type == arm.ARM_OP_REG:
            register = ops[0].reg
            if register == arm.ARM_REG_LR:
                continue
            known = literals.get(register)
            if known is not None and program.function_at(known) is not None:
                (function.calls if ident == arm.ARM_INS_BLX else function.tail_calls).add(
                    known & ~1)
            else:
                function.indirect.append(insn.address)
        elif ident == arm.ARM_INS_LDR and _is_literal_load(insn):
            value = _literal(insn, sections)
            if value is not None:
                literals[ops[0].reg] = value
                continue
        pushed = _pushed(insn)
        function.frame += pushed
        prologue = prologue and pushed > 0
        if not prologue and insn.id in (arm.ARM_INS_STR, arm.ARM_INS_STRD):
            function.body_pushed += pushed
        if _grows_by_register(insn):
            function.dynamic = True
        for register in insn.regs_access()[1]:
            literals.pop(register, None)


def _is_literal_load(insn) -> bool:
    mem = [op.mem for op in insn.operands if op.type == arm.ARM_OP_MEM]
    return bool(mem) and mem[0].base == arm.ARM_REG_PC and not mem[0].index


def _literal(insn, sections) -> int | None:
    mem = next(op.mem for op in insn.operands if op.type == arm.ARM_OP_MEM)
    address = ((insn.address + 4) & ~3) + mem.disp
    raw = _bytes_at(sections, address, 4)
    return None if raw is None else int.from_bytes(raw, "little")


def _pushed(insn) -> int:
    """Bytes this instruction moves the stack pointer down by (0 if none)."""
    ident, ops = insn.id, insn.operands
    if ident in (arm.ARM_INS_PUSH, arm.ARM_INS_VPUSH):
        return sum(8 if insn.reg_name(op.reg).startswith("d") else 4 for op in ops)
    if ident == arm.ARM_INS_STMDB and ops and ops[0].reg == arm.ARM_REG_SP and insn.writeback:
        return 4 * (len(ops) - 1)
    if (ident in (arm.ARM_INS_SUB, arm.ARM_INS_SUBW) and ops
            and ops[0].type == arm.ARM_OP_REG and ops[0].reg == arm.ARM_REG_SP
            and ops[-1].type == arm.ARM_OP_IMM):
        return ops[-1].imm
    if ident in (arm.ARM_INS_STR, arm.ARM_INS_STRD) and insn.writeback:
        mem = [op.mem for op in ops if op.type == arm.ARM_OP_MEM]
        if mem and mem[0].base == arm.ARM_REG_SP and mem[0].disp < 0:
            return -mem[0].disp
    return 0


def _grows_by_register(insn) -> bool:
    """`sub sp, sp, rN`: a frame sized at run time."""
    ops = insn.operands
    return (insn.id == arm.ARM_INS_SUB and len(ops) >= 2 and ops[0].type == arm.ARM_OP_REG
            and ops[0].reg == arm.ARM_REG_SP and ops[-1].type == arm.ARM_OP_REG)


def _apply_su(functions: dict[int, Function], frames: dict[tuple[str, str], tuple[int, str]]
              ) -> None:
    """Put gcc's frame figures on the functions it compiled: a local function by its file
    and name, a global one by its name."""
    by_name: dict[str, list[tuple[str, int, str]]] = {}
    for (path, name), (size, kind) in frames.items():
        by_name.setdefault(name, []).append((path, size, kind))
    for function in functions.values():
        # gcc names a clone in the .su file without its number (leaf.constprop for the
        # symbol leaf.constprop.0).
        name = re.sub(r"\.\d+$", "", function.name)
        candidates = by_name.get(name, [])
        if function.source:
            candidates = [c for c in candidates if Path(c[0]).name == function.source]
        if len(candidates) != 1:
            continue
        path, size, kind = candidates[0]
        function.source, function.frame, function.frame_from = (
            path, size + function.body_pushed, "gcc")
        function.dynamic = kind == "dynamic"


# ----------------------------------------------------------------------------- depths


class _Depths:
    """Deepest stack below each function's entry, memoized, with the chain that gives it.
    A cycle (recursion) counts once around and is reported."""

    def __init__(self, program: _Program):
        self.program = program
        self.memo: dict[int, int] = {}
        self.next: dict[int, int | None] = {}
        self.active: list[int] = []
        self.unbounded: list[str] = []
        self.assumed: list[str] = []

    def depth(self, function: Function) -> int:
        start = function.start
        if start in self.memo:
            return self.memo[start]
        if start in self.active:
            names = [self.program.functions[a].name for a in self.active]
            cycle = names[names.index(function.name):] + [function.name]
            self.unbounded.append("recursion " + " > ".join(cycle))
            return 0
        self.active.append(start)
        if function.dynamic:
            self.unbounded.append(f"{function.name}: a frame that grows at run time")
        calls = [(t, False) for t in sorted(function.calls)]
        calls += [(t, True) for t in sorted(function.tail_calls)]
        if function.indirect:
            targets = self.program.address_taken
            names = ", ".join(self.program.functions[t].name for t in targets)
            if targets:
                self.assumed.append(f"{function.name} calls through a register: taken as "
                                    f"any of {names}")
            else:
                self.unbounded.append(f"{function.name}: a call through a register, and no "
                                      "function's address is held as data")
            calls += [(t, False) for t in targets]
        best, best_next = function.frame, None
        for target, releases in calls:
            callee = self.program.function_at(target)
            if callee is None:
                self.unbounded.append(f"{function.name}: a call to 0x{target:08X}, which no "
                                      "symbol names")
                continue
            # A tail call leaves the caller's frame before it branches.
            total = self.depth(callee) + (0 if releases else function.frame)
            if total > best:
                best, best_next = total, callee.start
        self.active.pop()
        self.memo[start], self.next[start] = best, best_next
        return best

    def chain(self, function: Function) -> list[Function]:
        chain, start = [], function.start
        while start is not None and len(chain) <= len(self.program.functions):
            chain.append(self.program.functions[start])
            start = self.next.get(start)
        return chain

    def stack_of(self, function: Function) -> FunctionStack:
        return FunctionStack(function.name, function.source, function.frame,
                             self.depth(function), function.frame_from)
