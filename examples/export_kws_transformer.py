"""Export a keyword-spotting transformer to examples/models/kws_transformer.onnx.

The shape of a Keyword Transformer: 49 frames of 10 MFCCs in ([1, 1, 49, 10], the MLPerf Tiny
KWS input's size as an image of one channel), each frame a patch embedded by a convolution
(1 x 10 kernel) into 32 values, a class token in front and a learned position embedding added;
two pre-norm encoder blocks (LayerNorm, multi-head self-attention with 2 heads of 16, LayerNorm,
MLP 32 -> 64 -> 32 with GELU), a final LayerNorm, and the class token into a dense head of 12
logits. The attention is written out (q, k and v from one Linear, q k^T / 4, softmax, times v)
so that the graph holds the batched MatMuls of two run-time operands that attention is.

The weights are PyTorch's own initialisation from a fixed seed (the class token and position
embedding drawn normal with standard deviation 0.02, the LayerNorms' scales 1 + N(0, 0.1) and
biases N(0, 0.05) rather than PyTorch's ones and zeros, as training would leave them and so
that no two LayerNorms share their parameters), not trained: no speech data set installs
offline, and a compiler compiles random weights exactly as it compiles trained ones.
(codegen.datasets.toycar_mfcc_windows gives MFCC-like inputs from the shipped ToyCar
recording for runs and calibration.)

Run from the repository top with torch 2.13.0 installed:
    .venv/bin/python examples/export_kws_transformer.py
The run is deterministic (fixed seed, one thread), so running it again rewrites the same file.
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
WIDTH, HEADS, HIDDEN, BLOCKS = 32, 2, 64, 2
MODELS = Path(__file__).resolve().parent / "models"


class SelfAttention(nn.Module):
    """Multi-head self-attention over [1, tokens, WIDTH], written out."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)
        self.head_size = WIDTH // HEADS

    def forward(self, x):
        tokens = x.shape[1]
        qkv = self.qkv(x).reshape(1, tokens, 3, HEADS, self.head_size).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each [1, heads, tokens, head size]
        scores = q @ k.transpose(-2, -1) / self.head_size ** 0.5
        mixed = scores.softmax(dim=-1) @ v
        return self.proj(mixed.transpose(1, 2).reshape(1, tokens, WIDTH))


class Block(nn.Module):
    """Pre-norm encoder block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(WIDTH)
        self.attention = SelfAttention()
        self.norm2 = nn.LayerNorm(WIDTH)
        self.mlp = nn.Sequential(nn.Linear(WIDTH, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, WIDTH))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class KeywordTransformer(nn.Module):
    """[1, 1, 49, 10] MFCCs -> 12 logits."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(1, WIDTH, kernel_size=(1, COEFFICIENTS))
        self.cls = nn.Parameter(torch.randn(1, 1, WIDTH) * 0.02)
        self.position = nn.Parameter(torch.randn(1, FRAMES + 1, WIDTH) * 0.02)
        self.blocks = nn.Sequential(*[Block() for _ in range(BLOCKS)])
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, CLASSES)
        with torch.no_grad():
            for norm in (m for m in self.modules() if isinstance(m, nn.LayerNorm)):
                norm.weight.add_(torch.randn(WIDTH) * 0.1)
                norm.bias.add_(torch.randn(WIDTH) * 0.05)

    def forward(self, x):
        patches = self.embed(x).flatten(2).transpose(1, 2)  # [1, 49, WIDTH]
        x = torch.cat([self.cls, patches], dim=1) + self.position
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def export(model: nn.Module, path: Path) -> None:
    # The TorchScript exporter (dynamo=False) works offline with only `onnx` installed; the
    # dynamo one needs onnxscript. Static shapes, batch 1, opset 17 (LayerNormalization's).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, FRAMES, COEFFICIENTS),), str(path),
                          dynamo=False, opset_version=17, input_names=["mfcc"],
                          output_names=["logits"], do_constant_folding=True)


def check(model: nn.Module, path: Path) -> float:
    """Largest |logit difference| between onnxruntime on the file and torch, over the
    ToyCar MFCC windows."""
    windows = toycar_mfcc_windows(FRAMES, COEFFICIENTS)[:, None]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits = np.concatenate([session.run(None, {"mfcc": w[None]})[0] for w in windows])
    with torch.no_grad():
        torch_logits = np.concatenate([model(torch.from_numpy(w[None])).numpy()
                                       for w in windows])
    return float(np.abs(onnx_logits - torch_logits).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", type=Path, default=MODELS)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    model = KeywordTransformer().eval()
    path = args.output_dir / "kws_transformer.onnx"
    export(model, path)
    diff = check(model, path)
    print(f"wrote {path} ({path.stat().st_size} bytes); onnxruntime vs torch on the ToyCar "
          f"MFCC windows: max |logit difference| {diff:.2e}")
    if diff > 1e-4:
        print("error: the ONNX model does not match torch", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
