"""Export a small ShuffleNetV2 (channel widths of the 0.5x network, fewer units) to
examples/models/shufflenet_v2_64.onnx.

Run from the repository top with PyTorch installed (`.venv/bin/pip install torch==2.13.0`):
    .venv/bin/python examples/export_shufflenet_v2.py
The weights are a seeded random initialisation (not trained: the model is here to be
compiled, and its layers are what matter); the batch-norm statistics are measured on real
photographs (crops of scikit-learn's two sample images, codegen.datasets.sample_image_crops),
so that every layer's activations keep a sensible range, as in a trained network. The run is
deterministic (fixed seeds, one thread), so running it again rewrites the same file.

The architecture follows Ma et al., "ShuffleNet V2" (ECCV 2018), written here in PyTorch: a
3x3 stride-2 stem and a max pool, then three stages of units. A unit splits its channels in
two (x.chunk, exported as Slice), runs one half through 1x1 / depthwise 3x3 / 1x1
convolutions, concatenates it with the other half and shuffles the channels (a
Reshape / Transpose / Reshape). The first unit of a stage halves the resolution and runs both
halves. Widths 24-48-96-192 as in the 0.5x network, two units per stage instead of 4-8-4,
a 128-channel last convolution instead of 1024, a 64x64 RGB input and 10 classes, so that
the file stays small and a run in an emulator takes seconds.
"""

import argparse
import sys
from pathlib import Path

import photo_networks
import torch
from torch import nn

SEED = 0
SIZE, CLASSES = 64, 10
WIDTHS = (24, 48, 96, 192)  # stem, then the three stages
UNITS = (2, 2, 2)
LAST = 128
OUT = Path(__file__).resolve().parent / "models" / "shufflenet_v2_64.onnx"


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class Unit(nn.Module):
    """A ShuffleNetV2 unit: stride 1 keeps half the channels as they are, stride 2 sends
    the whole input down both branches."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride == 2:
            self.left = nn.Sequential(conv_bn(cin, cin, 3, 2, groups=cin, relu=False),
                                      conv_bn(cin, half, 1))
        into = cin if stride == 2 else half
        self.right = nn.Sequential(conv_bn(into, half, 1),
                                   conv_bn(half, half, 3, stride, groups=half, relu=False),
                                   conv_bn(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            kept, x = x.chunk(2, dim=1)
            out = torch.cat((kept, self.right(x)), dim=1)
        else:
            out = torch.cat((self.left(x), self.right(x)), dim=1)
        return channel_shuffle(out, 2)


def make_model() -> nn.Sequential:
    layers = [conv_bn(3, WIDTHS[0], 3, 2), nn.MaxPool2d(3, 2, 1)]
    for cin, cout, units in zip(WIDTHS[:-1], WIDTHS[1:], UNITS, strict=True):
        layers += [Unit(cin, cout, 2)] + [Unit(cout, cout, 1) for _ in range(units - 1)]
    layers += [conv_bn(WIDTHS[-1], LAST, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(LAST, CLASSES)]
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
