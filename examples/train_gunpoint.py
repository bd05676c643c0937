"""Train a 1-D CNN on GunPoint and export it to examples/models/gunpoint_cnn.onnx.

Run from the repository top with the `train` extra installed:
    .venv/bin/python examples/train_gunpoint.py
The run is deterministic (fixed seeds, one thread, deterministic kernels), so running it
again rewrites the same file.

The network takes the series of codegen.datasets.gunpoint() as they are: the archive already
standardised each one (mean 0, standard deviation 1), so the model needs no normalisation of
its own. It is the same recipe as the big BasicMotions network (examples/README.md), one
convolution deeper for the longer series.
"""

import argparse
import sys
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from train_basic_motions import check, count, export

from codegen.datasets import gunpoint

SEED = 0
BATCH = 8
EPOCHS = 300
LR = 3e-3
MODELS = Path(__file__).resolve().parent / "models"
CHANNELS, STEPS, CLASSES = 1, 150, 2


def layers() -> OrderedDict:
    """1x150 -> 2 logits: four convolutions, one pooling, the average."""
    return OrderedDict([
        ("conv1", nn.Conv1d(CHANNELS, 8, 7, stride=2)), ("relu1", nn.ReLU()),  # 8x72
        ("conv2", nn.Conv1d(8, 16, 5)), ("relu2", nn.ReLU()),  # 16x68
        ("pool2", nn.MaxPool1d(2)),  # 16x34
        ("conv3", nn.Conv1d(16, 32, 3)), ("relu3", nn.ReLU()),  # 32x32
        ("conv4", nn.Conv1d(32, 32, 3)), ("relu4", nn.ReLU()),  # 32x30
        ("pool", nn.AdaptiveAvgPool1d(1)), ("flatten", nn.Flatten()),  # 32
        ("fc", nn.Linear(32, CLASSES)),
    ])


def train(x: torch.Tensor, y: torch.Tensor) -> nn.Sequential:
    torch.manual_seed(SEED)
    model = nn.Sequential(layers())
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    # Our own generator for the shuffling, so nothing else that draws random numbers shifts it.
    order = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x), generator=order).split(BATCH):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", type=Path, default=MODELS)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in gunpoint())
    model = train(x_train, y_train)
    right = count(model, x_test, y_test)
    print(f"train {count(model, x_train, y_train)}/{len(x_train)}, test {right}/{len(x_test)} "
          f"({100 * right / len(x_test):.1f} %)")
    path = args.output_dir / "gunpoint_cnn.onnx"
    export(model, path, (CHANNELS, STEPS))
    diff = check(path, model, x_test)
    if diff is None or diff > 1e-4:
        print(f"error: {path} does not match torch", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size} bytes); onnxruntime vs torch on the test "
          f"set: max |logit difference| {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
