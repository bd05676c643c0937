"""Human-readable reports: the memory table printed after a build."""

from __future__ import annotations

from codegen.compiler.emit import ModelInfo
from codegen.target.elf import MemoryUse


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def memory_table(use: MemoryUse, info: ModelInfo, float_info: ModelInfo | None = None,
                 weight_prefixes: list[str] | None = None) -> str:
    """The ELF's flash and RAM by what they hold. Weights are the arrays named after the
    model's prefix (or each stage's, in an adaptive build)."""
    board = use.board
    weights = sum(use.symbols_with_prefix(f"{prefix}_n")
                  for prefix in weight_prefixes or [info.prefix])
    arena = use.symbols.get("arena", info.arena_size)
    stack = use.section(".stack")
    rodata = use.section(".rodata")
    code = use.section(".text") + use.section(".isr_vector") + use.section(".ARM.exidx")
    data = use.section(".data")
    bss = use.section(".bss")

    def row(label: str, used: int, limit: int | None = None, indent: int = 2) -> str:
        text = f"{' ' * indent}{label:<24}{used:>12,}"
        if limit:
            text += f"{limit:>12,}{100 * used / limit:>7.1f}%"
        return text

    bound = info.arena_lower_bound
    plan_note = ("reaches the lower bound" if arena <= bound else
                 f"{arena - bound:,} B above the lower bound of {bound:,} B")
    lines = [
        f"Memory on {board.name} ({board.description})",
        f"  linked for {board.map_summary}",
        f"  {'':<24}{'bytes':>12}{'of':>12}{'use':>8}",
        row("flash", use.flash, board.flash.size),
        row("code", code, indent=4),
        row("weights", weights, indent=4),
        row("other constants", rodata - weights, indent=4),
        row("initial .data", data, indent=4),
        row("RAM", use.ram, board.ram.size),
        row("arena (activations)", arena, indent=4),
        row("stack", stack, indent=4),
        row("other .data/.bss", data + bss - arena, indent=4),
        f"  arena plan {arena:,} B, lower bound {bound:,} B: the plan {plan_note}",
        *stack_lines(use),
    ]
    if float_info is not None:
        lines += [
            f"  {'the same model':<24}{'int8':>12}{'float32':>12}",
            f"  {'  weights':<24}{weights:>12,}{float_info.weights_bytes:>12,}",
            f"  {'  arena':<24}{arena:>12,}{float_info.arena_size:>12,}",
        ]
    return "\n".join(lines)


def stack_lines(use: MemoryUse) -> list[str]:
    """What the stack holds: the code's need (deepest call chain and an exception on top)
    against what the build reserved, and the chain and kernel that set it."""
    plan = use.stack
    if plan is None:
        return []
    need = plan.need
    reserved = (f"{plan.reserved:,} B reserved, raised from the board's {plan.board_bytes:,} B"
                if plan.raised else f"{plan.reserved:,} B reserved (the board's)")
    lines = [f"  stack need {need.total:,} B (deepest call chain {need.deepest:,} B, an "
             f"exception {need.exception:,} B) of {reserved}",
             f"    deepest: {need.describe_chain()}"]
    kernel = need.deepest_kernel
    if kernel is not None:
        lines[-1] += f"; kernel {kernel.name}'s frame {kernel.frame:,} B"
    if need.unbounded:
        lines.append(f"    not bounded by the code (checked after each run instead): "
                     f"{'; '.join(need.unbounded)}")
    return lines
