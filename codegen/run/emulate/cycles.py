"""Estimated cycles per segment from QEMU's exact counts: every executed instruction is
decoded with capstone, given a class, and costed from its core's table (cores/<core>.toml,
with the sources of its figures), plus the pipeline rules the table names.

What the counts hold (codegen/run/emulate/counting.py): per segment, how often each translated
block ran and how often control passed from one block to the next. That is enough for the
rules that depend on neighbours: a branch is taken when the next block does not start at
its fall-through address, and an instruction's predecessor is the one before it in its
block or, for a block's first instruction, the last instruction of the block the edge came
from. Counted with the board's flash model (counting.py, flash=True), each segment also
holds what the board's flash caches did with its instruction fetches and data loads, and
the estimate charges the wait states of every miss; without it they are bounded (see
`assumptions`).

Two kinds of core are modelled: single-issue cores (Cortex-M0+, M4, M33), where every
instruction costs its table figure plus the neighbour rules, and the dual-issue Cortex-M7,
whose table also says which instructions pair, which must issue alone, and how long results
take (the core file's [issue] table), and which predicts branches."""

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
from codegen.run.emulate.counting import Block, Counts, FlashCounts, Segment
from codegen.target.boards import FlashCaches

CORES_DIR = Path(__file__).resolve().parent / "cores"
UNKNOWN = "unknown"  # the class of an instruction no table row covers

# Instructions whose first operand is the base register, the rest the register list.
MULTIPLE_WITH_BASE = {"ldm", "ldmdb", "stm", "stmdb", "vldmia", "vldmdb", "vstmia", "vstmdb"}
MULTIPLE_ON_STACK = {"push", "pop", "vpush", "vpop"}
DOUBLE_WORD = {"ldrd", "strd", "ldrexd", "strexd"}
# Multiply-accumulates whose accumulator is the first two register operands (RdLo, RdHi);
# for the other accumulating multiplies it is the last register operand (Ra).
LONG_ACCUMULATE = {"smlal", "umlal", "umaal", "smlalbb", "smlalbt", "smlaltb", "smlaltt",
                   "smlald", "smlaldx", "smlsld", "smlsldx"}
ACCUMULATE = {"mla", "mls", "smlabb", "smlabt", "smlatb", "smlatt", "smlad", "smladx",
              "smlawb", "smlawt", "smlsd", "smlsdx", "smmla", "smmlar", "smmls", "smmlsr",
              "usada8"} | LONG_ACCUMULATE


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
    reads: frozenset[int] = frozenset()  # registers read
    indexed: bool = False  # a memory access whose address adds an index register
    accumulators: frozenset[int] = frozenset()  # a multiply-accumulate's accumulator inputs


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
    read, written = (frozenset(r) for r in d.regs_access())
    writes_pc = arm.ARM_REG_PC in written
    conditional = (name in ("cbz", "cbnz")
                   or (name != "it" and d.cc not in (arm.ARM_CC_AL, arm.ARM_CC_INVALID)))
    registers = [op.reg for op in d.operands if op.type == arm.ARM_OP_REG]
    memory = [op.mem for op in d.operands if op.type == arm.ARM_OP_MEM]
    accumulators: frozenset[int] = frozenset()
    if name in LONG_ACCUMULATE:
        accumulators = frozenset(registers[:2])
    elif name in ACCUMULATE and registers:
        accumulators = frozenset(registers[-1:])
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
                frozenset(address_regs), base, read - {arm.ARM_REG_PC},
                bool(memory and memory[0].index), accumulators)


def _words(d, register: int) -> int:
    return 2 if d.reg_name(register).startswith("d") else 1


def _is_core(d, register: int) -> bool:
    name = d.reg_name(register)
    return name[0] == "r" or name in ("sb", "sl", "fp", "ip", "sp", "lr")


# ----------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class InsnClass:
    name: str
    cycles: int  # the estimate's figure (for a range: its typical value, see `worst`)
    per_register: bool = False
    refill: int | None = None  # P when taken; None: not a branch
    memory: str | None = None  # "load" or "store"
    worst: int | None = None  # the top of a range (e.g. a divide's), for the upper bound
    # Dual-issue cores ([issue] in the core file): the pipe the instruction uses, whether it
    # must issue alone or first of a pair, when its result can be used (1: the next cycle),
    # and whether the core predicts it when it is a branch.
    unit: str | None = None
    single_issue: bool = False
    first_only: bool = False
    latency: int = 1
    predicted: bool = False

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
    issue_width: int = 1
    dual_units: frozenset[str] = frozenset()  # pipes of which a pair may use two
    mispredict: int = 0  # cycles a mispredicted branch costs (cores that predict)
    # A store with an immediate offset costs this instead of its class figure (None: no rule)
    store_immediate: int | None = None
    options: tuple[tuple[str, str], ...] = ()

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


ISSUE_KEYS = {"unit", "single_issue", "first_only", "latency", "predicted"}


@functools.cache
def load_core(name: str, options: tuple[tuple[str, str], ...] = ()) -> Core:
    """The table of core `name` (a board's `core`, e.g. "cortex-m4"), with the `options` the
    chip maker chose (a board's core_options, as sorted (name, value) pairs)."""
    path = CORES_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in core_files())
        raise ArielError(f"no cycle table for core '{name}'; tables exist for: {known}")
    data = _read_table(path)
    _apply_options(data, dict(options), path)
    classes = {}
    by_key: dict[str, InsnClass] = {}
    issue = data.get("issue", {})
    if set(issue) - set(data["classes"]):
        raise ArielError(f"cycle table '{path}': [issue] names unknown classes "
                         f"{sorted(set(issue) - set(data['classes']))}")
    for class_name, entry in data["classes"].items():
        pipe = issue.get(class_name, {})
        try:
            if set(pipe) - ISSUE_KEYS:
                raise ValueError(f"unknown [issue] keys {sorted(set(pipe) - ISSUE_KEYS)}")
            cls = InsnClass(class_name, int(entry["cycles"]), bool(entry.get("per_register")),
                            entry.get("refill"), entry.get("memory"), entry.get("worst"),
                            pipe.get("unit"), bool(pipe.get("single_issue")),
                            bool(pipe.get("first_only")), int(pipe.get("latency", 1)),
                            bool(pipe.get("predicted")))
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

    pipeline = data.get("pipeline", {})
    store = rules.get("store_immediate")
    return Core(name, data.get("description", name), tuple(data.get("notes", [])), classes,
                by_key, int(data.get("fallback", {}).get("cycles", 1)),
                int(rules.get("unaligned_wide_target", 0)), int(rules.get("max_refill", 99)),
                rule(rules.get("pipelining", {}), -1, "saving"),
                rule(rules.get("address_stall", {}), 1, "cycles"), path,
                int(pipeline.get("issue_width", 1)),
                frozenset(pipeline.get("dual_units", [])),
                int(pipeline.get("mispredict", 0)),
                None if store is None else int(store["cycles"]), options)


def _apply_options(data: dict, chosen: dict[str, str], path: Path) -> None:
    """Set the classes' figures an option selects ([options.NAME] in the core file: its
    `default` value and, per value, class name -> cycles)."""
    known = data.get("options", {})
    if set(chosen) - set(known):
        raise ArielError(f"cycle table '{path}' has no option "
                         f"{', '.join(sorted(set(chosen) - set(known)))} (it has: "
                         f"{', '.join(sorted(known)) or 'none'})")
    for option, table in known.items():
        value = chosen.get(option, table["default"])
        if value not in table.get("values", {}):
            raise ArielError(f"cycle table '{path}': option {option} has no value '{value}' "
                             f"(it has: {', '.join(sorted(table.get('values', {})))})")
        for class_name, cycles in table["values"][value].items():
            data["classes"][class_name] = {**data["classes"][class_name], "cycles": cycles}


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
    merged["issue"] = {**base.get("issue", {}), **data.get("issue", {})}
    # A table whose pipeline differs from its base's says all its own assumptions.
    merged["notes"] = [*data.get("notes", []),
                       *([] if data.get("own_notes") else base.get("notes", []))]
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
    worst_extra: int = 0  # cycles more if every ranged instruction took its worst case


def _class_name(cls: InsnClass | None) -> str:
    return cls.name if cls is not None else UNKNOWN


def _base_cycles(core: Core, insn: Insn, cls: InsnClass | None) -> int:
    if cls is None:
        return core.fallback
    if core.store_immediate is not None and cls.name == "store" and not insn.indexed:
        return core.store_immediate
    return cls.cycles + (insn.registers if cls.per_register else 0)


def _context(core: Core, prev: tuple[Insn, InsnClass | None] | None,
             insn: Insn, cls: InsnClass | None) -> tuple[int, str | None]:
    """Cycles added to `insn` by the instruction executed just before it, and the event."""
    if prev is None or cls is None or prev[1] is None:
        return 0, None
    before, before_cls = prev
    uses_result = bool(before.writes & insn.address_regs)
    rule = core.pipelining
    if cls.name in rule.classes and before_cls.name in rule.after and not uses_result \
            and _base_cycles(core, insn, cls) == cls.cycles:
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
    costs = [_base_cycles(core, insn, cls) for insn, cls in zip(insns, classes, strict=True)]
    events: Counter[str] = Counter()
    if core.issue_width > 1:
        _dual_issue(core, insns, classes, costs, events)
    else:
        prev = None
        for k, (insn, cls) in enumerate(zip(insns, classes, strict=True)):
            extra, event = _context(core, prev, insn, cls)
            costs[k] += extra
            if event:
                events[event] += 1
            prev = (insn, cls)
    cycles: Counter[str] = Counter()
    instructions: Counter[str] = Counter()
    load_words: Counter[str] = Counter()
    loads = worst_extra = 0
    for insn, cls, cost in zip(insns, classes, costs, strict=True):
        name = _class_name(cls)
        cycles[name] += cost
        instructions[name] += 1
        if cls is not None and cls.memory == "load":
            loads += 1
            load_words[insn.base] += insn.words
        if cls is not None and cls.worst is not None:
            worst_extra += cls.worst - cls.cycles
    end = insns[-1].address + insns[-1].size if insns else pc
    return BlockCost(insns, classes, end, dict(cycles), dict(instructions), dict(events),
                     dict(load_words), loads, sum(i.size for i in insns), worst_extra)


def _dual_issue(core: Core, insns: tuple[Insn, ...], classes: tuple[InsnClass | None, ...],
                costs: list[int], events: Counter[str]) -> None:
    """Pair instructions in issue order, as an in-order dual-issue core does: an instruction
    issues with the one before it when both may pair, their pipes allow it, and it needs
    nothing the first one produces; a result used before its latency has passed stalls. The
    pair's cycle is charged to its first instruction, the second costs nothing. A block's
    first instruction starts a new issue group (no pairing across blocks)."""
    previous: list[int] = []  # the instructions that issued in the previous cycle
    k = 0
    while k < len(insns):
        stall = _use_stall(insns, classes, previous, k)
        costs[k] += stall
        if stall:
            events["result stalls"] += 1
        group = [k]
        if k + 1 < len(insns) and _pairs(core, insns, classes, k) \
                and _use_stall(insns, classes, previous, k + 1) <= stall:
            costs[k + 1] = 0
            events["dual-issued pairs"] += 1
            group.append(k + 1)
        previous = group
        k += len(group)


def _pairs(core: Core, insns: tuple[Insn, ...], classes: tuple[InsnClass | None, ...],
           k: int) -> bool:
    """Whether instruction k + 1 can issue in the same cycle as instruction k."""
    first, second = classes[k], classes[k + 1]
    if first is None or second is None or first.unit is None or second.unit is None:
        return False
    if first.single_issue or second.single_issue or second.first_only:
        return False
    if _costs_more_than_one(first, insns[k]) or insns[k].writes_pc:
        return False
    if first.unit == second.unit and first.unit not in core.dual_units:
        return False
    return not insns[k].writes & insns[k + 1].reads


def _costs_more_than_one(cls: InsnClass, insn: Insn) -> bool:
    return cls.cycles + (insn.registers if cls.per_register else 0) > 1


def _use_stall(insns: tuple[Insn, ...], classes: tuple[InsnClass | None, ...],
               group: list[int], k: int) -> int:
    """Cycles instruction k waits for results of the previous issue group: a producer of
    latency L makes the next cycle's user wait L - 1; an address register is read a cycle
    early (one more), a multiply-accumulate's accumulator a cycle late (one less)."""
    stall = 0
    for j in group:
        if classes[j] is None:
            continue
        used = insns[j].writes & insns[k].reads
        if not used:
            continue
        wait = classes[j].latency - 1
        if used & insns[k].address_regs:
            wait += 1
        elif used <= insns[k].accumulators:
            wait -= 1
        stall = max(stall, wait)
    return stall


def _refill(core: Core, cls: InsnClass, target: BlockCost | None) -> int:
    """P for a taken branch of class `cls` to the block `target` (None: not known); 0 for
    a branch the core predicts (its mispredictions are charged apart)."""
    if core.mispredict and cls.predicted:
        return 0
    refill = cls.refill or 0
    if target is not None and target.insns:
        first = target.insns[0]
        if first.size == 4 and first.address % 4 == 2:
            refill += core.unaligned_wide_target
    return min(refill, core.max_refill)


# ----------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Memory:
    """What the board says about memory: flash wait states (0: none), whether something (an
    accelerator such as ST's ART, or a cache) hides them from instruction fetches, and, to
    simulate, the caches in front of the flash (board file [flash_timing])."""

    wait_states: int = 0
    fetches_hidden: bool = True
    caches: FlashCaches | None = None


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
    core_cycles: int = 0  # from the table, at zero wait states (RAM speed)
    by_class: dict[str, ClassTotal] = field(default_factory=dict)
    # "taken branches", "not-taken branches", "refill cycles", "pipelined", "address stalls",
    # "dual-issued pairs", "result stalls", "mispredicted branches", "other transfers"
    # (control reached a block that is not the fall-through of a non-branch: an exception
    # entry or return)
    events: dict[str, int] = field(default_factory=dict)
    loads: int = 0  # load instructions executed
    load_words: dict[str, int] = field(default_factory=dict)  # by base: stack/literal/other
    code_bytes: int = 0  # bytes of instructions executed
    worst_extra: int = 0  # cycles more if every ranged instruction took its worst case
    # With the flash model: what the caches did, and the wait states it cost, by side
    # ("instruction", "data"); None when the segment was counted without it.
    flash: FlashCounts | None = None
    flash_stalls: dict[str, int] | None = None

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
    def simulated(self) -> bool:
        """Whether the board's flash caches were simulated for these cycles."""
        return self.flash_stalls is not None

    @property
    def ram_cycles(self) -> int:
        """Every fetch and load at RAM speed: the table's cycles alone."""
        return self.core_cycles

    @property
    def flash_cycles(self) -> int:
        """Cycles lost to the flash: the simulated misses' wait states, or (not simulated)
        fetch wait states and those of the loads that certainly read flash."""
        if self.flash_stalls is not None:
            return sum(self.flash_stalls.values())
        return self.fetch_stalls + self.memory.wait_states * self.flash_loads

    @property
    def cycles(self) -> int:
        """The estimate: table cycles plus what the flash costs."""
        return self.core_cycles + self.flash_cycles

    @property
    def cycles_upper(self) -> int:
        """An upper bound: every ranged instruction (divides) at its worst case and, unless
        the caches were simulated, every load that may read flash paying its wait states."""
        loads = 0 if self.simulated else self.memory.wait_states * self.maybe_flash_loads
        return self.cycles + self.worst_extra + loads

    @property
    def cpi(self) -> float:
        return self.cycles / self.instructions if self.instructions else 0.0

    def __add__(self, other: Estimate) -> Estimate:
        if (self.core, self.memory) != (other.core, other.memory):
            raise ValueError("only estimates for the same core and memory add up")
        if self.simulated != other.simulated:
            raise ValueError("only estimates both with or both without the flash model add up")
        total = Estimate(self.core, self.memory, self.instructions + other.instructions,
                         self.core_cycles + other.core_cycles,
                         loads=self.loads + other.loads,
                         code_bytes=self.code_bytes + other.code_bytes,
                         worst_extra=self.worst_extra + other.worst_extra)
        if self.simulated:
            total.flash = FlashCounts(*(a + b for a, b in zip(
                vars(self.flash).values(), vars(other.flash).values(), strict=True)))
            total.flash_stalls = {}
            _add(total.flash_stalls, self.flash_stalls)
            _add(total.flash_stalls, other.flash_stalls)
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


def flash_stalls(flash: FlashCounts, memory: Memory, core_cycles: int) -> dict[str, int]:
    """The wait states the flash adds to a segment, from what the caches did with it.

    Every miss reads the flash: a data miss waits the wait states, and so does an
    instruction miss after a jump. With prefetch, the line after the one fetched before is
    read while that one executes: it waits only for what the read (wait states + 1 cycles)
    takes beyond the time the core spends on a line, the segment's average."""
    ws = memory.wait_states
    jumps = flash.misses - flash.sequential
    sequential = ws
    if memory.caches is not None and memory.caches.prefetch:
        per_line = core_cycles / flash.lines if flash.lines else 0.0
        sequential = max(0.0, ws + 1 - per_line)
    return {"instruction": round(jumps * ws + flash.sequential * sequential),
            "data": flash.load_misses * ws}


def estimate(counts: Counts, segment: Segment, core: Core | str,
             memory: Memory | None = None) -> Estimate:
    """Estimated cycles of `segment` of a counting run made with edges=True (and, for the
    board's flash model, flash=True with `memory` describing the same caches)."""
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
        result.worst_extra += cost.worst_extra * runs

    # Per conditional branch the core predicts: how often it went each way.
    outcomes: dict[int, list[int]] = {}
    left = dict(segment.executions)  # runs whose way out is not in this segment's edges
    for (source, target), n in segment.edges.items():
        if source is None:
            continue
        after = costs[target]
        before = costs.get(source) or block_cost(core, counts.blocks[source])
        if not before.insns or not after.insns:
            continue
        if core.issue_width == 1:
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
            if core.mispredict and cls.predicted and last.conditional:
                outcomes.setdefault(source, [0, 0])[0 if leaves else 1] += n
        elif leaves:
            _add(result.events, {"other transfers": n})

    # A predicted branch that went both ways mispredicted at least each time its outcome
    # changed; the fewer of its two counts is taken as the mispredictions (a loop's branch:
    # once per exit).
    for source, (taken, not_taken) in outcomes.items():
        wrong = min(taken, not_taken)
        if wrong:
            charge(costs.get(source, block_cost(core, counts.blocks[source])).classes[-1].name,
                   wrong * core.mispredict)
            _add(result.events, {"mispredicted branches": wrong})

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
    if segment.flash is not None and result.memory.caches is not None:
        result.flash = segment.flash
        result.flash_stalls = flash_stalls(segment.flash, result.memory, result.core_cycles)
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
        *(f"core option {name} = {value} (from the board file)"
          for name, value in core.options),
    ]
    if ws == 0:
        lines.append("flash has no wait states (0 passed): fetches and loads never wait")
        return lines
    if memory.caches is not None:
        return lines + _cache_assumptions(memory, memory.caches)
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


def _cache_assumptions(memory: Memory, caches: FlashCaches) -> list[str]:
    ws = memory.wait_states

    def side(geometry) -> str:
        if geometry.entries == 0:
            return "none (every read goes to the flash)"
        return (f"{geometry.entries} entries of {geometry.entry_bytes} B, "
                f"{geometry.ways}-way, least recently used replaced")

    lines = [
        f"flash ({ws} wait states) behind {caches.description or 'caches'}: every instruction "
        "fetch and data load from the flash region is simulated through them (QEMU's plugin "
        "sees each load's address); instruction side "
        f"{side(caches.instruction)}, data side {side(caches.data)}",
        f"a data load that misses waits {ws} cycles; so does an instruction fetch that misses "
        "after a jump",
    ]
    if caches.prefetch:
        lines.append(f"with prefetch, a missed line that follows the one fetched before waits "
                     f"only for what its read ({ws + 1} cycles) takes beyond the cycles the "
                     "core spends per line fetched (the layer's average)")
    else:
        lines.append(f"no prefetch: every missed instruction line waits {ws} cycles")
    lines += [
        "a miss costs the wait states alone: the bus transfer of a longer line, and contention "
        "between instruction and data reads of the flash, are not modelled",
        "RAM (the activation arena, the stack) has no wait states and does not occupy the "
        "caches; stores go to RAM through the write buffer and never wait",
    ]
    return lines
