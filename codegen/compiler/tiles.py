"""Output tiles of intermittent builds: a layer longer than the declared on-period runs as
bands of its output rows, with a commit between two bands (codegen/compiler/checkpoint.py
chooses where), so that no unit of work is longer than the on-period.

A band of rows r0..r1 of a 2-D convolution's output is itself a convolution: of the input
rows it reads (a contiguous part of the NHWC input, batch 1), with the padding that band
sees, into a contiguous part of the output. So each band is lowered by the layer's own
operator as a smaller node (any of its kernels: packed, depthwise or direct), reads the
layer's weights under the layer's names (stored once), and is called on offset pointers
into the arena; no kernel template changes. A band's inputs are the layer's input and
weights, which nothing overwrites while the layer runs, so running a band again after a
power cut gives the same bytes: the band is idempotent."""

from __future__ import annotations

from dataclasses import dataclass, replace

from codegen.compiler.ir import Graph, Node, channels_last
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import is_quantized, kernel_params
from codegen.compiler.ops.conv import READS_FOR_A_COPY
from codegen.compiler.plan import MemoryPlan

TILED_OPS = ("Conv",)
# The int8 convolution copies its filters to RAM only for outputs of READS_FOR_A_COPY pairs
# of pixels or more: bands at least that large keep the layer's path and working memory.
MIN_BAND_PIXELS = 2 * READS_FOR_A_COPY


@dataclass(frozen=True)
class Band:
    """Rows r0..r1 of a layer's output as a node of its own: `graph` holds the band's input
    and output tensors beside the model's, `node` reads and writes them, and the arena
    offsets say where they lie."""

    graph: Graph
    node: Node
    x_offset: int  # bytes into the layer's input where the band's input rows start
    y_offset: int  # bytes into the layer's output where the band's rows start


def rows_of(graph: Graph, step: int) -> tuple[int, int]:
    """(output rows, bytes per output row) of the layer at `step`."""
    y = graph.tensor(graph.nodes[step].outputs[0])
    return y.shape[2], y.nbytes // y.shape[2]


def why_not_tiled(graph: Graph, plan: MemoryPlan, step: int) -> str | None:
    """Why the layer at `step` cannot be split into bands of output rows (None: it can)."""
    node = graph.nodes[step]
    if node.op not in TILED_OPS:
        dense = ("; a dense layer would need its weights and output stage split by output "
                 "features, which is not done yet" if node.op in ("Gemm", "MatMul") else "")
        return (f"ariel splits only int8 2-D convolutions (depthwise too) into bands of "
                f"output rows, not {node.op}{dense}")
    if not is_quantized(graph, node):
        return "ariel splits only int8 convolutions into bands of output rows, and this one " \
               "is float (build with --precision int8)"
    x, y = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    if x.rank != 4:
        return f"a {x.rank - 2}-D convolution has no rows to split (only 2-D ones do)"
    if x.shape[0] != 1:
        return f"its batch of {x.shape[0]} puts rows of different images apart (batch 1 only)"
    for tensor in (x, y):
        if not _nhwc(tensor):
            return f"'{tensor.name}' is not laid out NHWC in memory"
    if y.shape[2] < 2:
        return "its output has a single row"
    buffer = plan.buffers[plan.storage[y.name]]
    if buffer.size != y.nbytes or plan.offset(y.name) != buffer.offset:
        return "its output shares its buffer with other tensors"
    return None


def split_rows(graph: Graph, step: int, unit: int) -> list[int]:
    """The output rows after which the layer at `step` may commit: where the rows done end
    on a whole `unit` of bytes (what one NVM write may start at), and where every band keeps
    at least MIN_BAND_PIXELS output pixels (a band's kernel then takes the same path, with
    the same working memory, as the whole layer's)."""
    rows, row_bytes = rows_of(graph, step)
    width = graph.tensor(graph.nodes[step].outputs[0]).shape[3]
    least = -(-MIN_BAND_PIXELS // width)
    return [r for r in range(least, rows - least + 1) if r * row_bytes % unit == 0]


def _nhwc(tensor) -> bool:
    """Whether the tensor lies in memory as NHWC (axes of size 1 may be anywhere)."""
    def moving(order):
        return [axis for axis in order if tensor.shape[axis] != 1]
    return moving(tensor.memory_order) == moving(channels_last(4))


def band(graph: Graph, step: int, r0: int, r1: int) -> Band:
    """Output rows r0..r1 of the convolution at `step` as a convolution of its own."""
    node = graph.nodes[step]
    x, w = graph.tensor(node.inputs[0]), graph.tensor(node.inputs[1])
    y = graph.tensor(node.outputs[0])
    win = REGISTRY[node.op].geometry(node, x, w)
    top, left, bottom, right = win.pads
    (sh, _), (dh, _) = win.strides, win.dilations
    extent = (win.kernel[0] - 1) * dh + 1
    first = r0 * sh - top  # the first input row the band's first output row reads
    end = (r1 - 1) * sh - top + extent  # one past the last input row it reads
    rows_in = min(x.shape[2], end) - max(0, first)
    pad_top, pad_bottom = max(0, -first), max(0, end - x.shape[2])
    names = {"x": f"{x.name}#rows{max(0, first)}", "y": f"{y.name}#rows{r0}"}
    tensors = dict(graph.tensors)
    tensors[names["x"]] = replace(x, name=names["x"], shape=(1, x.shape[1], rows_in,
                                                               x.shape[3]), buffer=None)
    tensors[names["y"]] = replace(y, name=names["y"], shape=(1, y.shape[1], r1 - r0,
                                                               y.shape[3]), buffer=None)
    attrs = {k: v for k, v in node.attrs.items() if k != "auto_pad"}
    attrs["pads"] = [pad_top, left, pad_bottom, right]
    attrs["kernel_shape"] = list(win.kernel)
    part = replace(node, inputs=[names["x"], *node.inputs[1:]], outputs=[names["y"]],
                   attrs=attrs)
    sub = replace(graph, tensors=tensors, nodes=[part])
    x_row = x.nbytes // x.shape[2]
    y_row = y.nbytes // y.shape[2]
    return Band(sub, part, max(0, first) * x_row, r0 * y_row)


def band_args(b: Band, graph: Graph, plan: MemoryPlan, step: int, scratch: int | None) -> str:
    """The C arguments of a band's kernel: the layer's tensors at the band's offsets."""
    node = graph.nodes[step]
    moved = {b.node.inputs[0]: (node.inputs[0], b.x_offset),
             b.node.outputs[0]: (node.outputs[0], b.y_offset)}
    args = []
    for tensor, param in kernel_params(b.node, b.graph):
        source, extra = moved.get(tensor, (tensor, 0))
        const = "const " if param.startswith("x") else ""
        args.append(f"({const}{b.graph.tensor(tensor).ctype} *)"
                    f"(arena + {plan.offset(source) + extra})")
    if scratch is not None:
        args.append(f"arena + {scratch}")
    return ", ".join(args)
