"""Loop nests for kernels that walk tensors through strides (elementwise with broadcasting,
copies between memory orders, reductions). Python works out the loop bounds and each
operand's stride per loop; the template writes plain nested `for` loops."""

from __future__ import annotations

from codegen.compiler.ir import Tensor


def output_loops(out: Tensor) -> list[int]:
    """Loop bounds that visit `out` in its memory order (its last loop is contiguous)."""
    return [out.shape[axis] for axis in out.memory_order]


def operand_strides(operand: Tensor, out: Tensor) -> list[int]:
    """Strides of `operand` along each of `out`'s memory-order loops, with numpy
    broadcasting (operand aligned to the right; broadcast axes get stride 0). Constants are
    read as stored: row-major in their own logical shape."""
    offset = out.rank - operand.rank
    logical = operand_logical_strides(operand)
    strides = []
    for axis in out.memory_order:
        source = axis - offset
        if source < 0 or operand.shape[source] == 1:
            strides.append(0)
        else:
            strides.append(logical[source])
    return strides


def operand_logical_strides(tensor: Tensor) -> tuple[int, ...]:
    if tensor.is_const:
        strides, step = [0] * tensor.rank, 1
        for axis in reversed(range(tensor.rank)):
            strides[axis] = step
            step *= tensor.shape[axis]
        return tuple(strides)
    return tensor.strides


def collapse(bounds: list[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop loops of one iteration and merge neighbouring loops that every operand walks
    contiguously, so a same-shape elementwise op becomes a single flat loop."""
    keep = [k for k, n in enumerate(bounds) if n != 1]
    bounds = [bounds[k] for k in keep]
    strides = [[s[k] for k in keep] for s in strides]
    k = len(bounds) - 1
    while k > 0:
        if all(s[k - 1] == s[k] * bounds[k] for s in strides):
            bounds[k - 1:k + 1] = [bounds[k - 1] * bounds[k]]
            for s in strides:
                s[k - 1:k + 1] = [s[k]]
        k -= 1
    return bounds or [1], [s or [0] for s in strides]


def collapse_loops(bounds: list[int], strides: list[list[int]]
                   ) -> tuple[list[int], list[list[int]]]:
    """`collapse`, and no loop at all where a single iteration is left."""
    bounds, strides = collapse(bounds, strides)
    if bounds == [1]:
        return [], [[] for _ in strides]
    return bounds, strides
