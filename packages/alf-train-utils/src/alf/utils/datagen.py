"""Data sets for supervised-learning algorithms: MNIST, CIFAR-10, WikiText and a
synthetic linear-regression set.

The loaders read the standard files from a local data folder and never download:

============  ==========================================================  ====================
data set      files                                                       default folder
============  ==========================================================  ====================
MNIST         ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,   ``data_m``
              ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``
              (each may be gzipped: ``.gz``)
CIFAR-10      ``data_batch_1`` ... ``data_batch_5``, ``test_batch``       ``data_c10``
              (the "python version" pickles)
WikiText-2    ``wiki.train.tokens``, ``wiki.valid.tokens``,               ``.data``
WikiText-103  ``wiki.test.tokens``
============  ==========================================================  ====================

The folder is the ``data_dir`` argument, else the ``ALF_DATA_DIR`` environment
variable, else the default folder above (relative to the current directory, as
in ALF). The files may sit in that folder or in the sub-folder torchvision or
torchtext would use (``MNIST/raw``, ``cifar-10-batches-py``, ``wikitext-2``,
``wikitext-103``). Missing files raise ``FileNotFoundError`` naming the files
and the folders searched; a truncated or malformed file raises ``ValueError``
naming it. CIFAR-10 pickles are read with an unpickler that allows only NumPy's
array constructors, so a data file cannot run code.
"""

import os
from typing import Any, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from alf.utils._train_checks import check_int
from alf.utils._train_datagen_files import find_files, read_cifar10_batch, read_idx
from alf.utils._train_datagen_text import (
    Vocab,
    batchify,
    build_vocab,
    iter_token_lines,
    numericalize,
)

__all__ = [
    "TestDataSet",
    "Vocab",
    "get_classes",
    "load_cifar10",
    "load_mnist",
    "load_test",
    "load_wikitext103",
    "load_wikitext2",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Per-channel normalisation (mean, std) applied after scaling pixels to [0, 1].
MNIST_MEAN_STD = ((0.1307,), (0.3081,))
CIFAR10_MEAN_STD = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))


def _check_labels(name: str, labels: Any, num_classes: Optional[int] = None) -> List[int]:
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__"):
        raise TypeError(f"{name} must be a list of ints, got {type(labels).__name__}")
    out = []
    for label in labels:
        if isinstance(label, torch.Tensor) and label.numel() == 1:
            label = label.item()
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise TypeError(f"{name} must hold ints, got {type(label).__name__} {label!r}")
        if num_classes is not None and not 0 <= label < num_classes:
            raise ValueError(f"{name} must hold class indices in [0, {num_classes}), got {label}")
        out.append(int(label))
    return out


class _ImageDataset(Dataset):
    """Images held as a uint8 tensor, served as normalised float tensors.

    Attributes:
        data: uint8 tensor [N, H, W] (one channel) or [N, H, W, C].
        targets: int64 tensor [N] of class indices.

    ``dataset[i]`` is ``(image, label)``: a float32 tensor [C, H, W] equal to
    ``(pixel / 255 - mean[c]) / std[c]`` and a Python int.
    """

    def __init__(self, data: np.ndarray, targets: np.ndarray, mean_std):
        self.data = torch.from_numpy(np.ascontiguousarray(data))
        self.targets = torch.from_numpy(np.asarray(targets, dtype=np.int64))
        mean, std = mean_std
        self._mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        image = self.data[index]
        image = image.unsqueeze(0) if image.dim() == 2 else image.permute(2, 0, 1)
        image = image.to(torch.float32).div_(255.0)
        return (image - self._mean) / self._std, int(self.targets[index])


class TestDataSet(Dataset):
    """A synthetic linear-regression data set: ``y = x @ weight + noise``.

    ``x`` and ``noise`` are standard normal, drawn from torch's global generator
    (seed it for reproducible data).

    Args:
        input_dim (int): dimension D of the features.
        output_dim (int): dimension K of the targets.
        size (int): number N of examples.
        weight (Tensor|None): float tensor [D, K]; None draws ``U[0, 1) + 5``.

    ``dataset[i]`` is ``(features[i], targets[i])``, float32 tensors [D] and [K].
    """

    # Not a pytest test class, despite its name.
    __test__ = False

    def __init__(self, input_dim=3, output_dim=1, size=1000, weight=None):
        input_dim = check_int(input_dim, "input_dim", 1)
        output_dim = check_int(output_dim, "output_dim", 1)
        size = check_int(size, "size", 1)
        if weight is None:
            weight = torch.rand(input_dim, output_dim) + 5.0
        else:
            weight = torch.as_tensor(weight, dtype=torch.float32)
            if tuple(weight.shape) != (input_dim, output_dim):
                raise ValueError(
                    f"weight must have shape [input_dim, output_dim] = "
                    f"[{input_dim}, {output_dim}], got {list(weight.shape)}"
                )
        self._weight = weight
        self._features = torch.randn(size, input_dim)
        noise = torch.randn(size, output_dim)
        self._values = self._features @ weight + noise

    def __len__(self) -> int:
        return self._features.shape[0]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        return self._features[index], self._values[index]

    def get_features(self) -> torch.Tensor:
        """Return the features, float32 tensor [N, input_dim]."""
        return self._features

    def get_targets(self) -> torch.Tensor:
        """Return the targets ``features @ weight + noise``, float32 tensor [N, output_dim]."""
        return self._values


def _targets_of(dataset: Any) -> Optional[torch.Tensor]:
    """The labels of ``dataset`` as a tensor without loading its items, if it keeps them."""
    if isinstance(dataset, Subset):
        inner = _targets_of(dataset.dataset)
        if inner is None:
            return None
        return inner[torch.as_tensor(list(dataset.indices), dtype=torch.int64)]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    return torch.as_tensor(targets)


def get_classes(target, labels):
    """Return the indices of the examples of ``target`` whose label is in ``labels``.

    Used to restrict a data set to some classes:
    ``Subset(dataset, get_classes(dataset, [0, 1]))``.

    Args:
        target (torch.utils.data.Dataset): the data set to filter; ``target[i]``
            is ``(input, label)``. Its ``targets`` attribute (a ``Subset``'s
            inner one) is used when present instead of loading every item.
        labels (list[int]): the labels to keep.

    Returns:
        list[int]: the indices, in increasing order.
    """
    wanted = _check_labels("labels", labels)
    targets = _targets_of(target)
    if targets is not None:
        keep = torch.isin(targets.reshape(-1), torch.tensor(wanted, dtype=targets.dtype))
        return [int(i) for i in torch.nonzero(keep).reshape(-1)]
    wanted_set = set(wanted)
    return [i for i in range(len(target)) if int(target[i][1]) in wanted_set]


def _loaders(
    trainset, testset, label_idx, train_bs, test_bs, num_workers, num_classes, subset_size=None
):
    if label_idx is not None:
        train_indices = get_classes(trainset, label_idx)
        if not train_indices:
            raise ValueError(f"label_idx {label_idx} selects no example of the training set")
        trainset = Subset(trainset, train_indices)
        testset = Subset(testset, get_classes(testset, label_idx))
    if subset_size is not None:
        trainset = Subset(trainset, range(min(subset_size, len(trainset))))
        testset = Subset(testset, range(min(subset_size, len(testset))))
    kwargs = dict(num_workers=num_workers, pin_memory=False, drop_last=False)
    train_loader = DataLoader(trainset, batch_size=train_bs, shuffle=True, **kwargs)
    test_loader = DataLoader(testset, batch_size=test_bs, shuffle=False, **kwargs)
    return train_loader, test_loader


def _check_loader_args(label_idx, train_bs, test_bs, num_workers, num_classes):
    if label_idx is not None:
        label_idx = _check_labels("label_idx", label_idx, num_classes)
    return (
        label_idx,
        check_int(train_bs, "train_bs", 1),
        check_int(test_bs, "test_bs", 1),
        check_int(num_workers, "num_workers", 0),
    )


def _idx_names(stem: str) -> Tuple[str, str]:
    return (stem, stem + ".gz")


def _read_mnist_split(images_path, labels_path) -> Tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"{images_path}: MNIST images must be uint8 [N, rows, cols], "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path}: MNIST labels must be uint8 [{images.shape[0]}] (one per image of "
            f"{images_path.name}), got {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: MNIST labels must be in [0, 10), got {labels.max()}")
    return images, labels


def load_mnist(
    label_idx=None,
    train_bs=100,
    test_bs=100,
    num_workers=0,
    small_subset=False,
    data_dir: Optional[PathLike] = None,
):
    """Load the MNIST data set from its IDX files.

    Images are served as float32 tensors [1, 28, 28] equal to
    ``(pixel / 255 - 0.1307) / 0.3081`` and labels as int64 (after collation).
    The training loader shuffles; the test loader keeps the file order. Neither
    drops the last incomplete batch.

    Args:
        label_idx (list[int]): class indices to load from the dataset (None: all);
            the labels keep their original values.
        train_bs (int): training batch size.
        test_bs (int): testing batch size.
        num_workers (int): number of processes to allocate for loading data.
        small_subset (bool): load a small subset of 50 images (the first 50 of
            each split after the class filter) for testing.
        data_dir (str|PathLike): the folder of the files (see the module
            docstring); None: ``$ALF_DATA_DIR``, else ``data_m``.

    Returns:
        train_loader (torch.utils.data.DataLoader): training data loader.
        test_loader (torch.utils.data.DataLoader): test data loader.

    Raises:
        FileNotFoundError: naming the four files and the folders searched.
        ValueError: naming a truncated or malformed file, or an argument out of
            range.
        TypeError: naming an argument of the wrong type.
    """
    label_idx, train_bs, test_bs, num_workers = _check_loader_args(
        label_idx, train_bs, test_bs, num_workers, 10
    )
    paths = find_files(
        data_dir,
        "data_m",
        ["MNIST/raw"],
        [
            _idx_names("train-images-idx3-ubyte"),
            _idx_names("train-labels-idx1-ubyte"),
            _idx_names("t10k-images-idx3-ubyte"),
            _idx_names("t10k-labels-idx1-ubyte"),
        ],
        "MNIST",
    )
    train = _ImageDataset(*_read_mnist_split(paths[0], paths[1]), MNIST_MEAN_STD)
    test = _ImageDataset(*_read_mnist_split(paths[2], paths[3]), MNIST_MEAN_STD)
    return _loaders(
        train, test, label_idx, train_bs, test_bs, num_workers, 10, 50 if small_subset else None
    )


def load_cifar10(
    label_idx=None, train_bs=100, test_bs=100, num_workers=0, data_dir: Optional[PathLike] = None
):
    """Load the CIFAR-10 data set from its python batches.

    Images are served as float32 tensors [3, 32, 32] equal to
    ``(pixel / 255 - mean[c]) / std[c]`` with mean (0.4914, 0.4822, 0.4465)
    and std (0.2023, 0.1994, 0.2010); labels as int64 (after collation). The
    training set is ``data_batch_1`` ... ``data_batch_5`` in order, the test set
    ``test_batch``. The training loader shuffles; the test loader does not.

    Args:
        label_idx (list[int]): classes to be loaded from the dataset (None: all).
        train_bs (int): training batch size.
        test_bs (int): testing batch size.
        num_workers (int): number of processes to allocate for loading data.
        data_dir (str|PathLike): the folder of the files (see the module
            docstring); None: ``$ALF_DATA_DIR``, else ``data_c10``.

    Returns:
        train_loader (torch.utils.data.DataLoader): training data loader.
        test_loader (torch.utils.data.DataLoader): test data loader.

    Raises:
        FileNotFoundError: naming the six files and the folders searched.
        ValueError: naming a truncated or malformed batch, or an argument out
            of range.
        TypeError: naming an argument of the wrong type.
    """
    label_idx, train_bs, test_bs, num_workers = _check_loader_args(
        label_idx, train_bs, test_bs, num_workers, 10
    )
    names = [(f"data_batch_{i}",) for i in range(1, 6)] + [("test_batch",)]
    paths = find_files(data_dir, "data_c10", ["cifar-10-batches-py"], names, "CIFAR-10")
    batches = [read_cifar10_batch(p) for p in paths]
    train_images = np.concatenate([b[0] for b in batches[:5]])
    train_labels = np.concatenate([b[1] for b in batches[:5]])
    train = _ImageDataset(train_images, train_labels, CIFAR10_MEAN_STD)
    test = _ImageDataset(batches[5][0], batches[5][1], CIFAR10_MEAN_STD)
    return _loaders(train, test, label_idx, train_bs, test_bs, num_workers, 10)


def load_test(train_bs=50, test_bs=10, num_workers=0):
    """Loaders of two :class:`TestDataSet` (1000 examples each, 3 features, 1
    target) sharing one weight ``U[0, 1) + 5`` [3, 1].

    Args:
        train_bs (int): training batch size (the training loader shuffles).
        test_bs (int): testing batch size (the test loader does not shuffle).
        num_workers (int): number of processes to allocate for loading data.

    Returns:
        train_loader (torch.utils.data.DataLoader): batches ``(x [B, 3], y [B, 1])``.
        test_loader (torch.utils.data.DataLoader): the same for the test set.
    """
    _, train_bs, test_bs, num_workers = _check_loader_args(
        None, train_bs, test_bs, num_workers, None
    )
    input_dim, output_dim = 3, 1
    weight = torch.rand(input_dim, output_dim) + 5.0
    trainset = TestDataSet(input_dim=input_dim, output_dim=output_dim, weight=weight)
    testset = TestDataSet(input_dim=input_dim, output_dim=output_dim, weight=weight)
    return _loaders(trainset, testset, None, train_bs, test_bs, num_workers, None)


def _load_wikitext(name: str, folder: str, train_bs, test_bs, max_vocab_size, data_dir):
    train_bs = check_int(train_bs, "train_bs", 1)
    test_bs = check_int(test_bs, "test_bs", 1)
    if max_vocab_size is not None:
        max_vocab_size = check_int(max_vocab_size, "max_vocab_size", 1)
    paths = find_files(
        data_dir,
        ".data",
        [folder, f"{name}/{folder}", name],
        [("wiki.train.tokens",), ("wiki.valid.tokens",), ("wiki.test.tokens",)],
        name,
    )
    vocab = build_vocab(iter_token_lines(paths[0]), max_vocab_size)
    out = []
    for path, bs in zip(paths, (train_bs, test_bs, test_bs)):
        ids = numericalize(iter_token_lines(path), vocab)
        if ids.shape[0] < bs:
            raise ValueError(
                f"{path}: {ids.shape[0]} tokens, fewer than the batch size {bs} "
                f"(a truncated or empty file?)"
            )
        out.append(batchify(ids, bs))
    return out[0], out[1], out[2], vocab


def load_wikitext2(train_bs, test_bs, data_dir: Optional[PathLike] = None):
    """Load WikiText-2 from ``wiki.{train,valid,test}.tokens``.

    Each line is tokenised like torchtext's ``basic_english`` (lower case,
    punctuation split off). The vocabulary holds ``<unk>`` (index 0, also the
    index of unknown tokens) then every training token by decreasing count, ties
    alphabetical. The ids of all tokens of a split are concatenated and laid out
    as ``bs`` columns (column j is the j-th consecutive chunk; the remainder is
    dropped). All returned tensors are on the CPU.

    Args:
        train_bs (int): training batch size
        test_bs (int): validation/test batch size
        data_dir (str|PathLike): the folder of the files (see the module
            docstring); None: ``$ALF_DATA_DIR``, else ``.data``.

    Returns:
        tuple:
        - torch.Tensor: train_data, int64 Tensor of shape [?, train_bs]
        - torch.Tensor: val_data, int64 Tensor of shape [?, test_bs]
        - torch.Tensor: test_data, int64 Tensor of shape [?, test_bs]
        - Vocab: vocab (``vocab[token]``, ``vocab(tokens)``, ``vocab.get_itos()``)

    Raises:
        FileNotFoundError: naming the three files and the folders searched.
        ValueError: naming a file that is not UTF-8 or holds fewer tokens than
            its batch size, or an argument out of range.
        TypeError: naming an argument of the wrong type.
    """
    return _load_wikitext("WikiText2", "wikitext-2", train_bs, test_bs, None, data_dir)


def load_wikitext103(train_bs, test_bs, max_vocab_size=32768, data_dir: Optional[PathLike] = None):
    """Load WikiText-103 from ``wiki.{train,valid,test}.tokens``.

    As :func:`load_wikitext2`, except that the vocabulary keeps only the
    ``max_vocab_size - 1`` most frequent training tokens besides ``<unk>``; the
    others map to ``<unk>``. All returned tensors are on the CPU.

    Args:
        train_bs (int): training batch size
        test_bs (int): validation/test batch size
        max_vocab_size (int): maximal vocabulary size (``<unk>`` included).
        data_dir (str|PathLike): the folder of the files (see the module
            docstring); None: ``$ALF_DATA_DIR``, else ``.data``.

    Returns:
        tuple:
        - torch.Tensor: train_data, int64 Tensor of shape [?, train_bs]
        - torch.Tensor: val_data, int64 Tensor of shape [?, test_bs]
        - torch.Tensor: test_data, int64 Tensor of shape [?, test_bs]
        - Vocab: vocab

    Raises:
        FileNotFoundError: naming the three files and the folders searched.
        ValueError: as :func:`load_wikitext2`.
    """
    return _load_wikitext(
        "WikiText103", "wikitext-103", train_bs, test_bs, max_vocab_size, data_dir
    )


# Public names defined in this package's private helper modules report this module, so
# pickles, reprs and docs name the public import path, never a private file.
for _name in __all__:
    _obj = globals()[_name]
    if str(getattr(_obj, "__module__", None) or "").startswith("alf.utils._"):
        _obj.__module__ = "alf.utils.datagen"  # not __name__: "__main__" under python -m
del _name, _obj
