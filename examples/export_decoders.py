"""Build, train briefly and export the three decoder-family example models (issue 14):

- `unet_mnist.onnx`: a small U-Net segmenting MNIST digits (foreground mask logits). Encoder
  of 3x3 convolutions and max pools; the decoder goes up once with a ConvTranspose (kernel 2,
  stride 2) and once with a bilinear Resize, each followed by a Concat skip connection.
- `conv_autoencoder_mnist.onnx`: a convolutional autoencoder of MNIST digits, strided 3x3
  convolutions down and ConvTranspose (kernel 3, stride 2, padding 1, output_padding 1) up.
- `yolo_tiny_detector.onnx`: a YOLO-style detector on 64x64 colour images with its decoder in
  the graph: two scales (a nearest Resize and a Concat between them), decoupled 1x1 heads for
  box centre, box size and objectness + classes, and the YOLOv5 decoding (grid offsets made
  from arange in forward, Sigmoid, Mul, Add, Sub, Reshape, Transpose, Concat).

Run from the repository top with the `train` extra installed:
    .venv/bin/python examples/export_decoders.py
The U-Net and the autoencoder are trained for a few epochs on the first 2,000 training images
of codegen.datasets.mnist() (the U-Net on noisy images against the mask pixel > 0.5); the
detector keeps its seeded random initialisation (there is no detection data set offline),
which does not matter for compiling and comparing it. Deterministic: fixed seeds, one
thread, deterministic kernels, the TorchScript exporter (dynamo=False) at opset 17; running
it again rewrites the same files. Each file is checked against torch with onnxruntime.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from codegen.datasets import mnist

SEED = 0
OUT = Path(__file__).resolve().parent / "models"
TRAIN_IMAGES = 2000
EPOCHS = 3
BATCH = 32


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())


class UNet(nn.Module):
    """1x28x28 -> 1x28x28 mask logits: 28 -> 14 -> 7 and back."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(conv(1, 8), conv(8, 8))  # 28x28
        self.enc2 = nn.Sequential(conv(8, 16), conv(16, 16))  # 14x14
        self.bottom = conv(16, 32)  # 7x7
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)  # 7 -> 14
        self.dec2 = conv(32, 16)
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.reduce1 = nn.Conv2d(16, 8, 1)
        self.dec1 = conv(16, 8)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bottom(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        d1 = self.dec1(torch.cat([self.reduce1(self.up1(d2)), e1], 1))
        return self.head(d1)


class Autoencoder(nn.Module):
    """1x28x28 -> 16x7x7 -> 1x28x28 reconstruction in 0..1."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(conv(1, 8, 2), conv(8, 16, 2))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


class Detect(nn.Module):
    """YOLOv5's decoding of one scale's head outputs into boxes (centre x, y, width, height
    in pixels), objectness and class scores, one row per anchor and cell."""

    def __init__(self, channels: int, classes: int, anchors: list[tuple[float, float]],
                 stride: int):
        super().__init__()
        self.count, self.classes, self.stride = len(anchors), classes, stride
        self.xy = nn.Conv2d(channels, 2 * self.count, 1)
        self.wh = nn.Conv2d(channels, 2 * self.count, 1)
        self.conf = nn.Conv2d(channels, (1 + classes) * self.count, 1)
        self.register_buffer("anchors", torch.tensor(anchors).view(1, self.count, 2, 1, 1))

    def forward(self, x):
        _, _, h, w = x.shape
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        grid = torch.stack([cols, rows], 0).view(1, 1, 2, h, w).float()
        xy = self.xy(x).view(1, self.count, 2, h, w).sigmoid()
        wh = self.wh(x).view(1, self.count, 2, h, w).sigmoid() * 2
        conf = self.conf(x).view(1, self.count, 1 + self.classes, h, w).sigmoid()
        xy = (xy * 2 - 0.5 + grid) * self.stride
        wh = wh * wh * self.anchors
        out = torch.cat([xy, wh, conf], 2).permute(0, 1, 3, 4, 2)
        return out.reshape(1, self.count * h * w, 5 + self.classes)


class TinyDetector(nn.Module):
    """3x64x64 in 0..1 -> 160 candidate boxes of 8 values (two scales, two anchors each)."""

    def __init__(self, classes: int = 3):
        super().__init__()
        act = nn.LeakyReLU(0.1)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), act, nn.Conv2d(8, 16, 3, 2, 1), act,
                                  nn.Conv2d(16, 32, 3, 2, 1), act)  # 8x8
        self.down = nn.Sequential(nn.Conv2d(32, 32, 3, 2, 1), act)  # 4x4
        self.lateral = nn.Sequential(nn.Conv2d(32, 16, 1), act)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = nn.Sequential(nn.Conv2d(48, 32, 3, 1, 1), act)
        self.detect_small = Detect(32, classes, [(10.0, 13.0), (16.0, 30.0)], 8)
        self.detect_large = Detect(32, classes, [(30.0, 61.0), (62.0, 45.0)], 16)

    def forward(self, x):
        p4 = self.stem(x)
        p5 = self.down(p4)
        fused = self.fuse(torch.cat([self.up(self.lateral(p5)), p4], 1))
        return torch.cat([self.detect_small(fused), self.detect_large(p5)], 1)


def train(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> nn.Module:
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(inputs), generator=order).split(BATCH):
            optimizer.zero_grad()
            loss_fn(model(inputs[batch]), targets[batch]).backward()
            optimizer.step()
    return model.eval()


def export(model: nn.Module, shape: tuple[int, ...], output: str, path: Path) -> None:
    # The TorchScript exporter works offline with only `onnx` installed (see
    # train_mnist.py); it folds what it can of the constant arithmetic.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(shape),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=[output],
                          do_constant_folding=True)


def check(path: Path, model: nn.Module, x: torch.Tensor) -> float:
    """Largest |difference| between onnxruntime and torch over the samples x."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    with torch.no_grad():
        want = np.concatenate([model(sample[None]).numpy() for sample in x])
    got = np.concatenate([session.run(None, {name: sample[None]})[0] for sample in x.numpy()])
    return float(np.abs(got - want).max())


def build_models(images: torch.Tensor) -> dict[str, tuple[nn.Module, tuple[int, ...], str,
                                                          torch.Tensor]]:
    """name -> (model in eval mode, input shape, output name, check inputs)."""
    torch.manual_seed(SEED)
    noise = torch.Generator().manual_seed(SEED + 1)
    noisy = (images + 0.2 * torch.randn(images.shape, generator=noise)).clamp(0, 1)
    unet = train(UNet(), noisy, (images > 0.5).float(), nn.BCEWithLogitsLoss())
    torch.manual_seed(SEED)
    autoencoder = train(Autoencoder(), images, images, nn.BCELoss())
    torch.manual_seed(SEED)
    detector = TinyDetector().eval()
    colour = torch.rand((8, 3, 64, 64), generator=noise)
    return {
        "unet_mnist": (unet, (1, 1, 28, 28), "mask_logits", noisy[:8]),
        "conv_autoencoder_mnist": (autoencoder, (1, 1, 28, 28), "reconstruction", images[:8]),
        "yolo_tiny_detector": (detector, (1, 3, 64, 64), "detections", colour),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT, help="folder for the files")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    images = torch.from_numpy(mnist()[0][:TRAIN_IMAGES])
    for name, (model, shape, output, samples) in build_models(images).items():
        path = args.output / f"{name}.onnx"
        export(model, shape, output, path)
        difference = check(path, model, samples)
        if difference > 1e-4:
            print(f"error: {path} does not match torch ({difference:.2e})", file=sys.stderr)
            return 1
        print(f"wrote {path} ({path.stat().st_size} bytes); onnxruntime vs torch on "
              f"{len(samples)} inputs: max |difference| {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
