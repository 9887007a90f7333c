"""alf.utils.datagen: data files written here in the standard formats, read back.

The MNIST files are written with ``struct`` byte by byte, the CIFAR-10 batches
opcode by opcode as Python 2's cPickle wrote them (protocol 2, byte strings for
keys and data); expected tensors come from NumPy formulas and hand-written
token lists.
"""

import collections
import gzip
import io
import os
import pickle
import re
import struct

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import Subset

from alf.utils._train_datagen_text import basic_english_tokenize
from alf.utils.datagen import (
    TestDataSet,
    Vocab,
    get_classes,
    load_cifar10,
    load_mnist,
    load_test,
    load_wikitext2,
    load_wikitext103,
)

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# ------------------------------------------------------------------ file writers


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of a uint8 array: 0x0000, type 0x08, ndim, big-endian sizes, data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder, n_train, n_test, gz=False, seed=0):
    """Write the four MNIST files; return {split: (images [N,28,28], labels [N])}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for name, array in zip(MNIST_FILES[split], (images, labels)):
            raw = idx_bytes(array)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        out[split] = (images, labels)
    return out


def _short_or_long_string(data: bytes) -> bytes:
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(data)) + data  # BINSTRING


def _py2_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])  # BININT1
    return b"J" + struct.pack("<i", value)  # BININT


def _py2_value(value) -> bytes:
    if isinstance(value, bytes):
        return _short_or_long_string(value)
    if isinstance(value, int):
        return _py2_int(value)
    if isinstance(value, list):
        return b"](" + b"".join(_py2_value(v) for v in value) + b"e"  # EMPTY_LIST MARK .. APPENDS
    if isinstance(value, np.ndarray):
        assert value.dtype == np.uint8 and value.ndim == 2
        rows, cols = value.shape
        return (
            b"cnumpy.core.multiarray\n_reconstruct\n"
            b"cnumpy\nndarray\n"
            + _py2_int(0)
            + b"\x85"
            + b"U\x01b"
            + b"\x87R"
            + b"("
            + _py2_int(1)
            + _py2_int(rows)
            + _py2_int(cols)
            + b"\x86"
            + b"cnumpy\ndtype\n"
            + b"U\x02u1"
            + _py2_int(0)
            + _py2_int(1)
            + b"\x87R"
            + b"("
            + _py2_int(3)
            + b"U\x01|"
            + b"NNN"
            + b"J\xff\xff\xff\xff" * 2
            + _py2_int(0)
            + b"tb"
            + b"\x89"
            + _short_or_long_string(value.tobytes())
            + b"tb"
        )
    raise TypeError(type(value))


def py2_cifar_pickle(batch: dict) -> bytes:
    """The bytes cPickle.dump(batch, f, 2) wrote for a CIFAR-10 batch (no memo opcodes)."""
    body = b"".join(_py2_value(k) + _py2_value(v) for k, v in batch.items())
    return b"\x80\x02}(" + body + b"u."


def cifar_batch(rng, n, name):
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)  # HWC
    labels = rng.integers(0, 10, size=n)
    data = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # R plane, G plane, B plane
    batch = {
        b"batch_label": name.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    return batch, images, labels


def write_cifar(folder, sizes=(3, 2, 4, 1, 2), n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = [], []
    for i, n in enumerate(sizes, start=1):
        batch, images, labels = cifar_batch(rng, n, f"training batch {i} of 5")
        (folder / f"data_batch_{i}").write_bytes(py2_cifar_pickle(batch))
        train_images.append(images)
        train_labels.append(labels)
    batch, test_images, test_labels = cifar_batch(rng, n_test, "testing batch 1 of 1")
    (folder / "test_batch").write_bytes(py2_cifar_pickle(batch))
    return (np.concatenate(train_images), np.concatenate(train_labels)), (test_images, test_labels)


# ------------------------------------------------------------------ helpers


def collect(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def mnist_expected(images):
    return ((images.astype(np.float64) / 255.0 - 0.1307) / 0.3081)[:, None]


def cifar_expected(images):
    mean = np.array([0.4914, 0.4822, 0.4465])
    std = np.array([0.2023, 0.1994, 0.2010])
    return ((images.astype(np.float64) / 255.0 - mean) / std).transpose(0, 3, 1, 2)


def as_multiset(x, y):
    return collections.Counter(
        (np.round(xi, 3).tobytes(), int(yi)) for xi, yi in zip(x.numpy().astype(np.float64), y)
    )


# ------------------------------------------------------------------ MNIST


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_load_mnist_reads_idx_files(tmp_path, gz):
    data = write_mnist(tmp_path, n_train=23, n_test=9, gz=gz)
    train_loader, test_loader = load_mnist(train_bs=5, test_bs=4, data_dir=tmp_path)

    x, y = collect(test_loader)  # the test loader keeps the file order
    assert x.dtype == torch.float32 and tuple(x.shape) == (9, 1, 28, 28)
    assert y.dtype == torch.int64
    np.testing.assert_allclose(x.numpy(), mnist_expected(data["test"][0]), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), data["test"][1])
    assert [len(b[1]) for b in test_loader] == [4, 4, 1]  # drop_last=False

    x, y = collect(train_loader)  # shuffled: the same examples in some order
    assert [len(b[1]) for b in train_loader] == [5, 5, 5, 5, 3]
    expected = torch.from_numpy(mnist_expected(data["train"][0]).astype(np.float32))
    assert as_multiset(x, y) == as_multiset(expected, data["train"][1])


def test_load_mnist_label_idx_and_small_subset(tmp_path):
    data = write_mnist(tmp_path / "MNIST" / "raw", n_train=80, n_test=30)
    train_loader, test_loader = load_mnist(label_idx=[1, 3], test_bs=100, data_dir=tmp_path)
    images, labels = data["test"]
    keep = np.isin(labels, [1, 3])
    x, y = collect(test_loader)
    np.testing.assert_array_equal(y.numpy(), labels[keep])
    np.testing.assert_allclose(x.numpy(), mnist_expected(images[keep]), atol=1e-5)
    assert sorted(collect(train_loader)[1].tolist()) == sorted(
        data["train"][1][np.isin(data["train"][1], [1, 3])].tolist()
    )

    train_loader, test_loader = load_mnist(small_subset=True, test_bs=7, data_dir=tmp_path)
    assert len(train_loader.dataset) == 50 and len(test_loader.dataset) == 30
    np.testing.assert_array_equal(collect(test_loader)[1].numpy(), labels)
    # the first 50 training images, shuffled
    assert sorted(collect(train_loader)[1].tolist()) == sorted(data["train"][1][:50].tolist())


def test_load_mnist_env_var_and_workers(tmp_path, monkeypatch):
    data = write_mnist(tmp_path / "MNIST" / "raw", n_train=6, n_test=4, gz=True)
    monkeypatch.setenv("ALF_DATA_DIR", str(tmp_path))
    _, test_loader = load_mnist(test_bs=2, num_workers=1)
    assert test_loader.num_workers == 1
    np.testing.assert_array_equal(collect(test_loader)[1].numpy(), data["test"][1])


def test_load_mnist_missing_files_names_files_and_folders(tmp_path, monkeypatch):
    write_mnist(tmp_path, n_train=3, n_test=2)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(data_dir=tmp_path)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path) in msg and str(tmp_path / "MNIST" / "raw") in msg
    assert "data_dir" in msg

    monkeypatch.delenv("ALF_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="data_m"):
        load_mnist()  # ALF's default folder, relative to the current directory


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_load_mnist_truncated_file_is_named(tmp_path, gz):
    write_mnist(tmp_path, n_train=5, n_test=3, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = tmp_path / name
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 40])
    with pytest.raises(ValueError, match=name):
        load_mnist(data_dir=tmp_path)


def test_load_mnist_rejects_non_idx_and_mismatched_labels(tmp_path):
    write_mnist(tmp_path, n_train=5, n_test=3)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte: not an IDX file"):
        load_mnist(data_dir=tmp_path)
    write_mnist(tmp_path, n_train=5, n_test=3)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: MNIST labels must be"):
        load_mnist(data_dir=tmp_path)


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"\x00\x00\x08", r"truncated IDX file \(3 bytes, no complete header\)"),
        (b"\x00\x00\x08\x03" + bytes(8), r"truncated IDX file \(12 bytes, header needs 16\)"),
    ],
)
def test_load_mnist_truncated_header_is_named(tmp_path, raw, match):
    write_mnist(tmp_path, n_train=5, n_test=3)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(raw)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte: " + match):
        load_mnist(data_dir=tmp_path)


def test_load_mnist_rejects_images_of_another_layout_and_labels_above_9(tmp_path):
    write_mnist(tmp_path, n_train=5, n_test=3)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((3, 784), np.uint8)))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: MNIST images must be uint8 \[N"):
        load_mnist(data_dir=tmp_path)
    write_mnist(tmp_path, n_train=5, n_test=3)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([1, 12, 3], np.uint8)))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: MNIST labels must be in \[0, 10\), got 12"):
        load_mnist(data_dir=tmp_path)


def test_label_idx_may_hold_one_element_tensors(tmp_path):
    data = write_mnist(tmp_path, n_train=40, n_test=20)
    a, b = sorted(set(data["train"][1].tolist()) & set(data["test"][1].tolist()))[:2]
    _, test = load_mnist(label_idx=[torch.tensor(a), np.int64(b)], data_dir=tmp_path)
    labels = data["test"][1]
    np.testing.assert_array_equal(collect(test)[1].numpy(), labels[(labels == a) | (labels == b)])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(train_bs=0), ValueError, "train_bs must be >= 1"),
        (dict(test_bs=2.0), TypeError, "test_bs must be an int"),
        (dict(num_workers=-1), ValueError, "num_workers must be >= 0"),
        (dict(label_idx=[0, 10]), ValueError, r"label_idx must hold class indices in \[0, 10\)"),
        (dict(label_idx="01"), TypeError, "label_idx must be a list of ints"),
        (dict(data_dir=3), TypeError, "data_dir must be a str or path"),
    ],
)
def test_loader_arguments_are_checked(tmp_path, kwargs, error, match):
    kwargs.setdefault("data_dir", tmp_path)
    with pytest.raises(error, match=match):
        load_mnist(**kwargs)
    with pytest.raises(error, match=match):
        load_cifar10(**kwargs)


# ------------------------------------------------------------------ CIFAR-10


def test_load_cifar10_reads_python2_batches(tmp_path):
    (train_images, train_labels), (test_images, test_labels) = write_cifar(
        tmp_path / "cifar-10-batches-py"
    )
    train_loader, test_loader = load_cifar10(train_bs=4, test_bs=2, data_dir=tmp_path)
    x, y = collect(test_loader)
    assert tuple(x.shape) == (5, 3, 32, 32) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), cifar_expected(test_images), atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), test_labels)
    # the training set is the five batches in order (the dataset, not the shuffled loader)
    ds = train_loader.dataset
    assert len(ds) == 12
    for i in (0, 3, 11):
        xi, yi = ds[i]
        np.testing.assert_allclose(
            xi.numpy(), cifar_expected(train_images[i : i + 1])[0], atol=1e-5
        )
        assert yi == train_labels[i]
    x, y = collect(train_loader)
    expected = torch.from_numpy(cifar_expected(train_images).astype(np.float32))
    assert as_multiset(x, y) == as_multiset(expected, train_labels)

    label = sorted(set(train_labels.tolist()) & set(test_labels.tolist()))[0]
    _, test_loader = load_cifar10(label_idx=[label], data_dir=tmp_path)
    np.testing.assert_array_equal(
        collect(test_loader)[1].numpy(), test_labels[test_labels == label]
    )
    absent = sorted(set(range(10)) - set(train_labels.tolist()))[0]
    with pytest.raises(ValueError, match=rf"label_idx \[{absent}\] selects no example"):
        load_cifar10(label_idx=[absent], data_dir=tmp_path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_load_cifar10_reads_python3_pickles(tmp_path, protocol):
    rng = np.random.default_rng(1)
    for i in range(1, 6):
        batch, _, _ = cifar_batch(rng, 2, "train")
        batch = {k.decode(): v for k, v in batch.items()}
        (tmp_path / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=protocol))
    batch, images, labels = cifar_batch(rng, 3, "test")
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=protocol))
    _, test_loader = load_cifar10(data_dir=tmp_path)
    x, y = collect(test_loader)
    np.testing.assert_allclose(x.numpy(), cifar_expected(images), atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), labels)


class _RunsCode:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_load_cifar10_never_runs_pickled_code(tmp_path):
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    evil = {"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": _RunsCode(str(marker))}
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(ValueError, match="data_batch_3.*posix.mkdir is not allowed"):
        load_cifar10(data_dir=tmp_path)
    assert not marker.exists()


def test_load_cifar10_truncated_or_malformed_batch_is_named(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "data_batch_2"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="data_batch_2: not a readable CIFAR-10 batch"):
        load_cifar10(data_dir=tmp_path)

    write_cifar(tmp_path)
    bad = {"data": np.zeros((2, 3072), np.uint8), "labels": [0]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match="test_batch: CIFAR-10 'labels' must be a list of 2"):
        load_cifar10(data_dir=tmp_path)
    bad = {"data": np.zeros((2, 1024), np.uint8), "labels": [0, 1]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match=r"uint8 array \[N, 3072\]"):
        load_cifar10(data_dir=tmp_path)
    bad = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match=r"ints in \[0, 10\)"):
        load_cifar10(data_dir=tmp_path)


class _Persistent(pickle.Pickler):
    def persistent_id(self, obj):
        return "ext" if isinstance(obj, list) else None


def test_load_cifar10_refuses_malformed_batches(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "test_batch"
    data = np.zeros((2, 3072), np.uint8)
    path.write_bytes(pickle.dumps([data, [0, 1]], protocol=2))
    with pytest.raises(ValueError, match="test_batch: a CIFAR-10 batch is a pickled dict, got list"):
        load_cifar10(data_dir=tmp_path)
    path.write_bytes(pickle.dumps({b"data": data}, protocol=2))
    with pytest.raises(ValueError, match="test_batch: CIFAR-10 batch has no 'labels' entry"):
        load_cifar10(data_dir=tmp_path)
    path.write_bytes(pickle.dumps({"data": data, "labels": [[0, 1], [2]]}, protocol=2))
    with pytest.raises(ValueError, match="test_batch: CIFAR-10 'labels' must be ints"):
        load_cifar10(data_dir=tmp_path)
    buf = io.BytesIO()
    _Persistent(buf, protocol=2).dump({"data": data, "labels": [0, 1]})
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="persistent ids are not allowed"):
        load_cifar10(data_dir=tmp_path)


def test_load_cifar10_decodes_bytes_only_as_latin1(tmp_path):
    """Python 3's protocol-2 pickles write bytes as ``_codecs.encode(text,
    "latin1")``; any other codec is refused."""
    write_cifar(tmp_path)
    raw = pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "n": b"\xff"}, 2)
    assert raw.count(b"latin1") >= 1
    (tmp_path / "test_batch").write_bytes(raw.replace(b"latin1", b"utf_16"))
    with pytest.raises(ValueError, match="test_batch.*_codecs.encode with 'utf_16' is not allowed"):
        load_cifar10(data_dir=tmp_path)


def test_load_cifar10_missing_files(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_5").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_5.*test_batch.*searched"):
        load_cifar10(data_dir=tmp_path)


# ------------------------------------------------------------------ get_classes


class _PairList(torch.utils.data.Dataset):
    """A data set without a ``targets`` attribute: get_classes must read items."""

    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.zeros(2), self.labels[i]


@given(st.lists(st.integers(0, 5), max_size=30), st.lists(st.integers(0, 6), max_size=4))
def test_get_classes_matches_a_loop(labels, wanted):
    expected = [i for i, v in enumerate(labels) if v in wanted]
    assert get_classes(_PairList(labels), wanted) == expected

    class WithTargets(_PairList):
        @property
        def targets(self):
            return torch.tensor(self.labels, dtype=torch.int64)

    assert get_classes(WithTargets(labels), wanted) == expected
    subset = Subset(WithTargets(labels), list(range(len(labels)))[::-1])
    assert get_classes(subset, wanted) == [
        j for j, i in enumerate(range(len(labels))[::-1]) if labels[i] in wanted
    ]


def test_get_classes_of_a_subset_without_targets():
    """A Subset of a data set that keeps no ``targets``: the items are read."""
    labels = [3, 1, 3, 0, 2]
    subset = Subset(_PairList(labels), [4, 2, 0])
    assert get_classes(subset, [3]) == [1, 2]


def test_get_classes_rejects_non_int_labels():
    with pytest.raises(TypeError, match="labels must hold ints"):
        get_classes(_PairList([0, 1]), [0.5])


# ------------------------------------------------------------------ synthetic set


def test_test_dataset_is_linear_plus_unit_noise():
    torch.manual_seed(0)
    weight = torch.tensor([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]])
    ds = TestDataSet(input_dim=3, output_dim=2, size=4000, weight=weight)
    x, y = ds.get_features(), ds.get_targets()
    assert tuple(x.shape) == (4000, 3) and tuple(y.shape) == (4000, 2) and len(ds) == 4000
    residual = (y.double() - x.double() @ weight.double()).numpy()
    assert np.all(np.abs(residual.mean(0)) < 0.1)
    assert np.all(np.abs(residual.std(0) - 1.0) < 0.1)
    assert abs(float(x.double().std()) - 1.0) < 0.1
    xi, yi = ds[7]
    assert torch.equal(xi, x[7]) and torch.equal(yi, y[7])

    default = TestDataSet()
    assert len(default) == 1000
    w = default._weight
    assert tuple(w.shape) == (3, 1) and bool(((w >= 5) & (w < 6)).all())
    with pytest.raises(ValueError, match=r"weight must have shape \[input_dim, output_dim\]"):
        TestDataSet(input_dim=2, weight=torch.ones(3, 1))
    with pytest.raises(ValueError, match="size must be >= 1"):
        TestDataSet(size=0)


def test_load_test_loaders():
    torch.manual_seed(0)
    train_loader, test_loader = load_test()
    assert train_loader.batch_size == 50 and test_loader.batch_size == 10
    x, y = next(iter(train_loader))
    assert tuple(x.shape) == (50, 3) and tuple(y.shape) == (50, 1)
    # both sets share one weight: least squares on each recovers the same one
    ws = []
    for loader in (train_loader, test_loader):
        ds = loader.dataset
        sol = np.linalg.lstsq(ds.get_features().numpy(), ds.get_targets().numpy(), rcond=None)[0]
        ws.append(sol)
        assert len(ds) == 1000
    np.testing.assert_allclose(ws[0], ws[1], atol=0.15)
    assert np.all((ws[0] > 4.8) & (ws[0] < 6.2))


# ------------------------------------------------------------------ WikiText

TRAIN = (
    " \n"
    " = Valkyria Chronicles = \n"
    " \n"
    ' The game \'s <unk> , "the" best (ever) . \n'
    " Game: the END ; the game ! \n"
)
VALID = " the game is new ? \n the <unk> \n"
TEST = " END the game , game . \n"

# basic_english by hand: lower case; ' split off with two spaces, " dropped,
# . , ( ) ! ? separate, ; : removed.
TRAIN_TOKENS = [
    ["=", "valkyria", "chronicles", "="],
    ["the", "game", "'", "s", "<unk>", ",", "the", "best", "(", "ever", ")", "."],
    ["game", "the", "end", "the", "game", "!"],
]


def write_wikitext(folder, train=TRAIN, valid=VALID, test=TEST):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"wiki.{name}.tokens").write_text(text, encoding="utf-8")


def test_load_wikitext2_vocab_and_layout(tmp_path):
    write_wikitext(tmp_path / "wikitext-2")
    train, val, test, vocab = load_wikitext2(train_bs=3, test_bs=2, data_dir=tmp_path)
    # counts: the 4, game 3, = 2, then the singletons alphabetically
    itos = [
        "<unk>",
        "the",
        "game",
        "=",
        "!",
        "'",
        "(",
        ")",
        ",",
        ".",
        "best",
        "chronicles",
        "end",
        "ever",
        "s",
        "valkyria",
    ]
    assert isinstance(vocab, Vocab) and vocab.get_itos() == itos and len(vocab) == 16
    assert vocab["game"] == 2 and vocab["never-seen"] == 0 and "game" in vocab
    assert vocab(["the", "zzz"]) == [1, 0] == vocab.lookup_indices(["the", "zzz"])
    assert vocab.lookup_token(3) == "=" and vocab.lookup_tokens([1, 2]) == ["the", "game"]
    assert vocab.get_stoi()["valkyria"] == 15 and vocab.get_default_index() == 0

    stream = [itos.index(t) for line in TRAIN_TOKENS for t in line]  # 22 ids
    assert train.dtype == torch.int64 and tuple(train.shape) == (7, 3)
    for j in range(3):  # column j is the j-th chunk of 7 consecutive ids
        assert train[:, j].tolist() == stream[7 * j : 7 * j + 7]
    val_ids = [1, 2, 0, 0, 0, 1, 0]  # the game is new ? / the <unk>
    assert val.tolist() == [
        [val_ids[0], val_ids[3]],
        [val_ids[1], val_ids[4]],
        [val_ids[2], val_ids[5]],
    ]
    assert test.tolist() == [[12, 8], [1, 2], [2, 9]]  # end the game , game .


def test_load_wikitext103_max_vocab_size(tmp_path, monkeypatch):
    write_wikitext(tmp_path / "WikiText103" / "wikitext-103")
    monkeypatch.setenv("ALF_DATA_DIR", str(tmp_path))
    train, _, test, vocab = load_wikitext103(train_bs=1, test_bs=1, max_vocab_size=4)
    assert vocab.get_itos() == ["<unk>", "the", "game", "="]
    stream = [vocab[t] for line in TRAIN_TOKENS for t in line]
    assert train[:, 0].tolist() == stream and stream.count(0) == 22 - 4 - 3 - 2
    assert test[:, 0].tolist() == [0, 1, 2, 0, 2, 0]
    _, _, _, full = load_wikitext103(1, 1)
    assert len(full) == 16  # the default 32768 keeps every token


def test_load_wikitext_bad_files(tmp_path):
    write_wikitext(tmp_path)
    (tmp_path / "wiki.valid.tokens").unlink()
    with pytest.raises(FileNotFoundError, match="wiki.valid.tokens.*searched"):
        load_wikitext2(2, 2, data_dir=tmp_path)
    write_wikitext(tmp_path, test=" \n")
    with pytest.raises(ValueError, match="wiki.test.tokens: 0 tokens, fewer than the batch"):
        load_wikitext2(2, 2, data_dir=tmp_path)
    write_wikitext(tmp_path)
    raw = "the café".encode()
    (tmp_path / "wiki.train.tokens").write_bytes(raw[:-1])  # cut inside 'é'
    with pytest.raises(ValueError, match="wiki.train.tokens: not UTF-8"):
        load_wikitext2(1, 1, data_dir=tmp_path)
    write_wikitext(tmp_path)
    with pytest.raises(ValueError, match="max_vocab_size must be >= 1"):
        load_wikitext103(1, 1, max_vocab_size=0, data_dir=tmp_path)


def test_vocab_checks():
    vocab = Vocab(["a", "b"])
    with pytest.raises(KeyError, match="'c' is not in the vocabulary"):
        vocab["c"]
    vocab.set_default_index(1)
    assert vocab["c"] == 1
    with pytest.raises(ValueError, match="index must be None or an int"):
        vocab.set_default_index(2)
    with pytest.raises(IndexError, match=r"index must be in \[0, 2\)"):
        vocab.lookup_token(2)
    with pytest.raises(ValueError, match="holds 'a' twice"):
        Vocab(["a", "a"])
    assert Vocab.__module__ == "alf.utils.datagen"
    assert repr(vocab) == "Vocab(size=2, default_index=1)"
    with pytest.raises(TypeError, match="itos\\[1\\] must be a str, got int"):
        Vocab(["a", 1])


# torchtext's basic_english, regex by regex (the reference the tokenizer follows)
_TORCHTEXT_PATTERNS = [
    (r"\'", " '  "),
    (r"\"", ""),
    (r"\.", " . "),
    (r"<br \/>", " "),
    (r",", " , "),
    (r"\(", " ( "),
    (r"\)", " ) "),
    (r"\!", " ! "),
    (r"\?", " ? "),
    (r"\;", " "),
    (r"\:", " "),
    (r"\s+", " "),
]


def torchtext_basic_english(line):
    line = line.lower()
    for pattern, replacement in _TORCHTEXT_PATTERNS:
        line = re.sub(pattern, replacement, line)
    return line.split()


@given(st.text(alphabet=st.sampled_from(list("aB '\".,()!?;:<br />\t\n@-=é")), max_size=40))
def test_tokenizer_matches_torchtext_basic_english(line):
    assert basic_english_tokenize(line) == torchtext_basic_english(line)
    assert basic_english_tokenize("<br;/>x<br />y") == torchtext_basic_english("<br;/>x<br />y")
