"""Train a small CNN on scikit-learn's 8x8 digits and export it to examples/models/digits_cnn.onnx.

Run from the repository top with the `train` extra installed:
    .venv/bin/python examples/train_digits_cnn.py
The run is deterministic (fixed seeds, one thread, deterministic kernels), so running it again
rewrites the same file.
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

from codegen.datasets import digits_split

SEED = 0
EPOCHS = 40
BATCH = 32
OUT = Path(__file__).resolve().parent / "models" / "digits_cnn.onnx"


def make_model() -> nn.Sequential:
    """8x8x1 -> 10 logits, with the layers a microcontroller CNN typically has.

    The layers are named because the exporter names each ONNX node after its layer (for
    example /conv1/Conv), and ariel names the generated C functions after the nodes.
    """
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 8, 3, padding=1)), ("bn1", nn.BatchNorm2d(8)),  # 8x8x8
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("bn2", nn.BatchNorm2d(16)),  # 8x8x16
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),  # 4x4x16
        ("conv3", nn.Conv2d(16, 16, 3)), ("relu3", nn.ReLU()),  # 2x2x16
        ("flatten", nn.Flatten()),  # 64
        ("fc", nn.Linear(64, 10)),
    ]))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    torch.manual_seed(SEED)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
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


def export(model: nn.Module, path: Path) -> None:
    # The TorchScript exporter (dynamo=False) works offline with only `onnx` installed; the
    # dynamo one needs onnxscript. In eval mode it folds each BatchNorm into the Conv before it.
    with warnings.catch_warnings():
        # Its deprecation notice says nothing that matters for a fixed opset-13 graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                          opset_version=13, input_names=["input"], output_names=["logits"],
                          do_constant_folding=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in digits_split())
    model = train(x_train, y_train)
    print(f"train accuracy {accuracy(model, x_train, y_train):.4f}, "
          f"test accuracy {accuracy(model, x_test, y_test):.4f} "
          f"({len(x_train)} train, {len(x_test)} test)")

    export(model, args.output)
    # The exported graph must compute what torch computes, image by image (batch 1 is static).
    session = ort.InferenceSession(str(args.output), providers=["CPUExecutionProvider"])
    onnx_logits = np.concatenate(
        [session.run(["logits"], {"input": image[None]})[0] for image in x_test.numpy()])
    with torch.no_grad():
        torch_logits = model(x_test).numpy()
    diff = float(np.abs(onnx_logits - torch_logits).max())
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes); "
          f"onnxruntime vs torch on the test set: max |logit difference| {diff:.2e}")
    if diff > 1e-4 or not np.array_equal(onnx_logits.argmax(1), torch_logits.argmax(1)):
        print("error: the ONNX model does not match torch", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
