"""Export two recurrent keyword spotters to examples/models: kws_gru.onnx and kws_lstm.onnx.

Both read 49 frames of 10 MFCCs (the MLPerf Tiny KWS input's size, batch first) and give 12
logits: a GRU of 64 units whose last hidden state feeds a Linear head, and two stacked LSTMs
of 32 units (the first one's whole output sequence feeding the second) whose last hidden
state feeds the head. The weights are PyTorch's own initialisation from a fixed seed, not
trained: no speech data set installs offline, and a compiler compiles random weights exactly
as it compiles trained ones. (codegen.datasets.toycar_mfcc_windows gives MFCC-like inputs
from the shipped ToyCar recording for runs and calibration.)

Run from the repository top with torch 2.13.0 installed:
    .venv/bin/python examples/export_kws_recurrent.py
The run is deterministic (fixed seed, one thread), so running it again rewrites the same
files.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from codegen.datasets import toycar_mfcc_windows

SEED = 0
FRAMES, COEFFICIENTS, CLASSES = 49, 10, 12
MODELS = Path(__file__).resolve().parent / "models"


class GruSpotter(nn.Module):
    """MFCC frames -> GRU(64) -> last hidden state -> 12 logits."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(COEFFICIENTS, 64, batch_first=True)
        self.fc = nn.Linear(64, CLASSES)

    def forward(self, x):
        _, hidden = self.gru(x)
        return self.fc(hidden.squeeze(0))


class LstmSpotter(nn.Module):
    """MFCC frames -> LSTM(32) -> LSTM(32) -> last hidden state -> 12 logits."""

    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTM(COEFFICIENTS, 32, batch_first=True)
        self.lstm2 = nn.LSTM(32, 32, batch_first=True)
        self.fc = nn.Linear(32, CLASSES)

    def forward(self, x):
        sequence, _ = self.lstm1(x)
        _, (hidden, _) = self.lstm2(sequence)
        return self.fc(hidden.squeeze(0))


def export(model: nn.Module, path: Path) -> None:
    # The TorchScript exporter (dynamo=False) works offline with only `onnx` installed; the
    # dynamo one needs onnxscript. Static shapes, batch 1, opset 17.
    with warnings.catch_warnings():
        # Its notices (deprecation, batch_first with a batch of 1) change nothing here.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, FRAMES, COEFFICIENTS),), str(path),
                          dynamo=False, opset_version=17, input_names=["mfcc"],
                          output_names=["logits"], do_constant_folding=True)


def check(model: nn.Module, path: Path) -> float:
    """Largest |logit difference| between onnxruntime on the file and torch, over the
    ToyCar MFCC windows."""
    windows = toycar_mfcc_windows(FRAMES, COEFFICIENTS)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits = np.concatenate([session.run(None, {"mfcc": w[None]})[0] for w in windows])
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(windows)).numpy()
    return float(np.abs(onnx_logits - torch_logits).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", type=Path, default=MODELS)
    args = parser.parse_args()

    torch.set_num_threads(1)
    failed = False
    for name, make in (("kws_gru", GruSpotter), ("kws_lstm", LstmSpotter)):
        torch.manual_seed(SEED)
        model = make().eval()
        path = args.output_dir / f"{name}.onnx"
        export(model, path)
        diff = check(model, path)
        print(f"wrote {path} ({path.stat().st_size} bytes); onnxruntime vs torch on the "
              f"ToyCar MFCC windows: max |logit difference| {diff:.2e}")
        failed |= diff > 1e-4
    if failed:
        print("error: an ONNX model does not match torch", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
