"""The JSON file beside an augmented model (`EE.onnx` -> `EE.exits.json`) that says what
its exits are, for the dispatcher, `ariel optimize` and people.

Format `ariel-exits/1`:

    {
      "format": "ariel-exits/1",
      "model": "EE.onnx",                  augmented model's file name (same folder)
      "model_sha256": "...",               of its bytes
      "source": {"path": "cnn.onnx", "sha256": "..."},   the model that was augmented
                                           (its path as given to the command)
      "final_output": "logits",            the original output that is the final answer
      "classes": 10,
      "macs_total": 88192,                 the backbone's MACs (as `ariel inspect` counts)
      "final_accuracy": 0.97,              the final output's, on the held-out data (null
                                           without labels)
      "data": {"train": "'train.npz'", "train_count": 1005,
               "heldout": "'held.npz'" | "carved from the training data",
               "heldout_count": 252, "targets": "labels" | "final"},
      "exits": [                           in backbone order
        {"output": "ariel_exit1",          the graph output holding its logits (no Softmax)
         "after_tensor": "/relu1/Relu_output_0", the backbone tensor its head reads
         "after_node": "/relu1/Relu",      the node computing that tensor (ariel's name
                                           <Op>_<index> for a node the file leaves unnamed)
         "macs_backbone": 4608,            backbone MACs up to that tensor
         "macs_head": 80,                  the head's (its Gemms')
         "head": {"pool": "grid", "cells": 2, "window": [4, 4], "hidden": 0},
                                           pool global, grid (cells per axis, the
                                           AveragePool window) or flat; hidden units
         "head_nodes": ["ariel_exit1/pool", ...],  the head's nodes, in order, each
                                           inserted right after "after_node"
         "accuracy": 0.83,                 on the held-out data (null without labels)
         "agreement": 0.85,                argmax equal to the final output's, held out
         "heldout": 252}                   held-out inputs both were measured on
      ]
    }

The augmented model's outputs are the original outputs, in their order, then `ariel_exit1`,
`ariel_exit2`, ... in the order of "exits"."""

from __future__ import annotations

import json
from pathlib import Path

from codegen.errors import ArielError

FORMAT = "ariel-exits/1"


def sidecar_path(model_path: Path) -> Path:
    """EE.onnx -> EE.exits.json."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".exits.json")


def sidecar_text(data: dict) -> str:
    return json.dumps({"format": FORMAT, **data}, indent=2, allow_nan=False) + "\n"


def read_sidecar(path: Path) -> dict:
    """A sidecar's contents, checked to be of this format."""
    path = Path(path)
    if not path.is_file():
        raise ArielError(f"exits file '{path}' not found (`ariel augment` writes it beside "
                         "the augmented model)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArielError(f"exits file '{path}' is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArielError(f"exits file '{path}' is not of format {FORMAT}")
    exits = data.get("exits")
    if not isinstance(exits, list) or not all(isinstance(e, dict) and "output" in e
                                              for e in exits):
        raise ArielError(f"exits file '{path}' has no valid list of exits")
    return data


def is_sidecar(path: Path) -> bool:
    """True for a file ariel wrote as a sidecar (one `ariel augment` may replace)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT
