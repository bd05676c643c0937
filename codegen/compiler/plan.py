"""Static memory plan: every activation gets an offset in one arena, decided at compile time.

Buffers are placed largest first, each at the lowest offset that does not overlap a buffer
alive at the same time (the greedy scheme TensorFlow Lite Micro uses). The lower bound is
the largest total size of buffers alive at one step: no plan for this schedule can be
smaller, so the report shows how close the plan comes.

A kernel that needs working memory while it runs (a recurrent node's state) says how much
(OpDef.scratch); that scratch is one more buffer, alive only at the node's step, so it goes
wherever the arena has room then instead of on the stack. A kernel that can use working
memory but does not need it (OpDef.room: an int8 Conv copying its filters to RAM) gets the
largest gap the finished plan leaves at its step, up to what it asks for: the arena never
grows for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codegen.compiler.ir import Graph
from codegen.compiler.ops import REGISTRY
from codegen.compiler.ops.base import is_view_node

ALIGNMENT = 16


@dataclass
class Buffer:
    name: str  # the tensor that owns the storage
    size: int  # bytes, rounded up to ALIGNMENT
    first: int  # step that writes it (-1: a graph input, written before the run)
    last: int  # last step that reads it (len(nodes): a graph output, read after the run)
    offset: int = -1

    def overlaps(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    buffers: dict[str, Buffer]
    storage: dict[str, str]  # tensor -> owning buffer
    arena_size: int
    lower_bound: int
    steps: int
    # Bytes from the start of its buffer to a view that is a part of it (a Slice, say).
    view_bytes: dict[str, int] = field(default_factory=dict)
    scratch: dict[int, str] = field(default_factory=dict)  # step -> its scratch buffer
    room: dict[int, int] = field(default_factory=dict)  # step -> units of room granted

    def offset(self, tensor: str) -> int:
        return self.buffers[self.storage[tensor]].offset + self.view_bytes.get(tensor, 0)

    def scratch_offset(self, step: int) -> int | None:
        """Arena offset of the working memory of the kernel at `step` (None: it has none)."""
        key = self.scratch.get(step)
        return None if key is None else self.buffers[key].offset

    def timeline(self, width: int = 60) -> str:
        """An ASCII picture of the plan: one row per buffer, time across, for debugging."""
        steps = max(self.steps + 2, 1)
        scale = min(1.0, width / steps)
        rows = [f"{'offset':>8} {'bytes':>8}  lifetime (steps -1..{self.steps})"]
        for buf in sorted(self.buffers.values(), key=lambda b: (b.offset, b.first)):
            start = int((buf.first + 1) * scale)
            end = max(start + 1, int((buf.last + 2) * scale))
            bar = " " * start + "#" * (end - start)
            rows.append(f"{buf.offset:>8} {buf.size:>8}  |{bar:<{int(steps * scale)}}| "
                        f"{buf.name}")
        rows.append(f"arena {self.arena_size} bytes; lower bound {self.lower_bound} bytes")
        return "\n".join(rows)


def align(size: int, alignment: int = ALIGNMENT) -> int:
    return (size + alignment - 1) // alignment * alignment


def plan_memory(graph: Graph, alignment: int = ALIGNMENT, pin_inputs: bool = False
                ) -> MemoryPlan:
    """Place every buffer. With `pin_inputs` the graph inputs sit at the start of the arena,
    in order, and stay intact for the whole run: several models can then share one input
    buffer and run one after the other on the same input (the adaptive dispatcher)."""
    buffers = _lifetimes(graph, alignment)
    scratch = _scratch(graph, buffers, alignment)
    placed = _Placed()
    if pin_inputs:
        offset = 0
        for name in graph.inputs:
            buf = buffers[graph.storage(name)]
            buf.first, buf.last, buf.offset = -1, len(graph.nodes), offset
            offset = align(offset + buf.size, alignment)
            placed.add(buf)
    order = sorted((b for b in buffers.values() if b.offset < 0),
                   key=lambda b: (-b.size, b.first, b.name))
    for buf in order:
        buf.offset = _first_fit(buf, placed.overlapping(buf), alignment)
        placed.add(buf)
    arena = max((b.offset + b.size for b in buffers.values()), default=0)
    lower_bound = _lower_bound(buffers, len(graph.nodes))
    room = _grant_room(graph, buffers, placed, arena, alignment, scratch)
    storage = {name: graph.storage(name) for name in graph.tensors
               if graph.storage(name) in buffers}
    view_bytes = {name: graph.tensor(name).view_offset * graph.tensor(name).itemsize
                  for name in storage if graph.tensor(name).view_offset}
    return MemoryPlan(buffers, storage, arena, lower_bound, len(graph.nodes), view_bytes,
                      scratch, room)


def _lifetimes(graph: Graph, alignment: int) -> dict[str, Buffer]:
    buffers: dict[str, Buffer] = {}

    def touch(tensor: str, step: int) -> None:
        if graph.tensor(tensor).is_const:
            return
        owner = graph.storage(tensor)
        size = align(graph.tensor(tensor).nbytes, alignment)
        buf = buffers.setdefault(owner, Buffer(owner, size, step, step))
        buf.size = max(buf.size, size)
        buf.first, buf.last = min(buf.first, step), max(buf.last, step)

    for name in graph.inputs:
        touch(name, -1)
    for step, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name:
                touch(name, step)
        # A view's output is its input's storage: it extends that lifetime, nothing more.
        if not is_view_node(graph, node):
            for name in node.outputs:
                touch(name, step)
    for name in graph.outputs:
        touch(name, len(graph.nodes))
    return buffers


def _scratch(graph: Graph, buffers: dict[str, Buffer], alignment: int) -> dict[int, str]:
    """Add a buffer for each kernel's working memory, alive at its step only; returns the
    step -> buffer map. Scratch buffers are named so that no tensor name collides."""
    steps: dict[int, str] = {}
    for step, node in enumerate(graph.nodes):
        size = REGISTRY[node.op].scratch(node, graph)
        if size <= 0:
            continue
        key = f"(scratch of node {step})"
        while key in buffers or key in graph.tensors:
            key += "'"
        buffers[key] = Buffer(key, align(size, alignment), step, step)
        steps[step] = key
    return steps


def _grant_room(graph: Graph, buffers: dict[str, Buffer], placed: _Placed, arena: int,
                alignment: int, scratch: dict[int, str]) -> dict[int, int]:
    """Give each kernel that asks for optional working memory (OpDef.room) the largest
    gap between the buffers alive at its step, within the arena as planned, in whole units
    up to what it asks for (none if fewer than it finds worth having). Adds the granted
    buffers to `buffers` and `scratch`; returns step -> units granted."""
    granted: dict[int, int] = {}
    for step, node in enumerate(graph.nodes):
        want = REGISTRY[node.op].room(node, graph)
        if want is None:
            continue
        if step in scratch:
            raise ValueError(f"node {node.name!r} asks for both scratch and room")
        unit, most, fewest = want
        start, gap = _largest_gap(placed.alive_at(step), arena, alignment)
        units = min(most, gap // unit)
        if units < fewest:
            continue
        key = f"(room of node {step})"
        while key in buffers or key in graph.tensors:
            key += "'"
        buf = Buffer(key, align(units * unit, alignment), step, step, start)
        buffers[key] = buf
        placed.add(buf)
        scratch[step] = key
        granted[step] = units
    return granted


def _largest_gap(alive: list[Buffer], arena: int, alignment: int) -> tuple[int, int]:
    """(offset, bytes) of the largest aligned free run in [0, arena) between `alive`."""
    best, start = (0, 0), 0
    for buf in sorted(alive, key=lambda b: b.offset):
        if buf.offset - start > best[1]:
            best = (start, buf.offset - start)
        start = max(start, align(buf.offset + buf.size, alignment))
    if arena - start > best[1]:
        best = (start, arena - start)
    return best


class _Placed:
    """The buffers placed so far, filed under every step they are alive at, so that finding
    those whose lifetime overlaps a new buffer's looks at its own steps only, not at every
    buffer placed (which made planning quadratic in the number of nodes)."""

    def __init__(self):
        self._alive: dict[int, list[Buffer]] = {}

    def add(self, buf: Buffer) -> None:
        for step in range(buf.first, buf.last + 1):
            self._alive.setdefault(step, []).append(buf)

    def alive_at(self, step: int) -> list[Buffer]:
        return list(self._alive.get(step, ()))

    def overlapping(self, buf: Buffer) -> list[Buffer]:
        found: dict[str, Buffer] = {}
        for step in range(buf.first, buf.last + 1):
            for other in self._alive.get(step, ()):
                found[other.name] = other
        return list(found.values())


def _first_fit(buf: Buffer, neighbours: list[Buffer], alignment: int) -> int:
    offset = 0
    for other in sorted(neighbours, key=lambda b: b.offset):
        if offset + buf.size <= other.offset:
            break
        offset = max(offset, align(other.offset + other.size, alignment))
    return offset


def _lower_bound(buffers: dict[str, Buffer], steps: int) -> int:
    """The largest total size alive at one step, by one sweep over the steps (each buffer
    adds its size where it starts and takes it away after its last step)."""
    change = [0] * (steps + 3)  # steps -1 .. steps + 1, shifted by one
    for b in buffers.values():
        change[b.first + 1] += b.size
        change[b.last + 2] -= b.size
    alive, largest = 0, 0
    for delta in change:
        alive += delta
        largest = max(largest, alive)
    return largest
