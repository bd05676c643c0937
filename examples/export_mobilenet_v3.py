"""Export a small MobileNetV3-Small (width 0.35, 96x96 input) to
examples/models/mobilenet_v3_small_96.onnx.

Run from the repository top with PyTorch installed (`.venv/bin/pip install torch==2.13.0`):
    .venv/bin/python examples/export_mobilenet_v3.py
The weights are a seeded random initialisation (not trained: the model is here to be
compiled, and its layers are what matter); the batch-norm statistics are measured on real
photographs (crops of scikit-learn's two sample images, codegen.datasets.sample_image_crops),
so that every layer's activations keep a sensible range, as in a trained network. The run is
deterministic (fixed seeds, one thread), so running it again rewrites the same file.

The architecture follows Howard et al., "Searching for MobileNetV3" (ICCV 2019), Table 2
(MobileNetV3-Small), written here in PyTorch: a 3x3 stride-2 stem with hard-swish, then
eleven inverted-residual blocks (1x1 expansion, 3x3 or 5x5 depthwise, an optional
squeeze-and-excite of global average / 1x1 / ReLU / 1x1 / hard-sigmoid multiplying the
channels, 1x1 projection, a residual where the shape allows), ReLU in the first three blocks
and hard-swish after, a last 1x1 convolution, global average and a two-layer head. Every
width is multiplied by 0.35 (rounded to multiples of 8, as the paper's width multiplier
does), the head's hidden layer has 128 units instead of 1024, the input is 96x96 RGB and
there are 10 classes, so that the file stays small and a run in an emulator takes seconds.
"""

import argparse
import sys
from pathlib import Path

import photo_networks
import torch
from torch import nn

SEED = 0
SIZE, CLASSES = 96, 10
WIDTH = 0.35
HEAD = 128
OUT = Path(__file__).resolve().parent / "models" / "mobilenet_v3_small_96.onnx"

# MobileNetV3-Small, Table 2: kernel, expansion, output channels, squeeze-excite,
# activation (RE: ReLU, HS: hard-swish), stride; channels at width 1.0.
BLOCKS = [(3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
          (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
          (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
          (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)]
STEM, LAST = 16, 576


def divisible(channels: float, divisor: int = 8) -> int:
    """The paper's width rounding: to the nearest multiple of 8, never below 90%."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def activation(kind: str) -> nn.Module:
    return nn.ReLU() if kind == "RE" else nn.Hardswish()


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            act: str | None = None) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, activation(act)) if act else nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        squeezed = divisible(channels / 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.relu(self.reduce(self.pool(x)))
        return x * nn.functional.hardsigmoid(self.expand(scale))


class Block(nn.Module):
    """An inverted residual block of MobileNetV3."""

    def __init__(self, cin: int, kernel: int, expanded: int, cout: int, excite: bool,
                 act: str, stride: int):
        super().__init__()
        layers = [] if expanded == cin else [conv_bn(cin, expanded, 1, act=act)]
        layers.append(conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if excite:
            layers.append(SqueezeExcite(expanded))
        layers.append(conv_bn(expanded, cout, 1))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def make_model() -> nn.Sequential:
    cin = divisible(STEM * WIDTH)
    layers = [conv_bn(3, cin, 3, 2, act="HS")]
    for kernel, expanded, cout, excite, act, stride in BLOCKS:
        cout = divisible(cout * WIDTH)
        layers.append(Block(cin, kernel, divisible(expanded * WIDTH), cout, excite, act,
                            stride))
        cin = cout
    last = divisible(LAST * WIDTH)
    layers += [conv_bn(cin, last, 1, act="HS"), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(last, HEAD), nn.Hardswish(), nn.Linear(HEAD, CLASSES)]
    return nn.Sequential(*layers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    model = make_model()
    photo_networks.initialise(model, SIZE, SEED)
    photo_networks.export(model, SIZE, args.output)
    difference = photo_networks.largest_difference(model, SIZE, args.output, SEED + 1)
    if difference > 1e-4:
        print(f"error: {args.output} does not match torch ({difference:.2e})",
              file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes); onnxruntime vs torch: "
          f"max |logit difference| {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
