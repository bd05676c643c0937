"""The in-memory graph every stage works on: tensors (shape, dtype, memory order, storage) and
nodes (ONNX op type and attributes), in the model's own logical layout."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codegen.compiler.budget import CEILING, Budget

# Element types ariel can hold in a tensor, with their C spelling.
C_TYPES: dict[str, str] = {
    "float32": "float",
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "uint16": "uint16_t",
    "int32": "int32_t",
    "uint32": "uint32_t",
    "int64": "int64_t",
    "uint64": "uint64_t",
    "bool": "uint8_t",
}


def row_major(rank: int) -> tuple[int, ...]:
    """The identity memory order: the last logical axis varies fastest."""
    return tuple(range(rank))


def channels_last(rank: int) -> tuple[int, ...]:
    """Memory order N, spatial..., C for a tensor whose logical layout is N, C, spatial..."""
    return (0, *range(2, rank), 1) if rank >= 3 else row_major(rank)


@dataclass
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point), per tensor or along `axis`."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None


@dataclass
class Tensor:
    """A value in the graph. `order` says how its logical axes are laid out in memory
    (memory dimension k holds logical axis order[k]); `buffer` names the tensor whose
    storage it shares (views such as Reshape point at their source) and `view_offset` where
    in that storage it starts, in elements (a Slice or Split output that is a contiguous
    part of its input). `shape` is None only until shape inference has run."""

    name: str
    shape: tuple[int, ...] | None
    dtype: str
    data: np.ndarray | None = None
    order: tuple[int, ...] | None = None
    buffer: str | None = None
    quant: QuantParams | None = None
    view_offset: int = 0
    # Where calibration inputs put this int8 row at its zero point ([rows, K] bool), for the
    # dense layers that may list its nonzero words (quant/zero_rows.py, ops/zero_words.py).
    zeros: np.ndarray | None = None
    # Set where ariel stores this tensor's last axis in another order than the model's
    # (quant/zero_rows.py's plan_listing): position p holds the model's channel
    # channel_order[p]. Reports that compare it with the model's tensor put it back.
    channel_order: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    @property
    def ctype(self) -> str:
        return C_TYPES[self.dtype]

    @property
    def memory_order(self) -> tuple[int, ...]:
        return self.order if self.order is not None else row_major(self.rank)

    @property
    def strides(self) -> tuple[int, ...]:
        """Element stride of each logical axis in memory."""
        strides = [0] * self.rank
        step = 1
        for axis in reversed(self.memory_order):
            strides[axis] = step
            step *= self.shape[axis]
        return tuple(strides)

    @property
    def is_row_major(self) -> bool:
        """True when memory holds the logical row-major order (axes of size 1 are free)."""
        moving = [axis for axis in self.memory_order if self.shape[axis] != 1]
        return moving == sorted(moving)

    def to_memory(self, logical: np.ndarray) -> np.ndarray:
        """Arrange a logical array as it lies in memory (a flat copy)."""
        return np.ascontiguousarray(logical.transpose(self.memory_order)).reshape(-1)

    def from_memory(self, flat: np.ndarray) -> np.ndarray:
        """Inverse of `to_memory`: a flat memory image back to the logical array."""
        mem_shape = tuple(self.shape[a] for a in self.memory_order)
        return flat.reshape(mem_shape).transpose(np.argsort(self.memory_order))


@dataclass(eq=False)
class Node:
    """One operator. `clamp` holds a fused activation as (low, high) bounds, so Relu is
    (0, inf) and Relu6 is (0, 6). `opset` is the version of the node's operator set, for
    operators whose meaning changed between versions (0: not known yet, read as the latest).

    Nodes compare by identity: two nodes are the same only if they are one object, which is
    what a graph means, and it keeps `nodes.remove(node)` from comparing every field
    (ONNX protos included) of every node before it."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    clamp: tuple[float, float] | None = None
    proto: Any = None  # the original onnx.NodeProto, kept for constant folding
    opset: int = 0
    # Where an optional output before others is omitted (LSTM's Y absent, Y_h present), the
    # operator's output position of each entry of `outputs`; empty: they fill the first
    # positions in order.
    output_slots: tuple[int, ...] = ()
    # Units of optional working memory the memory plan granted the kernel (OpDef.room).
    room: int = 0
    # A dense layer that lists its row's nonzero words: how (an ops.zero_words.ZeroWords,
    # chosen by quant/zero_rows.py's plan_listing); None where it reads every word.
    listing: Any = None


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    opset: int
    # For int8 tensors made by the QDQ lowering: the float tensor each stands for, by name.
    origins: dict[str, str] = field(default_factory=dict)
    # What the target can hold: constant folding computes no tensor beyond it.
    budget: Budget = CEILING
    _counter: itertools.count = field(default_factory=itertools.count, repr=False)

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def input_tensors(self, node: Node) -> list[Tensor | None]:
        """The node's inputs; None where an optional input is omitted."""
        return [self.tensors[n] if n else None for n in node.inputs]

    def output_tensors(self, node: Node) -> list[Tensor]:
        return [self.tensors[n] for n in node.outputs]

    def producer(self, name: str) -> Node | None:
        for node in self.nodes:
            if name in node.outputs:
                return node
        return None

    def consumers(self, name: str) -> list[Node]:
        return [node for node in self.nodes if name in node.inputs]

    def producers(self) -> dict[str, Node]:
        """Every tensor's producing node, in one pass: for rewrites that look up many
        (graph.producer walks all nodes: one lookup per node would be quadratic)."""
        return {name: node for node in self.nodes for name in node.outputs}

    def consumer_lists(self) -> dict[str, list[Node]]:
        """The nodes reading each tensor, in order, in one pass (as graph.consumers gives
        one tensor's by a walk over all nodes)."""
        readers: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in dict.fromkeys(node.inputs):
                if name:
                    readers.setdefault(name, []).append(node)
        return readers

    def remove_nodes(self, removed: set[Node]) -> None:
        """Drop `removed` from the node list in one pass."""
        if removed:
            self.nodes = [node for node in self.nodes if node not in removed]

    def fresh_name(self, base: str) -> str:
        while True:
            candidate = f"{base}__ariel{next(self._counter)}"
            if candidate not in self.tensors:
                return candidate

    def storage(self, name: str) -> str:
        """The tensor that owns the memory `name` lives in (itself unless it is a view)."""
        tensor = self.tensors[name]
        while tensor.buffer is not None and tensor.buffer != tensor.name:
            tensor = self.tensors[tensor.buffer]
        return tensor.name

    def replace_uses(self, old: str, new: str) -> None:
        """Make every consumer of `old` (and the graph outputs) read `new` instead."""
        for node in self.nodes:
            node.inputs = [new if n == old else n for n in node.inputs]
        self.outputs = [new if n == old else n for n in self.outputs]

    def remove_dead_nodes(self) -> None:
        """Drop nodes none of whose outputs is read (by a node or as a graph output), until
        none is left: folding a Shape can leave the node that fed it computing for no one."""
        changed = True
        while changed:
            used = set(self.outputs) | {n for node in self.nodes for n in node.inputs}
            alive = [node for node in self.nodes if any(o in used for o in node.outputs)]
            changed = len(alive) != len(self.nodes)
            self.nodes = alive

    def remove_unused(self) -> None:
        """Drop tensors that nothing produces or reads any more (dead constants)."""
        used = set(self.inputs) | set(self.outputs)
        for node in self.nodes:
            used.update(n for n in node.inputs if n)
            used.update(node.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used or v.buffer in used}
