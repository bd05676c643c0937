"""How ariel's compile time grows with the length of a model: chains of N elementwise nodes
(Add, Relu, Mul, repeated; the Relu fuses into the Add before it), compiled to C and built
into firmware for a board:

    .venv/bin/python bench/compile_time.py [N ...] [--board B]

For each N the table gives the CPU seconds of ariel's own compile (front end, passes, plan,
C), and of gcc and the link (`make` on the generated project); then each one's growth
against linear: (t_N / t_first) / (N / N_first), 1.0 when the time grows as the model does.
CPU time (this process's, and make's children's) rather than wall time, so that other work
on the machine does not move the figures much."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.compiler.compile import compile_model  # noqa: E402
from codegen.target.boards import DEFAULT_BOARD, get_board  # noqa: E402
from codegen.target.firmware import make_firmware, write_project  # noqa: E402

OPS = ("Add", "Relu", "Mul")
WIDTH = 16


def chain_model(nodes: int) -> onnx.ModelProto:
    """x -> Add -> Relu -> Mul -> Add -> ... -> y, on [1, WIDTH] floats."""
    made, previous = [], "x"
    for index in range(nodes):
        op = OPS[index % len(OPS)]
        output = "y" if index == nodes - 1 else f"t{index}"
        inputs = [previous, "b"] if op != "Relu" else [previous]
        made.append(helper.make_node(op, inputs, [output], name=f"{op.lower()}{index}"))
        previous = output
    value = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, WIDTH]) for n in "xy"]
    graph = helper.make_graph(made, "chain", value[:1], value[1:], initializer=[
        numpy_helper.from_array(np.full((1, WIDTH), 0.5, np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(nodes: int, board, work: Path) -> tuple[float, float]:
    """(ariel's compile, gcc and link) in CPU seconds for a chain of `nodes`."""
    path = work / f"chain{nodes}.onnx"
    onnx.save(chain_model(nodes), path)
    start = time.process_time()
    compiled = compile_model(path)
    compile_seconds = time.process_time() - start
    project = work / f"chain{nodes}"
    project.mkdir()
    start = children_cpu()
    write_project(project, compiled.files, compiled.info, board, "bench", "")
    make_firmware(project, compiled.info, board)
    return compile_seconds, children_cpu() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nodes", nargs="*", type=int, default=[1000, 2000, 3000])
    parser.add_argument("--board", default=DEFAULT_BOARD)
    args = parser.parse_args()
    board = get_board(args.board)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ariel-bench-compile-") as folder:
        for nodes in args.nodes:
            rows.append((nodes, *measure(nodes, board, Path(folder))))
    first = rows[0]
    print(f"chains of {'/'.join(OPS)} nodes on [1, {WIDTH}] floats, built for {board.name} "
          "(CPU seconds; growth 1.0 = linear)")
    print(f"{'nodes':>7}  {'ariel compile':>13}  {'growth':>6}  {'gcc + link':>10}  "
          f"{'growth':>6}")
    for nodes, ours, gcc in rows:
        scale = nodes / first[0]
        print(f"{nodes:>7}  {ours:>13.2f}  {ours / first[1] / scale:>6.2f}  {gcc:>10.2f}  "
              f"{gcc / first[2] / scale:>6.2f}")


if __name__ == "__main__":
    main()
