"""The static arena plan: no two buffers alive at the same time overlap, every buffer fits
the arena, the lower bound is really a bound, and views share their source's storage."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.compiler.plan import ALIGNMENT, Buffer, _first_fit, _lower_bound
from codegen.resources import data_dir
from tests.support import compile_onnx


def chain_model(channels: list[int]) -> onnx.ModelProto:
    """x -> Conv1x1 -> Conv1x1 -> ... with the given channel counts (so buffer sizes vary)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels[0], 4, 4])
    nodes, inits, prev = [], [], "x"
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
        inits.append(numpy_helper.from_array(np.full((cout, cin, 1, 1), 0.1, np.float32),
                                             f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"]))
        prev = f"c{i}"
    graph = helper.make_graph(nodes, "chain", [x],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)],
                              inits)
    return onnx.shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def residual_model() -> onnx.ModelProto:
    """A ResNet-like block: the skip connection keeps a buffer alive across two convs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])
    w = numpy_helper.from_array(np.full((4, 4, 3, 3), 0.05, np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["d"]),
        helper.make_node("Conv", ["d", "w"], ["e"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["e", "b"], ["f"]),
        helper.make_node("Reshape", ["f", "shape"], ["y"]),
    ]
    shape = numpy_helper.from_array(np.array([1, 144], np.int64), "shape")
    graph = helper.make_graph(nodes, "res", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [w, shape])
    return onnx.shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def blocks_from_the_graph(compiled) -> list[tuple[str, int, int, int, int]]:
    """(name, first step, last step, first byte, end byte) of every block of arena memory,
    worked out from the graph alone, not from the planner's buffers: a tensor is alive from
    the step that writes it (-1 for a graph input) to the last step that reads it (the
    step count for a graph output); tensors stored in one another (views) form one block,
    alive while any of them is, as long as the largest; each kernel's scratch is a block
    alive at its own step, as large as its operator asks."""
    from codegen.compiler.ops import REGISTRY

    graph, plan = compiled.graph, compiled.plan
    steps = len(graph.nodes)
    alive: dict[str, list[int]] = {}

    def touch(name: str, step: int) -> None:
        if name and not graph.tensor(name).is_const:
            span = alive.setdefault(name, [step, step])
            span[0], span[1] = min(span[0], step), max(span[1], step)

    for name in graph.inputs:
        touch(name, -1)
    for step, node in enumerate(graph.nodes):
        for name in [*node.inputs, *node.outputs]:
            touch(name, step)
    for name in graph.outputs:
        touch(name, steps)
    groups: dict[str, list[str]] = {}
    for name in alive:
        groups.setdefault(graph.storage(name), []).append(name)
    blocks = []
    for owner, members in groups.items():
        start = plan.offset(owner)
        size = max(graph.tensor(m).nbytes for m in members)
        blocks.append((owner, min(alive[m][0] for m in members),
                       max(alive[m][1] for m in members), start, start + size))
    for step, node in enumerate(graph.nodes):
        size = REGISTRY[node.op].scratch(node, graph)
        if size > 0:
            start = plan.scratch_offset(step)
            blocks.append((f"scratch of step {step}", step, step, start, start + size))
    return blocks


def assert_valid_plan(compiled):
    """No two blocks alive at one step share a byte; every block lies in the arena; owners
    are aligned; the lower bound is at most the arena."""
    plan = compiled.plan
    blocks = blocks_from_the_graph(compiled)
    for name, _, _, start, end in blocks:
        assert start % ALIGNMENT == 0, name
        assert 0 <= start and end <= plan.arena_size, name
    for i, (a, a_first, a_last, a_start, a_end) in enumerate(blocks):
        for b, b_first, b_last, b_start, b_end in blocks[i + 1:]:
            if a_first <= b_last and b_first <= a_last:
                assert a_end <= b_start or b_end <= a_start, (
                    f"{a} [{a_start}, {a_end}) and {b} [{b_start}, {b_end}) share bytes at "
                    f"steps {max(a_first, b_first)}..{min(a_last, b_last)}")
    assert plan.lower_bound <= plan.arena_size


@pytest.mark.parametrize("model", [chain_model([4, 6, 5, 12, 7, 3]), residual_model()],
                         ids=["chain", "residual"])
def test_plan_is_valid(model):
    assert_valid_plan(compile_onnx(model))


# Real models: skip connections and concatenations (U-Net), views and transposes read in
# place (the transformer), recurrent scratch (the LSTM), channel shuffles (ShuffleNet).
EXAMPLES = ["unet_mnist", "kws_transformer", "kws_lstm", "shufflenet_v2_64", "tcn_basic_motions"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_plan_of_an_example_model_is_valid(name):
    model = onnx.load(str(data_dir("examples") / "models" / f"{name}.onnx"))
    compiled = compile_onnx(model)
    assert_valid_plan(compiled)


def test_chain_reaches_lower_bound():
    plan = compile_onnx(chain_model([4, 4, 4, 4, 4])).plan
    assert plan.arena_size == plan.lower_bound


def test_lower_bound_counts_the_skip_connection():
    compiled = compile_onnx(residual_model())
    # At the second convolution the skip input, the conv input and its output are alive.
    one = 4 * 6 * 6 * 4
    assert compiled.plan.lower_bound >= 3 * one
    assert_valid_plan(compiled)


def test_views_share_storage():
    compiled = compile_onnx(residual_model())
    graph, plan = compiled.graph, compiled.plan
    reshape = next(n for n in graph.nodes if n.op == "Reshape")
    assert plan.offset(reshape.outputs[0]) == plan.offset(reshape.inputs[0])
    assert "Reshape" not in [k["op"] for k in compiled.info.kernels]


def test_first_fit_takes_the_lowest_gap():
    placed = [Buffer("a", 32, 0, 5, offset=0), Buffer("b", 32, 0, 5, offset=64)]
    assert _first_fit(Buffer("c", 32, 1, 2), placed, ALIGNMENT) == 32
    assert _first_fit(Buffer("d", 48, 1, 2), placed, ALIGNMENT) == 96


def test_timeline_lists_every_buffer():
    plan = compile_onnx(residual_model()).plan
    text = plan.timeline()
    for name in plan.buffers:
        assert name in text
    assert f"arena {plan.arena_size} bytes" in text


def test_pinned_inputs_stay_at_the_start_for_the_whole_run():
    from codegen.compiler.compile import compile_graph
    from codegen.compiler.frontend import ModelSource, to_graph

    model = residual_model()
    graph = to_graph(onnx.ModelProto.FromString(model.SerializeToString()), "m")
    compiled = compile_graph(graph, ModelSource("m.onnx", "0" * 64, []), "tests",
                             pin_inputs=True)
    plan = compiled.plan
    pinned = plan.buffers[compiled.graph.storage(compiled.graph.inputs[0])]
    assert pinned.offset == 0 and pinned.first == -1 and pinned.last == plan.steps
    assert_valid_plan(compiled)
    for other in plan.buffers.values():
        if other is not pinned:
            assert other.offset >= pinned.size


def _brute_force_offsets(buffers: dict[str, Buffer], pinned: set[str]) -> dict[str, int]:
    """The greedy placement written the plain way (every buffer placed so far checked for
    overlap): the oracle for the planner's step index."""
    placed = [b for b in buffers.values() if b.name in pinned]
    offsets = {b.name: b.offset for b in placed}
    for buf in sorted((b for b in buffers.values() if b.name not in pinned),
                      key=lambda b: (-b.size, b.first, b.name)):
        fresh = Buffer(buf.name, buf.size, buf.first, buf.last)
        fresh.offset = _first_fit(fresh, [p for p in placed if p.overlaps(fresh)], ALIGNMENT)
        offsets[buf.name] = fresh.offset
        placed.append(fresh)
    return offsets


@pytest.mark.parametrize("model", [chain_model([4, 6, 5, 12, 7, 3, 9, 9, 2]),
                                   residual_model()], ids=["chain", "residual"])
def test_plan_equals_the_plain_greedy_placement(model):
    """The buffers the greedy placement places; room granted afterwards in the gaps it left
    (OpDef.room: the float convolutions' filters) is not part of it."""
    plan = compile_onnx(model).plan
    room = {plan.scratch[step] for step in plan.room}
    placed = {n: b for n, b in plan.buffers.items() if n not in room}
    assert {n: b.offset for n, b in placed.items()} == _brute_force_offsets(placed, set())


def test_lower_bound_equals_the_largest_sum_alive_at_one_step():
    rng = np.random.default_rng(3)
    buffers = {}
    for index in range(60):
        first = int(rng.integers(-1, 40))
        buffers[f"b{index}"] = Buffer(f"b{index}", 16 * int(rng.integers(1, 9)), first,
                                      int(rng.integers(first, 41)))
    expected = max(sum(b.size for b in buffers.values() if b.first <= t <= b.last)
                   for t in range(-1, 41))
    assert _lower_bound(buffers, 40) == expected
