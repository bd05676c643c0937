"""Train a small temporal convolutional network (TCN) with causal padding on BasicMotions
and export it to examples/models/tcn_basic_motions.onnx.

Run from the repository top with PyTorch installed (`.venv/bin/pip install torch==2.13.0`):
    .venv/bin/python examples/train_tcn.py
The run is deterministic (fixed seeds, one thread, deterministic kernels), so running it
again rewrites the same file.

The architecture is the TCN of Bai, Kolter and Koltun, "An Empirical Evaluation of Generic
Convolutional and Recurrent Networks for Sequence Modeling" (2018), written here in PyTorch:
residual blocks of two dilated 1-D convolutions (kernel 3, dilations 1, 2, 4), each made
causal by padding its input on the left only with F.pad, as such models are written. The
class is read from the last time step (x[:, :, -1], a Gather). PyTorch's TorchScript
exporter writes each F.pad as a Pad whose pads come out of a small constant sub-graph
(ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast): ariel folds it at build time.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from codegen.datasets import basic_motions

SEED = 0
EPOCHS, BATCH, LR = 60, 8, 3e-3
CHANNELS, STEPS, CLASSES = 6, 100, 4
WIDTH, KERNEL, DILATIONS = 16, 3, (1, 2, 4)
OUT = Path(__file__).resolve().parent / "models" / "tcn_basic_motions.onnx"


class CausalConv(nn.Module):
    """A dilated 1-D convolution that sees only the present and the past."""

    def __init__(self, cin: int, cout: int, dilation: int):
        super().__init__()
        self.pad = (KERNEL - 1) * dilation
        self.conv = nn.Conv1d(cin, cout, KERNEL, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, dilation: int):
        super().__init__()
        self.first = CausalConv(cin, cout, dilation)
        self.second = CausalConv(cout, cout, dilation)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.second(F.relu(self.first(x))))
        return F.relu(y + self.skip(x))


class TCN(nn.Module):
    def __init__(self):
        super().__init__()
        widths = [CHANNELS] + [WIDTH] * len(DILATIONS)
        self.blocks = nn.Sequential(*[Block(cin, cout, d) for cin, cout, d in
                                      zip(widths[:-1], widths[1:], DILATIONS, strict=True)])
        self.head = nn.Linear(WIDTH, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x)[:, :, -1])


def train(x: torch.Tensor, y: torch.Tensor) -> TCN:
    torch.manual_seed(SEED)
    model = TCN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x), generator=order).split(BATCH):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def count(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum())


def export(model: nn.Module, path: Path) -> None:
    # The TorchScript exporter (dynamo=False) works offline with only `onnx` installed; the
    # dynamo one needs onnxscript. Constant folding is left off, as users often export:
    # the pad sub-graphs then reach ariel as PyTorch writes them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, CHANNELS, STEPS),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["logits"],
                          do_constant_folding=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in basic_motions())
    model = train(x_train, y_train)
    print(f"train {count(model, x_train, y_train)}/{len(x_train)}, test "
          f"{count(model, x_test, y_test)}/{len(x_test)}")
    export(model, args.output)
    session = ort.InferenceSession(str(args.output), providers=["CPUExecutionProvider"])
    ours = np.concatenate([session.run(None, {"input": x[None]})[0] for x in x_test.numpy()])
    with torch.no_grad():
        difference = np.abs(ours - model(x_test).numpy()).max()
    if difference > 1e-4:
        print(f"error: {args.output} does not match torch ({difference:.2e})", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes); onnxruntime vs torch on "
          f"the test set: max |logit difference| {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
