"""Loaders on real files (../shared/data) and procedural generators."""
import gzip
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data import digits, nyuv2, shapes
from jaxsuite.data.mnist import load_mnist, read_idx


def test_multi_digits_pools_are_disjoint_and_deterministic():
    train_pool, test_pool = digits.split_pools(1797, 0.3, seed=0)
    assert not set(train_pool) & set(test_pool) and len(train_pool) + len(test_pool) == 1797
    a = digits.multi_digits(200, 50, seed=0)
    b = digits.multi_digits(200, 50, seed=0)
    np.testing.assert_array_equal(a["train"]["image"], b["train"]["image"])
    assert a["train"]["image"].shape == (200, 20, 32, 1) and a["test"]["image"].shape == (50, 20, 32, 1)
    assert 0.0 <= a["train"]["image"].min() and a["train"]["image"].max() <= 1.0
    assert set(np.unique(a["train"]["left"])) <= set(range(10))
    assert not np.array_equal(digits.multi_digits(200, 50, seed=1)["train"]["image"], a["train"]["image"])


def test_compose_pairs_places_left_and_right_digits():
    img = np.zeros((2, 4, 4), np.float32)
    img[0, :, :] = 1.0
    out = digits.compose_pairs(img, np.array([3, 7]), 5, (6, 12), (0, 0), (8, 8), (0, 0), np.random.default_rng(0))
    # a digit-0 image (all ones) on the left shows up in columns 0..3 iff left label is 3
    for k in range(5):
        assert (out["image"][k, :4, :4, 0].max() == 1.0) == (out["left"][k] == 3)
        assert (out["image"][k, :4, 8:, 0].max() == 1.0) == (out["right"][k] == 3)
    with pytest.raises(ValueError, match="do not fit"):
        digits.compose_pairs(img, np.array([3, 7]), 1, (4, 4), (0, 2), (0, 2), (0, 0), np.random.default_rng(0))


def test_mnist_test_split_from_shared_data(shared_data):
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    data = digits.multi_mnist(100, 20, seed=0)
    assert data["train"]["image"].shape == (100, 36, 48, 1)


def test_mnist_missing_train_images_names_fetch(shared_data):
    with pytest.raises(DataMissingError, match="train-images-idx3-ubyte.gz.*jaxsuite data fetch mnist"):
        load_mnist("train")


def test_idx_reader_rejects_malformed_files(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x09\x01garbage")
    with pytest.raises(UserError, match="not an IDX uint8 file"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(UserError, match="holds 2 bytes"):
        read_idx(short)


@settings(max_examples=15, deadline=None)
@given(st.binary(max_size=64))
def test_idx_reader_never_crashes_uncleanly(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("idx") / "x.idx"
    path.write_bytes(blob)
    try:
        read_idx(path)
    except UserError:
        pass


def test_shapes_dense_is_deterministic_with_unit_normals():
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    a, b = shapes.render_scene(rng_a, 32), shapes.render_scene(rng_b, 32)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    rgb, cls, normals = a
    assert rgb.shape == (32, 32, 3) and cls.shape == (32, 32) and normals.shape == (32, 32, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-5)
    assert set(np.unique(cls)) <= set(range(len(shapes.CLASSES))) and {0, 1} <= set(np.unique(cls))
    # the floor faces up, the wall faces the camera
    assert np.allclose(normals[cls == 0], [0, 1, 0], atol=1e-5)
    assert np.all(normals[cls == 1][:, 2] < 0)


def test_nyuv2_sample_frame_decodes(shared_data):
    d = shared_data / "nyuv2_sample"
    frame = nyuv2.load_frame(d / "image.png", d / "semantic40.png", d / "normal.png", size=(48, 64))
    assert frame["image"].shape == (48, 64, 3) and 0 <= frame["image"].min() and frame["image"].max() <= 1
    labels = frame["segmentation"]
    assert labels.shape == (48, 64) and set(np.unique(labels)) <= set(range(40)) | {255}
    assert len(set(np.unique(labels)) - {255}) == 8  # 9 colours in the file, one of them void (black)
    n = frame["normals"]
    assert np.allclose(np.linalg.norm(n.reshape(-1, 3), axis=-1), 1.0, atol=1e-4)


def test_nyuv2_split_loader_reads_toolkit_layout(shared_data, tmp_path):
    d = shared_data / "nyuv2_sample"
    for split in ("train", "test"):
        for sub, name in (("image", "image.png"), ("seg40", "semantic40.png"), ("normal", "normal.png")):
            (tmp_path / sub / split).mkdir(parents=True)
            shutil.copy(d / name, tmp_path / sub / split / "0001.png")
    data = nyuv2.load_split("test", (32, 32), root=tmp_path)
    assert data["image"].shape == (1, 32, 32, 3) and data["segmentation"].shape == (1, 32, 32)
    (tmp_path / "normal" / "train" / "0001.png").unlink()
    with pytest.raises(DataMissingError, match="0001.png"):
        nyuv2.load_split("train", (32, 32), root=tmp_path)
    with pytest.raises(DataMissingError, match="not fetched automatically"):
        nyuv2.load_split("train", (32, 32), root=tmp_path / "absent")


def test_nyuv2_label_decoding_rejects_unknown_colours():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(UserError, match="not in the VOC colormap"):
        nyuv2.decode_labels(rgb)
    raw = np.array([[0, 39], [255, 41]], np.uint8)
    with pytest.raises(UserError, match="outside 0..39"):
        nyuv2.decode_labels(raw)
    cmap = nyuv2.voc_colormap(41)
    img = cmap[[[0, 1], [2, 40]]]
    np.testing.assert_array_equal(nyuv2.decode_labels(img), [[255, 0], [1, 39]])
