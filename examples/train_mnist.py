"""Train a small CNN on the shipped MNIST digits and export it to examples/models/mnist_cnn.onnx.

Run from the repository top with the `train` extra installed:
    .venv/bin/python examples/train_mnist.py
The run is deterministic (fixed seeds, one thread, deterministic kernels), so running it again
rewrites the same file. It trains on the 4,000 training images of codegen.datasets.mnist()
only; the 1,000 held-out images are used once, at the end, for the accuracy it prints.
`--validate` instead trains on the first 3,500 training images and reports the accuracy on the
other 500 (how the recipe below was chosen), writing nothing.
"""

import argparse
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from codegen.datasets import mnist

SEED = 0
BATCH = 32
EPOCHS = 30
LR = 3e-3
SHIFT = 2  # augmentation: each image moved by up to this many pixels in x and in y
VALIDATION = 500  # --validate holds out the last this many training images
OUT = Path(__file__).resolve().parent / "models" / "mnist_cnn.onnx"


def layers() -> OrderedDict:
    """1x28x28 -> 10 logits, about 1.03 M MACs and 21 K parameters."""
    return OrderedDict([
        ("conv1", nn.Conv2d(1, 16, 3, padding=1)), ("bn1", nn.BatchNorm2d(16)),
        ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),  # 16x14x14
        ("conv2", nn.Conv2d(16, 32, 3, padding=1)), ("bn2", nn.BatchNorm2d(32)),
        ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),  # 32x7x7
        ("flatten", nn.Flatten()),  # 1568
        ("fc", nn.Linear(32 * 7 * 7, 10)),
    ])


def shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image translated by a random whole number of pixels, -SHIFT..SHIFT in each
    direction, the uncovered border filled with 0 (the background)."""
    n, size = len(x), x.shape[-1]
    padded = nn.functional.pad(x, (SHIFT,) * 4)
    dy, dx = torch.randint(0, 2 * SHIFT + 1, (2, n), generator=generator)
    rows = (dy[:, None] + torch.arange(size))[:, None, :, None].expand(-1, 1, -1, size + 2 * SHIFT)
    x = torch.gather(padded, 2, rows)
    cols = (dx[:, None] + torch.arange(size))[:, None, None, :].expand(-1, 1, size, -1)
    return torch.gather(x, 3, cols)


def train(x: torch.Tensor, y: torch.Tensor) -> nn.Sequential:
    torch.manual_seed(SEED)
    model = nn.Sequential(layers())
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    steps = EPOCHS * ((len(x) + BATCH - 1) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    # Our own generator for the shuffling and the augmentation, so nothing else that draws
    # random numbers shifts it.
    order = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x), generator=order).split(BATCH):
            optimizer.zero_grad()
            loss_fn(model(shift(x[batch], order)), y[batch]).backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def count(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum())


def export(model: nn.Module, path: Path) -> None:
    # The TorchScript exporter (dynamo=False) works offline with only `onnx` installed; the
    # dynamo one needs onnxscript. In eval mode it folds each BatchNorm into its Conv.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False,
                          opset_version=13, input_names=["input"], output_names=["logits"],
                          do_constant_folding=True)


def check(path: Path, model: nn.Module, x: torch.Tensor) -> float | None:
    """Largest |logit difference| between onnxruntime and torch, one image at a time (batch 1
    is static); None if they pick a different class anywhere."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits = np.concatenate(
        [session.run(["logits"], {"input": image[None]})[0] for image in x.numpy()])
    with torch.no_grad():
        torch_logits = model(x).numpy()
    if not np.array_equal(onnx_logits.argmax(1), torch_logits.argmax(1)):
        return None
    return float(np.abs(onnx_logits - torch_logits).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    parser.add_argument("--validate", action="store_true",
                        help=f"train on all but the last {VALIDATION} training images, report "
                             "the accuracy on those and write nothing")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in mnist())
    if args.validate:
        x_fit, y_fit = x_train[:-VALIDATION], y_train[:-VALIDATION]
        x_val, y_val = x_train[-VALIDATION:], y_train[-VALIDATION:]
        model = train(x_fit, y_fit)
        right = count(model, x_val, y_val)
        print(f"train {count(model, x_fit, y_fit)}/{len(x_fit)}, validation {right}/{len(x_val)} "
              f"({100 * right / len(x_val):.1f} %)")
        return 0
    model = train(x_train, y_train)
    right = count(model, x_test, y_test)
    print(f"train {count(model, x_train, y_train)}/{len(x_train)}, held out {right}/{len(x_test)} "
          f"({100 * right / len(x_test):.1f} %)")
    export(model, args.output)
    diff = check(args.output, model, x_test)
    if diff is None or diff > 1e-4:
        print(f"error: {args.output} does not match torch", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes); onnxruntime vs torch on "
          f"the held-out images: max |logit difference| {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
