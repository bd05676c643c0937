"""The three calibration methods ONNX Runtime offers all give a working int8 model, and the
option reaches the calibrator: percentile clips ranges that minmax keeps whole. (On this
small MLP ONNX Runtime's entropy search keeps every minmax range, so it is only checked to
work.)"""

import numpy as np
import onnx

from codegen.compiler.compile import Options, compile_model
from codegen.compiler.reference import run_graph
from codegen.datasets import digits_split
from codegen.resources import data_dir

MLP = data_dir("examples") / "models" / "digits_mlp.onnx"


def activation_scales(model: onnx.ModelProto) -> list[float]:
    return sorted(float(onnx.numpy_helper.to_array(i)) for i in model.graph.initializer
                  if i.name.endswith("_scale") and onnx.numpy_helper.to_array(i).size == 1)


def test_minmax_entropy_and_percentile(capfd):
    _, _, x_test, y_test = digits_split()
    x = x_test[:200].reshape(200, 1, 64)
    scales, accuracies = {}, {}
    for method in ("minmax", "entropy", "percentile"):
        compiled = compile_model(MLP, Options(precision="int8", calibration="digits",
                                              method=method))
        scales[method] = activation_scales(compiled.quantized_model)
        probabilities = np.stack([run_graph(compiled.graph, [sample])[0] for sample in x])
        accuracies[method] = float((probabilities.reshape(200, -1).argmax(1) ==
                                    y_test[:200]).mean())
    assert scales["percentile"] != scales["minmax"], scales
    assert all(p <= m for p, m in zip(scales["percentile"], scales["minmax"], strict=True))
    assert min(accuracies.values()) > 0.9, accuracies
    assert capfd.readouterr().out == "", "the calibrators' progress printing leaks out"
