"""float depthwise Conv, a filter three wide at stride 1 or 2 along the row: three
neighbouring output pixels of a row by four channels per step (ariel_dw3_3x4_f32's and
ariel_dw3s2_3x4_f32's assembly on a single-precision FPU, ariel_dw3_f32 elsewhere), the
three pixels' taps reading five or seven input columns per filter row; filter rows outside
the input skipped, columns outside read as zeros; a row's last pixels by a step that ends at
its last pixel (writing one or two again); the filters copied to the stack a chunk of
channels at a time on a core with a single-precision FPU; biases, clamps and stores in the
assembly. The host C equals onnx.reference within the float tolerance; the firmware in QEMU
equals the host C bit for bit (same order and roundings) on a Cortex-M4F, and on a
Cortex-M7 (both strides) and a Cortex-M0+ for some cases."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from onnx import helper, numpy_helper

from tests.compiler.ops.test_conv_f32_blocks import host_outputs
from tests.compiler.ops.test_s8_dsp_qemu import firmware, run_firmware
from tests.support import compile_onnx, random_array, run_reference, single_node_model

# x: the input (N, C, H, W); attrs: the Conv's; chunks: how many chunks of channels the
# kernel copies its filters in; then: a clamp fused into it (Relu: a low bound; Clip: both),
# which the assembly applies.
CASES = {
    "pads_one_pixel_over": dict(x=(1, 8, 5, 7), attrs=dict(pads=[1, 1, 1, 1]), chunks=1),
    "rows_strided_dilated_two_over_relu": dict(x=(1, 4, 9, 7),
                                               attrs=dict(strides=[2, 1], dilations=[2, 1]),
                                               chunks=1, then="Relu"),
    "two_chunks_of_channels_clip": dict(x=(1, 116, 3, 4), attrs=dict(pads=[0, 1, 0, 1]),
                                        chunks=2, then="Clip"),
    "stride2_pads_two_over_relu": dict(x=(1, 8, 7, 9), attrs=dict(strides=[2, 2],
                                                                 pads=[1, 1, 1, 1]),
                                       chunks=1, then="Relu"),
    "rows_of_three_pixels": dict(x=(1, 4, 3, 5), attrs=dict(pads=[1, 0, 1, 0]), chunks=1),
}


def depthwise_model(rng: np.random.Generator, spec: dict):
    """The depthwise Conv of `spec`, with a bias and the clamp it names."""
    c = spec["x"][1]
    conv = single_node_model("Conv", {"x": random_array(rng, spec["x"])},
                             {"w": random_array(rng, (c, 1, 3, 3)),
                              "b": random_array(rng, (c,))}, group=c, **spec["attrs"])
    then = spec.get("then")
    if then is None:
        return conv
    graph = conv.graph
    out = graph.output[0].name
    graph.node[0].output[0] = "conv"
    inputs = ["conv"]
    if then == "Clip":
        graph.initializer.extend([numpy_helper.from_array(np.array(-0.1, np.float32), "lo"),
                                  numpy_helper.from_array(np.array(0.2, np.float32), "hi")])
        inputs += ["lo", "hi"]
    graph.node.append(helper.make_node(then, inputs, [out]))
    return conv


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every case compiled once, with its inputs and the host C's outputs."""
    rng = np.random.default_rng(63)
    cases = {}
    for case, spec in CASES.items():
        model = depthwise_model(rng, spec)
        x = random_array(rng, spec["x"])
        compiled = compile_onnx(model, "m")
        clamps = {None: "none", "Relu": "low", "Clip": "both"}[spec.get("then")]
        assert f"({clamps} used)" in compiled.files["m.c"]
        inputs = [x, random_array(rng, x.shape)]
        host = host_outputs(compiled, inputs, tmp_path_factory.mktemp(case))
        cases[case] = (model, compiled, inputs, host)
    return cases


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_row_path_matches_onnx_reference(case, built):
    model, compiled, inputs, host = built[case]
    source = compiled.files["m.c"]
    stride = CASES[case]["attrs"].get("strides", [1, 1])[1]
    assert f"ariel_dw3{'s2' if stride == 2 else ''}_3x4_f32(" in source
    chunk = int(source.split("The filters ")[1].split(" channels at a time")[0])
    assert -(-CASES[case]["x"][1] // chunk) == CASES[case]["chunks"]
    for x, got in zip(inputs, host, strict=True):
        np.testing.assert_allclose(got, run_reference(model, [x])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.qemu
@pytest.mark.parametrize("case, board", [(case, "nucleo-l4r5zi") for case in CASES]
                         + [("pads_one_pixel_over", "disco-f746ng"),
                            ("stride2_pads_two_over_relu", "disco-f746ng"),
                            ("pads_one_pixel_over", "nucleo-g071rb")])
def test_firmware_equals_host_c(case, board, built, tmp_path):
    _, compiled, inputs, host = built[case]
    elf = firmware(compiled, tmp_path / "fw", board=board)
    text = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    # The assembly's weight load (a filter row's three taps) where the core has an FPU.
    assert ("vldmia" in text and "{s12-s23}" in text) == (board != "nucleo-g071rb")
    got = run_firmware(compiled, elf, [[x] for x in inputs], tmp_path / "run", board=board)
    np.testing.assert_array_equal(got, host)
