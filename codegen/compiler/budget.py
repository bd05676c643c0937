"""Limits checked before heavy work, so that a model too big for the board is refused in
milliseconds with the figures, not after minutes of constant folding, C formatting or gcc
(or after the machine runs out of memory): no tensor larger than the board can hold anywhere
is computed, no weights larger than its flash are written out as C, and no tensor outgrows
the 32-bit indices and offsets of the generated C."""

from __future__ import annotations

import math
from dataclasses import dataclass

from codegen.errors import ArielError, DoesNotFitError

MIB = 1024 * 1024
# The generated C indexes elements and the arena with uint32_t.
INDEX_LIMIT = 2**32 - 1


@dataclass(frozen=True)
class Budget:
    """How much memory a build has: `flash` bytes for weights, `ram` bytes for the arena;
    `owner` names who sets them, for messages."""

    flash: int
    ram: int
    owner: str

    @property
    def largest_tensor(self) -> int:
        """No tensor can be larger than this even at one byte per element (int8): it would
        fit neither the flash (as a constant) nor the RAM (as an activation)."""
        return max(self.flash, self.ram)

    def describe(self) -> str:
        return f"{self.owner} ({size_text(self.flash)} flash, {size_text(self.ram)} RAM)"


# Without a board (ariel inspect, compiling to C only): far above any microcontroller's
# memory, far below what a workstation can fold or format in reasonable time.
CEILING = Budget(256 * MIB, 256 * MIB, "ariel's limit without a board")


def size_text(count: int) -> str:
    """A byte count the way people read it: 4 MiB, 1.5 GiB, 600 B."""
    for unit, scale in (("GiB", 1024 * MIB), ("MiB", MIB), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def check_tensor(name: str, shape: tuple[int, ...], dtype: str, budget: Budget,
                 made_by: str = "") -> None:
    """Refuse a tensor no build could hold, before anything computes or allocates it.
    `made_by` says where it comes from ("output of ConstantOfShape 'n'")."""
    elements = math.prod(int(d) for d in shape)
    itemsize = _itemsize(dtype)
    origin = f" ({made_by})" if made_by else ""
    if elements > budget.largest_tensor:
        raise DoesNotFitError(
            f"tensor '{name}'{origin} has {elements:,} elements ({_bytes(elements, itemsize)}"
            f"{' as ' + dtype if dtype else ''}): more than {budget.describe()} can hold, even "
            "at one byte per element")
    check_indexable(name, shape, dtype, origin)


def check_indexable(name: str, shape: tuple[int, ...], dtype: str, origin: str = "") -> None:
    """Refuse a tensor whose element count or size in bytes overflows the generated C's
    uint32_t indices and arena offsets."""
    elements = math.prod(int(d) for d in shape)
    nbytes = elements * _itemsize(dtype)
    if max(elements, nbytes) > INDEX_LIMIT:
        raise ArielError(
            f"tensor '{name}'{origin} of shape {list(shape)} has {elements:,} elements "
            f"({_bytes(elements, _itemsize(dtype))}): the generated C indexes tensors with "
            f"32-bit unsigned integers, so a tensor may hold at most {INDEX_LIMIT:,} elements "
            "and bytes")


def check_memory(weights: int, largest: tuple[str, int], arena: int, budget: Budget,
                 advice: str = "") -> None:
    """Refuse weights that cannot fit the flash or an arena that cannot fit the RAM, before
    the weights are formatted as C and compiled (for tens of MiB, minutes). `largest`:
    (what, bytes) of the biggest weight array; `advice`: what else could help the flash,
    ending in '; ' or empty. Worded as the link's own refusal, which says the same later
    about code, weights, stack and arena together."""
    overflows, regions = [], []
    if weights > budget.flash:
        what, nbytes = largest
        overflows.append(f"FLASH overflowed by {weights - budget.flash:,} bytes or more, as the "
                         f"weights alone take {size_text(weights)} ({weights:,} B; the largest: "
                         f"{what}, {nbytes:,} B)")
        regions.append("FLASH")
    if arena > budget.ram:
        overflows.append(f"RAM overflowed by {arena - budget.ram:,} bytes or more, as the arena "
                         f"alone (the activations alive at once) takes {size_text(arena)} "
                         f"({arena:,} B)")
        regions.append("RAM")
        advice = ""  # about the weights: no help for the RAM
    if overflows:
        raise DoesNotFitError(f"{_does_not_fit(budget)}: {'; '.join(overflows)}; {advice}choose "
                              "a board with more memory (see `ariel boards`)", tuple(regions))


def _does_not_fit(budget: Budget) -> str:
    return (f"the firmware does not fit {budget.owner} (flash {budget.flash:,} B, RAM "
            f"{budget.ram:,} B)")


def _itemsize(dtype: str) -> int:
    import numpy as np

    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 1  # an unknown or unsupported type: count its elements only


def _bytes(elements: int, itemsize: int) -> str:
    return size_text(elements * itemsize)
