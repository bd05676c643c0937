"""Train a little and a big 1-D CNN on BasicMotions and export both to examples/models/.

Run from the repository top with the `train` extra installed:
    .venv/bin/python examples/train_basic_motions.py
It writes basic_motions_little.onnx and basic_motions_big.onnx. The run is deterministic
(fixed seeds, one thread, deterministic kernels), so running it again rewrites the same files.

The two networks are a pair for adaptive inference: the little one is cheap enough to run on
every window, the big one is more accurate and costs about twelve times as many MACs. Both
take the raw recordings of codegen.datasets.basic_motions(): the per-channel standardisation
learnt from the training recordings is folded into each network's first convolution.
"""

import argparse
import copy
import sys
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from codegen.datasets import basic_motions

SEED = 0
BATCH = 8
MODELS = Path(__file__).resolve().parent / "models"
CHANNELS, STEPS, CLASSES = 6, 100, 4


def little_layers() -> OrderedDict:
    """6x100 -> 4 logits for about 4,600 MACs: a strided convolution, a small one, the average.

    The first convolution has no padding, so that the input standardisation folds into it
    exactly (a padded border would see 0 where the raw input's 0 is not the normalised 0).
    """
    return OrderedDict([
        ("conv1", nn.Conv1d(CHANNELS, 4, 4, stride=4)), ("relu1", nn.ReLU()),  # 4x25
        ("conv2", nn.Conv1d(4, 8, 3)), ("relu2", nn.ReLU()),  # 8x23
        ("pool", nn.AdaptiveAvgPool1d(1)), ("flatten", nn.Flatten()),  # 8
        ("fc", nn.Linear(8, CLASSES)),
    ])


def big_layers() -> OrderedDict:
    """6x100 -> 4 logits for about 55,000 MACs: three convolutions, pooling, the average."""
    return OrderedDict([
        ("conv1", nn.Conv1d(CHANNELS, 8, 5, stride=2)), ("relu1", nn.ReLU()),  # 8x48
        ("conv2", nn.Conv1d(8, 16, 5)), ("relu2", nn.ReLU()),  # 16x44
        ("pool2", nn.MaxPool1d(2)),  # 16x22
        ("conv3", nn.Conv1d(16, 16, 3)), ("relu3", nn.ReLU()),  # 16x20
        ("pool", nn.AdaptiveAvgPool1d(1)), ("flatten", nn.Flatten()),  # 16
        ("fc", nn.Linear(16, CLASSES)),
    ])


@dataclass(frozen=True)
class Recipe:
    layers: Callable[[], OrderedDict]
    epochs: int
    lr: float
    # Regularisation, all off for the big network. With weight_decay the optimizer is AdamW.
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False  # random circular time shift, amplitude scale and noise (augment())


RECIPES = {
    # Chosen by cross-validation on the training recordings only (see --cross-validate).
    "little": Recipe(little_layers, 300, 1e-2, weight_decay=1e-2, label_smoothing=0.1,
                     augment=True),
    "big": Recipe(big_layers, 300, 3e-3),
}
# augment(): amplitude scale drawn from 1 +- SCALE per recording, noise of this std (raw units).
SCALE, NOISE = 0.2, 0.1


class Standardised(nn.Module):
    """A network preceded by a fixed per-channel standardisation, (x - mean) / std."""

    def __init__(self, layers: OrderedDict, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1))
        self.register_buffer("std", std.reshape(1, -1, 1))
        self.net = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    def folded(self) -> nn.Sequential:
        """The same function as one Sequential, the standardisation inside the first conv.

        conv(w, b)((x - m) / s) = conv(w / s, b - sum(w * m / s))(x), per input channel.
        """
        net = copy.deepcopy(self.net)
        conv = net[0]
        assert isinstance(conv, nn.Conv1d) and conv.padding == (0,)
        mean, std = self.mean.reshape(1, -1, 1), self.std.reshape(1, -1, 1)
        with torch.no_grad():
            shift = (conv.weight * mean / std).sum(dim=(1, 2))
            conv.weight.div_(std)
            conv.bias.sub_(shift)
        return net.eval()


def count(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum())


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each recording rotated in time by a random number of steps (the activities are
    periodic, and where a recording starts means nothing), scaled by a random factor and
    given a little Gaussian noise, all on the raw values."""
    n = len(x)
    shifts = torch.randint(0, STEPS, (n,), generator=generator)
    steps = (torch.arange(STEPS) - shifts[:, None]) % STEPS  # torch.roll, one shift per row
    x = torch.gather(x, 2, steps[:, None, :].expand(-1, x.shape[1], -1))
    x = x * (1 + SCALE * (2 * torch.rand(n, 1, 1, generator=generator) - 1))
    return x + NOISE * torch.randn(x.shape, generator=generator)


def train(name: str, x: torch.Tensor, y: torch.Tensor) -> Standardised:
    recipe = RECIPES[name]
    torch.manual_seed(SEED)
    mean, std = x.mean(dim=(0, 2)), x.std(dim=(0, 2))
    model = Standardised(recipe.layers(), mean, std)
    if recipe.weight_decay:
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr,
                                      weight_decay=recipe.weight_decay)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    # Our own generator for the shuffling (and the augmentation), so nothing else that draws
    # random numbers shifts it.
    order = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(recipe.epochs):
        for batch in torch.randperm(len(x), generator=order).split(BATCH):
            xb = augment(x[batch], order) if recipe.augment else x[batch]
            optimizer.zero_grad()
            loss_fn(model(xb), y[batch]).backward()
            optimizer.step()
    return model.eval()


def cross_validate(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
    """Five stratified folds of the training recordings (2 per class held out each time),
    partitioned three ways: consecutive recordings of each class, then two random orders.
    Prints accuracy, mean negative log-likelihood and the largest top-1 minus top-2 margin of
    a wrong answer over the 120 held-out predictions. Never sees the test recordings."""
    logits, labels = [], []
    for partition in range(3):
        rng = np.random.default_rng(100 + partition - 1)
        per_class = [np.flatnonzero(y.numpy() == c) for c in range(CLASSES)]
        if partition:
            per_class = [rng.permutation(ids) for ids in per_class]
        for fold in range(5):
            held = np.concatenate([ids[2 * fold:2 * fold + 2] for ids in per_class])
            kept = np.setdiff1d(np.arange(len(y)), held)
            model = train(name, x[kept], y[kept])
            with torch.no_grad():
                logits.append(model(x[held]))
            labels.append(y[held])
    logits, labels = torch.cat(logits), torch.cat(labels)
    right = logits.argmax(1) == labels
    top2 = logits.topk(2, dim=1).values
    margin = top2[:, 0] - top2[:, 1]
    nll = float(nn.functional.cross_entropy(logits, labels))
    worst = float(margin[~right].max()) if (~right).any() else 0.0
    print(f"{name}: cross-validation on the training recordings: {int(right.sum())}/"
          f"{len(labels)} ({100 * float(right.float().mean()):.1f} %), mean NLL {nll:.3f}, "
          f"largest margin of a wrong answer {worst:.2f} (right answers above it: "
          f"{int((margin[right] > worst).sum())})")


def export(model: nn.Module, path: Path, shape: tuple[int, int] = (CHANNELS, STEPS)) -> None:
    """`model` as ONNX taking one (channels, steps) recording, `input` -> `logits`."""
    # The TorchScript exporter (dynamo=False) works offline with only `onnx` installed; the
    # dynamo one needs onnxscript.
    with warnings.catch_warnings():
        # Its deprecation notice says nothing that matters for a fixed opset-13 graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, *shape),), str(path), dynamo=False,
                          opset_version=13, input_names=["input"], output_names=["logits"],
                          do_constant_folding=True)


def check(path: Path, model: nn.Module, x_test: torch.Tensor) -> float | None:
    """Largest |logit difference| between onnxruntime and torch on the test recordings, one
    recording at a time (batch 1 is static); None if they pick a different class anywhere."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits = np.concatenate(
        [session.run(["logits"], {"input": rec[None]})[0] for rec in x_test.numpy()])
    with torch.no_grad():
        torch_logits = model(x_test).numpy()
    if not np.array_equal(onnx_logits.argmax(1), torch_logits.argmax(1)):
        return None
    return float(np.abs(onnx_logits - torch_logits).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", type=Path, default=MODELS)
    parser.add_argument("--cross-validate", action="store_true",
                        help="only cross-validate the little network's recipe on the training "
                             "recordings (about 2 minutes) and write nothing")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in basic_motions())
    if args.cross_validate:
        cross_validate("little", x_train, y_train)
        return 0
    status = 0
    for name in RECIPES:
        model = train(name, x_train, y_train)
        print(f"{name}: train {count(model, x_train, y_train)}/{len(x_train)}, "
              f"test {count(model, x_test, y_test)}/{len(x_test)} "
              f"({100 * count(model, x_test, y_test) / len(x_test):.1f} %)")
        path = args.output_dir / f"basic_motions_{name}.onnx"
        export(model.folded(), path)
        # The exported graph (standardisation folded) must compute what torch computes with
        # the standardisation as a separate step.
        diff = check(path, model, x_test)
        if diff is None or diff > 1e-4:
            print(f"error: {path} does not match torch", file=sys.stderr)
            status = 1
        else:
            print(f"  wrote {path} ({path.stat().st_size} bytes); onnxruntime vs torch on the "
                  f"test set: max |logit difference| {diff:.2e}")
    return status


if __name__ == "__main__":
    sys.exit(main())
