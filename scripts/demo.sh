#!/usr/bin/env bash
# The demo: the MLPerf Tiny anomaly-detection autoencoder, compiled for the default board,
# run in QEMU on real ToyCar log-mel windows, its outputs checked against onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."
ariel=.venv/bin/ariel
model=examples/models/ad_autoencoder_toycar.onnx
out=out/demo

$ariel inspect "$model"
$ariel build "$model" --board mps2-an386 -o "$out"
.venv/bin/python - <<'PY'
import numpy as np
from codegen.datasets import toycar_windows
np.save("out/demo/toycar.npy", toycar_windows()[:8])
PY
$ariel simulate "$out" --inputs "$out/toycar.npy" --outputs "$out/reconstruction.npy" --compare
.venv/bin/python - <<'PY'
import numpy as np
x = np.load("out/demo/toycar.npy")
y = np.load("out/demo/reconstruction.npy").reshape(x.shape)
print("reconstruction error (MSE) per window, computed by the firmware's outputs:",
      np.round(((x - y) ** 2).mean(axis=1), 2))
PY
