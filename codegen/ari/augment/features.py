"""The backbone's features at each exit, from onnxruntime: the exit tensors made extra
outputs of a copy of the model, run input by input, each pooled as soon as it is computed
(a feature map for thousands of inputs would not fit in memory; its pooling does)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from codegen.ari.augment.heads import pool_features
from codegen.compiler.onnxrun import run_model

# Inputs per onnxruntime session: big enough that creating the session costs little, small
# enough that the unpooled feature maps of one chunk stay small.
CHUNK = 256


@dataclass(frozen=True)
class Pooling:
    """One way to reduce an exit's tensor to a feature vector: the tensor, the pooling and
    its window (heads.pool_window)."""

    tensor: str
    pool: str
    window: tuple[int, ...]


def backbone_features(model: onnx.ModelProto, inputs: dict[str, np.ndarray],
                      poolings: list[Pooling], final_output: str,
                      progress: Callable[[str], None] | None = None, what: str = "inputs"
                      ) -> tuple[dict[Pooling, np.ndarray], np.ndarray]:
    """Pooled features (N, F) per pooling, and the final output's scores (N, classes), for
    the N inputs of `inputs` (name -> (N, *input shape))."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {value.name for value in probe.graph.output}
    tensors = list(dict.fromkeys(p.tensor for p in poolings))
    for name in tensors:
        if name not in present:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    wanted = [final_output, *tensors]
    count = len(next(iter(inputs.values())))
    pooled: dict[Pooling, list[np.ndarray]] = {p: [] for p in poolings}
    finals = []
    for start in range(0, count, CHUNK):
        stop = min(count, start + CHUNK)
        feeds = [{name: batch[i] for name, batch in inputs.items()}
                 for i in range(start, stop)]
        results = run_model(probe, feeds, wanted, "computing the backbone's features")
        finals.append(np.stack([r[0] for r in results]).reshape(stop - start, -1))
        for pooling in poolings:
            column = 1 + tensors.index(pooling.tensor)
            values = np.concatenate([r[column] for r in results])
            pooled[pooling].append(pool_features(values, pooling.pool, pooling.window))
        if progress is not None and count > CHUNK:
            progress(f"features of {stop}/{count} {what}")
    return ({p: np.concatenate(parts) for p, parts in pooled.items()},
            np.concatenate(finals).astype(np.float32))
