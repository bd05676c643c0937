"""Estimated cycles per segment from QEMU's exact counts: every executed instruction is
decoded with capstone, given a class, and costed from its core's table (cores/<core>.toml,
with the sources of its figures), plus the pipeline rules the table names.

What the counts hold (codegen/run/emulate/counting.py): per segment, how often each translated
block ran and how often control passed from one block to the next. That is enough for the
rules that depend on neighbours: a branch is taken when the next block does not start at
its fall-through address, and an instruction's predecessor is the one before it in its
block or, for a block's first instruction, the last instruction of the block the edge came
from. Data addresses are not recorded, so flash wait states on data loads are bounded (see
`assumptions`) rather than counted."""

from __future__ import annotations

import functools
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import capstone
from capstone import arm

from codegen.errors import ArielError
from codegen.run.emulate.counting import Block, Counts, Segment

CORES_DIR = Path(__file__).resolve().parent / "cores"
UNKNOWN = "unknown"  # the class of an instruction no table row covers

# Instructions whose first operand is the base register, the rest the register list.
MULTIPLE_WITH_BASE = {"ldm", "ldmdb", "stm", "stmdb", "vldmia", "vldmdb", "vstmia", "vstmdb"}
MULTIPLE_ON_STACK = {"push", "pop", "vpush", "vpop"}
DOUBLE_WORD = {"ldrd", "strd", "ldrexd", "strexd"}


# ----------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Insn:
    """One decoded instruction: what the cost rules need to know about it."""

    address: int
    size: int  # 2 or 4 bytes
    name: str  # capstone's instruction name ("ldr" for ldr.w and ldrne); "" if undecodable
    text: str  # as disassembled, for messages
    keys: tuple[str, ...]  # table names to look up, most specific first
    writes_pc: bool
    conditional: bool  # B<cond>, CBZ/CBNZ, or inside an IT block
    registers: int  # words a load/store multiple transfers (a D register counts two)
    words: int  # words a load or store transfers (1, 2 for a double, N for a multiple)
    writes: frozenset[int]  # registers written (capstone register ids)
    address_regs: frozenset[int]  # base and index registers of a memory access
    base: str  # for memory accesses: "stack" (SP-based), "literal" (PC-based) or "other"


def thumb_size(code: bytes) -> int:
    """The true length of the Thumb instruction at the start of `code`: 32 bits when its first
    halfword starts with 0b11101, 0b11110 or 0b11111. The plugin's per-instruction bytes can
    hold one halfword too many (QEMU reads ahead at the end of a page and the plugin records
    that read with the instruction), so lengths come from here, not from the plugin."""
    halfword = int.from_bytes(code[:2], "little")
    return 4 if halfword >= 0xE800 else 2


@functools.cache
def _disassembler() -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    md.detail = True
    return md


@functools.cache
def decode_block(pc: int, insns: tuple[bytes, ...]) -> tuple[Insn, ...]:
    """Decode one block (cached: the same code decodes once per process). The block is
    decoded in one pass so that capstone follows IT blocks."""
    sized = [insn[:thumb_size(insn)] for insn in insns]
    addresses = [pc + sum(len(code) for code in sized[:k]) for k in range(len(sized))]
    decoded = list(_disassembler().disasm(b"".join(sized), pc))
    if [d.address for d in decoded] != addresses:
        # Capstone stops at an instruction it cannot decode: decode one at a time instead.
        decoded = [next(_disassembler().disasm(code, address), None)
                   for code, address in zip(sized, addresses, strict=True)]
    return tuple(_undecoded(address, code) if d is None else _describe(d)
                 for d, code, address in zip(decoded, sized, addresses, strict=True))


def _undecoded(address: int, code: bytes) -> Insn:
    return Insn(address, len(code), "", f".inst {code.hex()}", (), False, False, 0, 0,
                frozenset(), frozenset(), "")


def _describe(d) -> Insn:
    name = d.insn_name()
    written = frozenset(d.regs_access()[1])
    writes_pc = arm.ARM_REG_PC in written
    conditional = (name in ("cbz", "cbnz")
                   or (name != "it" and d.cc not in (arm.ARM_CC_AL, arm.ARM_CC_INVALID)))
    registers = [op.reg for op in d.operands if op.type == arm.ARM_OP_REG]
    memory = [op.mem for op in d.operands if op.type == arm.ARM_OP_MEM]
    address_regs: set[int] = set()
    listed = 0
    if memory:
        address_regs = {r for r in (memory[0].base, memory[0].index) if r}
    elif name in MULTIPLE_WITH_BASE and registers:
        address_regs = {registers[0]}
        listed = sum(_words(d, r) for r in registers[1:])
    elif name in MULTIPLE_ON_STACK:
        address_regs = {arm.ARM_REG_SP}
        listed = sum(_words(d, r) for r in registers)
    base = ""
    if address_regs:
        first = memory[0].base if memory else min(address_regs)
        base = {arm.ARM_REG_SP: "stack", arm.ARM_REG_PC: "literal"}.get(first, "other")
    doubles = any(d.reg_name(r).startswith("d") for r in registers)
    if listed:
        words = listed
    elif name in DOUBLE_WORD or (memory and doubles):
        words = 2
    else:
        words = 1
    keys = [name]
    if writes_pc:
        keys = [name, name + "+pc"]  # a branch class by its own name, else the +pc variant
    elif name == "vmov" and any(_is_core(d, r) for r in registers):
        keys = ["vmov+core"]
    elif doubles:
        keys = [name + ".f64", name]
    return Insn(d.address, d.size, name, f"{d.mnemonic} {d.op_str}".strip(), tuple(keys),
                writes_pc, conditional, listed, words, written - {arm.ARM_REG_PC},
                frozenset(address_regs), base)


def _words(d, register: int) -> int:
    return 2 if d.reg_name(register).startswith("d") else 1


def _is_core(d, register: int) -> bool:
    name = d.reg_name(register)
    return name[0] == "r" or name in ("sb", "sl", "fp", "ip", "sp", "lr")


# ----------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class InsnClass:
    name: str
    cycles: int
    per_register: bool = False
    refill: int | None = None  # P when taken; None: not a branch
    memory: str | None = None  # "load" or "store"

    @property
    def is_branch(self) -> bool:
        return self.refill is not None


@dataclass(frozen=True)
class Rule:
    """A cost that depends on the instruction just before: `cycles` more (or fewer, when
    negative) for an instruction of `classes` right after one of `after`."""

    after: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    cycles: int = 0


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: load_core caches
class Core:
    """One core's table: instruction classes and the rules between neighbours."""

    name: str
    description: str
    notes: tuple[str, ...]
    classes: dict[str, InsnClass]
    by_key: dict[str, InsnClass]  # mnemonic key -> class
    fallback: int
    unaligned_wide_target: int
    max_refill: int
    pipelining: Rule  # cycles < 0: a saving
    address_stall: Rule
    path: Path

    def lookup(self, insn: Insn) -> InsnClass | None:
        """The class of `insn`, or None. An instruction that writes the PC is a branch: by
        its own name if that names a branch class, else by its "+pc" key."""
        if insn.writes_pc:
            own = self.by_key.get(insn.name)
            if own is not None and own.is_branch:
                return own
            return self.by_key.get(insn.name + "+pc")
        for key in insn.keys:
            if key in self.by_key:
                return self.by_key[key]
        return None


def core_files() -> list[Path]:
    return sorted(CORES_DIR.glob("*.toml"))


@functools.cache
def load_core(name: str) -> Core:
    """The table of core `name` (a board's `core`, e.g. "cortex-m4")."""
    path = CORES_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in core_files())
        raise ArielError(f"no cycle table for core '{name}'; tables exist for: {known}")
    data = _read_table(path)
    classes = {}
    by_key: dict[str, InsnClass] = {}
    for class_name, entry in data["classes"].items():
        try:
            cls = InsnClass(class_name, int(entry["cycles"]), bool(entry.get("per_register")),
                            entry.get("refill"), entry.get("memory"))
            keys = list(entry["mnemonics"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArielError(f"cycle table '{path}': class {class_name} is invalid: {exc}") \
                from None
        if cls.memory not in (None, "load", "store"):
            raise ArielError(f"cycle table '{path}': class {class_name} has memory "
                             f"'{cls.memory}' (expected load or store)")
        classes[class_name] = cls
        for key in keys:
            if key in by_key:
                raise ArielError(f"cycle table '{path}': '{key}' is in both class "
                                 f"{by_key[key].name} and class {class_name}")
            by_key[key] = cls
    rules = data.get("rules", {})

    def rule(entry: dict, sign: int, amount: str) -> Rule:
        named = set(entry.get("after", [])) | set(entry.get("classes", []))
        if named - set(classes):
            raise ArielError(f"cycle table '{path}': a rule names unknown classes "
                             f"{sorted(named - set(classes))}")
        return Rule(frozenset(entry.get("after", [])), frozenset(entry.get("classes", [])),
                    sign * int(entry.get(amount, 0)))

    return Core(name, data.get("description", name), tuple(data.get("notes", [])), classes,
                by_key, int(data.get("fallback", {}).get("cycles", 1)),
                int(rules.get("unaligned_wide_target", 0)), int(rules.get("max_refill", 99)),
                rule(rules.get("pipelining", {}), -1, "saving"),
                rule(rules.get("address_stall", {}), 1, "cycles"), path)


def _read_table(path: Path) -> dict:
    """A table file as data; one `based_on` another starts from that one's data, its own
    classes added (or replacing the base's of the same name), its rules and notes merged."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ArielError(f"cycle table '{path}' is not valid TOML: {exc}") from None
    if "based_on" not in data:
        return data
    base = _read_table(path.with_name(f"{data['based_on']}.toml"))
    merged = {**base, **{k: v for k, v in data.items() if k not in ("classes", "rules")}}
    merged["classes"] = {**base.get("classes", {}), **data.get("classes", {})}
    merged["rules"] = {**base.get("rules", {}), **data.get("rules", {})}
    merged["notes"] = [*data.get("notes", []), *base.get("notes", [])]
    return merged


# ----------------------------------------------------------------------------- one block


@dataclass(frozen=True)
class BlockCost:
    """What one run of a block costs, its first instruction taken without a predecessor:
    the parts that depend on the edges in and out are added per edge."""

    insns: tuple[Insn, ...]
    classes: tuple[InsnClass | None, ...]
    fallthrough: int
    cycles: dict[str, int]  # class name -> cycles
    instructions: dict[str, int]  # class name -> instructions
    events: dict[str, int]
    load_words: dict[str, int]  # "stack" / "literal" / "other" -> words loaded
    loads: int
    code_bytes: int


def _class_name(cls: InsnClass | None) -> str:
    return cls.name if cls is not None else UNKNOWN


def _base_cycles(core: Core, insn: Insn, cls: InsnClass | None) -> int:
    if cls is None:
        return core.fallback
    return cls.cycles + (insn.registers if cls.per_register else 0)


def _context(core: Core, prev: tuple[Insn, InsnClass | None] | None,
             insn: Insn, cls: InsnClass | None) -> tuple[int, str | None]:
    """Cycles added to `insn` by the instruction executed just before it, and the event."""
    if prev is None or cls is None or prev[1] is None:
        return 0, None
    before, before_cls = prev
    uses_result = bool(before.writes & insn.address_regs)
    rule = core.pipelining
    if cls.name in rule.classes and before_cls.name in rule.after and not uses_result:
        return rule.cycles, "pipelined"
    rule = core.address_stall
    if cls.name in rule.classes and before_cls.name in rule.after and uses_result:
        return rule.cycles, "address stalls"
    return 0, None


def block_cost(core: Core, block: Block) -> BlockCost:
    return _block_cost(core, block.pc, block.insns)


@functools.cache
def _block_cost(core: Core, pc: int, code: tuple[bytes, ...]) -> BlockCost:
    insns = decode_block(pc, code)
    classes = tuple(core.lookup(insn) for insn in insns)
    cycles: Counter[str] = Counter()
    instructions: Counter[str] = Counter()
    events: Counter[str] = Counter()
    load_words: Counter[str] = Counter()
    loads = 0
    prev = None
    for insn, cls in zip(insns, classes, strict=True):
        name = _class_name(cls)
        extra, event = _context(core, prev, insn, cls)
        cycles[name] += _base_cycles(core, insn, cls) + extra
        instructions[name] += 1
        if event:
            events[event] += 1
        if cls is not None and cls.memory == "load":
            loads += 1
            load_words[insn.base] += insn.words
        prev = (insn, cls)
    end = insns[-1].address + insns[-1].size if insns else pc
    return BlockCost(insns, classes, end, dict(cycles), dict(instructions), dict(events),
                     dict(load_words), loads, sum(i.size for i in insns))


def _refill(core: Core, cls: InsnClass, target: BlockCost | None) -> int:
    """P for a taken branch of class `cls` to the block `target` (None: not known)."""
    refill = cls.refill or 0
    if target is not None and target.insns:
        first = target.insns[0]
        if first.size == 4 and first.address % 4 == 2:
            refill += core.unaligned_wide_target
    return min(refill, core.max_refill)


# ----------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Memory:
    """What the board says about memory: flash wait states (0: none) and whether something
    (an accelerator such as ST's ART, or a cache) hides them from instruction fetches."""

    wait_states: int = 0
    fetches_hidden: bool = True


@dataclass
class ClassTotal:
    instructions: int = 0
    cycles: int = 0


@dataclass
class Estimate:
    """Estimated cycles of one segment (or several, added), and the counts behind them."""

    core: str
    memory: Memory
    instructions: int = 0
    core_cycles: int = 0  # from the table, at zero wait states
    by_class: dict[str, ClassTotal] = field(default_factory=dict)
    # "taken branches", "not-taken branches", "refill cycles", "pipelined", "address stalls",
    # "other transfers" (control reached a block that is not the fall-through of a
    # non-branch: an exception entry or return)
    events: dict[str, int] = field(default_factory=dict)
    loads: int = 0  # load instructions executed
    load_words: dict[str, int] = field(default_factory=dict)  # by base: stack/literal/other
    code_bytes: int = 0  # bytes of instructions executed

    @property
    def unknown(self) -> int:
        """Instructions no table row covers (costed `fallback` cycles each)."""
        total = self.by_class.get(UNKNOWN)
        return total.instructions if total else 0

    @property
    def fetches(self) -> int:
        """32-bit instruction fetches: the code executed, a word at a time, plus one fresh
        fetch after every taken branch."""
        return -(-self.code_bytes // 4) + self.events.get("taken branches", 0)

    @property
    def fetch_stalls(self) -> int:
        if self.memory.fetches_hidden:
            return 0
        return self.memory.wait_states * self.fetches

    @property
    def flash_loads(self) -> int:
        """Words that certainly come from flash: PC-relative (literal pool) loads."""
        return self.load_words.get("literal", 0)

    @property
    def maybe_flash_loads(self) -> int:
        """Words that may come from flash (weights, constant tables) or from RAM
        (activations): loads neither from the stack nor PC-relative."""
        return self.load_words.get("other", 0)

    @property
    def cycles(self) -> int:
        """The estimate: table cycles, fetch wait states, and wait states on the loads that
        certainly read flash; other loads are taken to read RAM."""
        return self.core_cycles + self.fetch_stalls + self.memory.wait_states * self.flash_loads

    @property
    def cycles_upper(self) -> int:
        """As `cycles`, but with every load that may read flash paying its wait states."""
        return self.cycles + self.memory.wait_states * self.maybe_flash_loads

    @property
    def cpi(self) -> float:
        return self.cycles / self.instructions if self.instructions else 0.0

    def __add__(self, other: Estimate) -> Estimate:
        if (self.core, self.memory) != (other.core, other.memory):
            raise ValueError("only estimates for the same core and memory add up")
        total = Estimate(self.core, self.memory, self.instructions + other.instructions,
                         self.core_cycles + other.core_cycles,
                         loads=self.loads + other.loads,
                         code_bytes=self.code_bytes + other.code_bytes)
        for part in (self, other):
            for name, value in part.by_class.items():
                entry = total.by_class.setdefault(name, ClassTotal())
                entry.instructions += value.instructions
                entry.cycles += value.cycles
            _add(total.events, part.events)
            _add(total.load_words, part.load_words)
        return total


def _add(into: dict[str, int], counts: dict[str, int], times: int = 1) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0) + value * times


def estimate(counts: Counts, segment: Segment, core: Core | str,
             memory: Memory | None = None) -> Estimate:
    """Estimated cycles of `segment` of a counting run made with edges=True."""
    if not counts.has_edges:
        raise ArielError("estimating cycles needs the block-to-block edges: count with "
                         "edges=True")
    core = load_core(core) if isinstance(core, str) else core
    result = Estimate(core.name, memory or Memory())
    costs = {b: block_cost(core, counts.blocks[b]) for b in segment.executions}

    def charge(class_name: str, cycles: int, instructions: int = 0) -> None:
        entry = result.by_class.setdefault(class_name, ClassTotal())
        entry.cycles += cycles
        entry.instructions += instructions
        result.core_cycles += cycles
        result.instructions += instructions

    for b, runs in segment.executions.items():
        cost = costs[b]
        for name, n in cost.instructions.items():
            charge(name, cost.cycles.get(name, 0) * runs, n * runs)
        _add(result.events, cost.events, runs)
        _add(result.load_words, cost.load_words, runs)
        result.loads += cost.loads * runs
        result.code_bytes += cost.code_bytes * runs

    left = dict(segment.executions)  # runs whose way out is not in this segment's edges
    for (source, target), n in segment.edges.items():
        if source is None:
            continue
        after = costs[target]
        before = costs.get(source) or block_cost(core, counts.blocks[source])
        if not before.insns or not after.insns:
            continue
        # The target's first instruction, after the source's last.
        extra, event = _context(core, (before.insns[-1], before.classes[-1]),
                                after.insns[0], after.classes[0])
        if event:
            charge(after.classes[0].name, extra * n)
            _add(result.events, {event: n})
        if source not in left:
            continue  # the edge into a segment's first block: its source ran, and is costed,
            # in the previous segment
        left[source] -= n
        # The source's last instruction: a branch, taken or not.
        last, cls = before.insns[-1], before.classes[-1]
        leaves = counts.blocks[target].pc != before.fallthrough
        if cls is not None and cls.is_branch:
            if leaves or not last.conditional:
                refill = _refill(core, cls, after)
                charge(cls.name, refill * n)
                _add(result.events, {"taken branches": n, "refill cycles": refill * n})
            else:
                _add(result.events, {"not-taken branches": n})
        elif leaves:
            _add(result.events, {"other transfers": n})

    # A segment's last block hands over to a block of the next segment: that edge is not
    # here. An unconditional branch is taken all the same; a conditional one is assumed not.
    for b, runs in left.items():
        cost = costs[b]
        if runs <= 0 or not cost.insns or cost.classes[-1] is None:
            continue
        cls = cost.classes[-1]
        if cls.is_branch and not cost.insns[-1].conditional:
            refill = _refill(core, cls, None)
            charge(cls.name, refill * runs)
            _add(result.events, {"taken branches": runs, "refill cycles": refill * runs})
        elif cls.is_branch:
            _add(result.events, {"not-taken branches": runs})
    return result


def estimate_segments(counts: Counts, core: Core | str,
                      memory: Memory | None = None) -> list[Estimate]:
    """One estimate per segment of the run."""
    return [estimate(counts, segment, core, memory) for segment in counts.segments]


def total(estimates: Iterable[Estimate]) -> Estimate:
    """The sum of several estimates (e.g. every layer of an inference)."""
    estimates = list(estimates)
    if not estimates:
        raise ValueError("no estimates to add")
    result = estimates[0]
    for other in estimates[1:]:
        result = result + other
    return result


def assumptions(core: Core | str, memory: Memory | None = None) -> list[str]:
    """Every assumption behind an estimate for `core` with `memory`, one sentence each."""
    core = load_core(core) if isinstance(core, str) else core
    memory = memory or Memory()
    ws = memory.wait_states
    lines = [
        f"cycles are the {core.name} table's per-class figures at zero wait states "
        f"({core.path.name}), plus only the neighbour rules listed here: no bus contention, "
        "write-buffer, interrupt or debug stalls",
        "a branch is taken when the next block QEMU ran does not start at its fall-through "
        "address (unconditional branches always are); at a segment's end, the one branch "
        "whose successor lies in the next segment is taken if unconditional, else not",
        "instruction lengths come from the instruction's first halfword (the plugin's bytes "
        "can hold a read-ahead halfword at the end of a page)",
        *core.notes,
    ]
    if ws == 0:
        lines.append("flash has no wait states (0 passed): fetches and loads never wait")
        return lines
    if memory.fetches_hidden:
        lines.append("instruction fetches hit the flash accelerator or cache: no wait states")
    else:
        lines.append(f"every 32-bit instruction fetch from flash waits {ws} cycles (code "
                     "bytes executed / 4, plus one fetch per taken branch): an upper bound, "
                     "since prefetching overlaps fetches with multi-cycle instructions")
    lines += [
        "data addresses are not recorded, so loads are sorted by their base register: "
        "SP-based loads read RAM (no wait), PC-based (literal pool) loads read flash "
        f"({ws} wait states per word)",
        "other loads (weights and constant tables in flash, activations in RAM) are taken to "
        f"read RAM in `cycles` and flash in `cycles_upper` ({ws} wait states per word "
        "loaded, LDM and VLDM counting every register, every load paying them even when it "
        "pipelines): the true figure lies between",
        "stores never wait (they go to RAM, through the write buffer)",
    ]
    return lines
