"""What the untrained image networks' export scripts share (export_shufflenet_v2.py,
export_mobilenet_v3.py): batch-norm statistics measured on real photographs, the
deterministic ONNX export, and the check of onnxruntime against torch."""

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from codegen.datasets import sample_image_crops


def initialise(model: nn.Module, size: int, seed: int) -> None:
    """Seeded batch-norm scales and shifts, and statistics measured on photographs (pixel
    values 0..1): the mean and variance of each layer's input over 64 crops, so that every
    layer's activations keep the range they would have in a trained network."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                channels = module.num_features
                module.weight.copy_(1 + 0.1 * torch.randn(channels, generator=generator))
                module.bias.copy_(0.1 * torch.randn(channels, generator=generator))
                module.momentum = None  # a plain average over the batches
        model.train()
        photos = torch.from_numpy(sample_image_crops(64, size, seed=seed) / 255)
        for batch in photos.split(16):
            model(batch)
    model.eval()


def export(model: nn.Module, size: int, path: Path) -> None:
    """Opset 17, batch 1, input `image` [1, 3, size, size], output `logits`. The TorchScript
    exporter (dynamo=False) works offline with only `onnx` installed; the dynamo one needs
    onnxscript."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), dynamo=False,
                          opset_version=17, input_names=["image"], output_names=["logits"],
                          do_constant_folding=True)


def largest_difference(model: nn.Module, size: int, path: Path, seed: int) -> float:
    """The largest |logit difference| between onnxruntime running `path` and torch, on four
    crops other than those the statistics were measured on."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    photos = torch.from_numpy(sample_image_crops(4, size, seed=seed) / 255)
    with torch.no_grad():
        theirs = np.concatenate([session.run(None, {"image": x[None].numpy()})[0]
                                 for x in photos])
        return float(np.abs(theirs - model(photos).numpy()).max())
