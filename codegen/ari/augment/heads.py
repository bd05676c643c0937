"""An exit's head: a pooling of the backbone's tensor, then one Gemm (or Gemm, ReLU, Gemm)
giving class logits, trained on the host with full-batch L-BFGS (scipy) on features that
onnxruntime computed. Deterministic: fixed initial weights from a seeded generator, no
mini-batches, float64 arithmetic; seconds on a laptop, no GPU.

The pooling is the same arithmetic as the ONNX node the head becomes (`pool_features` is
GlobalAveragePool or AveragePool with kernel = stride, no padding), so the weights trained
here see what the firmware's head will see."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.errors import ArielError

POOLS = ("global", "grid")  # a mean per channel; a mean per channel and grid cell
# What the head does with the tensor, beyond POOLS (chosen by the tensor, not the user):
# "flat" reads a [1, F] tensor as it is; "sequence" is the global mean of a tensor whose
# features are on its last axis ([N, T, D]: over T), a ReduceMean.
# L2 penalty on the weights (not the biases), on standardised features: enough to keep a
# head on a few hundred inputs from memorising them, too little to bias a large set.
L2 = 1e-3
MAX_ITERATIONS = 500


@dataclass(frozen=True)
class HeadShape:
    """What a head is made of: `pool` (global; grid, `cells` per spatial axis; flat or
    sequence, see above) and `hidden` units in a ReLU layer before the logits (0: one
    Gemm)."""

    pool: str = "global"
    hidden: int = 0
    cells: int = 2

    @property
    def label(self) -> str:
        pool = f"grid{self.cells}" if self.pool == "grid" else self.pool
        return pool + (f"+{self.hidden}" if self.hidden else "")


@dataclass
class Head:
    """A trained head: its shape, its pooling's `window` (pool_window) and its Gemm layers
    as (W (out, in), b (out,)) float32, input standardisation folded into the first."""

    shape: HeadShape
    window: tuple[int, ...]
    layers: list[tuple[np.ndarray, np.ndarray]]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of its Gemm layers (pooling counts as `ariel inspect` counts
        it: none)."""
        return sum(int(w.size) for w, _ in self.layers)

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """float32 logits (N, classes) of pooled features (N, F), as the ONNX Gemms give
        them."""
        x = pooled.astype(np.float32)
        for index, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if index < len(self.layers) - 1:
                x = np.maximum(x, np.float32(0))
        return x


def pool_window(tensor_shape: tuple[int, ...], shape: HeadShape) -> tuple[int, ...]:
    """A grid's AveragePool kernel (= stride) per spatial axis: the axis over the cells,
    rounded down (a remainder row or column is not read), at least 1. A sequence mean's
    axes (all but the first and last). Empty for the others."""
    if shape.pool == "sequence":
        return tuple(range(1, len(tensor_shape) - 1))
    if shape.pool != "grid":
        return ()
    return tuple(max(1, size // shape.cells) for size in tensor_shape[2:])


def pool_features(values: np.ndarray, pool: str, window: tuple[int, ...]) -> np.ndarray:
    """float32 features (N, F) of a batch of the exit's tensor (N, C, *spatial), or
    (N, *steps, D) for a sequence mean."""
    values = values.astype(np.float32, copy=False)
    if values.ndim == 2 or pool == "flat":
        return values.reshape(len(values), -1)
    if pool == "global":
        return values.mean(axis=tuple(range(2, values.ndim)), dtype=np.float32)
    if pool == "sequence":
        return values.mean(axis=window, dtype=np.float32)
    sliced = values
    for axis, k in enumerate(window, start=2):
        count = values.shape[axis] // k
        sliced = np.take(sliced, np.arange(count * k), axis=axis)
        shape = list(sliced.shape)
        shape[axis:axis + 1] = [count, k]
        sliced = sliced.reshape(shape)
        sliced = sliced.mean(axis=axis + 1, dtype=np.float32)
    return sliced.reshape(len(values), -1)


def train_head(shape: HeadShape, window: tuple[int, ...], features: np.ndarray,
               targets: np.ndarray, classes: int, seed: int = 0) -> Head:
    """Fit a head to pooled `features` (N, F) and class `targets` (N,) in 0..classes-1."""
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    x = features.astype(np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0  # a feature that never changes: left as it is
    z = (x - mean) / scale
    onehot = np.zeros((len(targets), classes))
    onehot[np.arange(len(targets)), targets] = 1.0
    sizes = [z.shape[1], *([shape.hidden] if shape.hidden else []), classes]
    rng = np.random.default_rng(seed)
    initial = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        # He initialisation for the ReLU layer; a linear head starts at zero (its problem is
        # convex, so the start only matters for speed).
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_out, fan_in)) if shape.hidden \
            else np.zeros((fan_out, fan_in))
        initial += [w.ravel(), np.zeros(fan_out)]
    shapes = [(o, i) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]

    def unpack(theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        layers, at = [], 0
        for out, inp in shapes:
            w = theta[at:at + out * inp].reshape(out, inp)
            at += out * inp
            layers.append((w, theta[at:at + out]))
            at += out
        return layers

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        layers = unpack(theta)
        activations = [z]
        for index, (w, b) in enumerate(layers):
            a = activations[-1] @ w.T + b
            activations.append(np.maximum(a, 0.0) if index < len(layers) - 1 else a)
        logits = activations[-1]
        logits = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        n = len(z)
        value = -np.sum(onehot * np.log(probabilities + 1e-300)) / n
        grads = []
        delta = (probabilities - onehot) / n
        for index in range(len(layers) - 1, -1, -1):
            w, _ = layers[index]
            value += 0.5 * L2 * np.sum(w * w)
            grads.append((delta.T @ activations[index] + L2 * w, delta.sum(axis=0)))
            if index:
                delta = (delta @ w) * (activations[index] > 0)
        flat = [part.ravel() for gw, gb in reversed(grads) for part in (gw, gb)]
        return float(value), np.concatenate(flat)

    # One BLAS thread: the result then does not depend on the machine's cores (a threaded
    # product may sum in another order), and on a busy machine it is several times faster.
    with threadpool_limits(1):
        result = minimize(loss, np.concatenate(initial), jac=True, method="L-BFGS-B",
                          options={"maxiter": MAX_ITERATIONS})
    if not np.all(np.isfinite(result.x)):
        raise ArielError("training an exit head diverged (non-finite weights); check the "
                         "training data for extreme values")
    layers = unpack(result.x)
    # The standardisation folded into the first layer: W z + b = (W / s) x + (b - W m / s).
    w0, b0 = layers[0]
    layers[0] = (w0 / scale, b0 - (w0 / scale) @ mean)
    return Head(shape, window, [(w.astype(np.float32), b.astype(np.float32))
                                for w, b in layers])


def check_shape(shape: HeadShape) -> None:
    if shape.pool not in (*POOLS, "auto"):
        raise ArielError(f"head pooling '{shape.pool}' is not one of auto, "
                         f"{', '.join(POOLS)}")
    if shape.hidden < 0:
        raise ArielError(f"a head's hidden layer cannot have {shape.hidden} units")
    if shape.cells < 1:
        raise ArielError(f"a grid pooling needs at least 1 cell per axis, not {shape.cells}")
