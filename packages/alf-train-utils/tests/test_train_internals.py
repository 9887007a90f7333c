"""The package's shared private helpers: argument checks (``_train_checks``)
and crash-safe file writing (``_train_atomic``), on real files."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from alf.utils._train_atomic import (
    atomic_write_bytes,
    atomic_writer,
    commit_file,
    create_temp_file,
)
from alf.utils._train_checks import check_int, check_path, check_real

# ---------------------------------------------------------------- checks


@pytest.mark.parametrize(
    "value, want", [(3, 3), (np.int64(-2), -2), (np.uint8(7), 7), (torch.tensor(5), 5)]
)
def test_check_int_takes_integers(value, want):
    got = check_int(value, "k")
    assert got == want and type(got) is int


@pytest.mark.parametrize(
    "value, kind",
    [(True, "bool"), (2.0, "float"), ("3", "str"), (None, "NoneType"), (np.float32(1), "float32")],
)
def test_check_int_refuses_non_integers(value, kind):
    with pytest.raises(TypeError, match=f"^k must be an int, got {kind} "):
        check_int(value, "k")


def test_check_int_refuses_tensors_that_are_not_one_integer():
    for t in (torch.tensor([1, 2]), torch.tensor(1.0)):
        with pytest.raises(TypeError, match="k must be an int, got Tensor"):
            check_int(t, "k")


def test_check_int_minimum_and_expected():
    assert check_int(0, "k", 0) == 0
    with pytest.raises(ValueError, match="^k must be >= 1, got 0$"):
        check_int(0, "k", 1)
    with pytest.raises(TypeError, match="^k must be an int or None, got float 1.5$"):
        check_int(1.5, "k", expected="an int or None")


@pytest.mark.parametrize("value", [0.5, 2, np.float32(0.25), np.int16(3)])
def test_check_real_takes_reals(value):
    got = check_real(value, "x")
    assert got == float(value) and type(got) is float


def test_check_real_refusals():
    with pytest.raises(TypeError, match="^x must be a real number, got bool True$"):
        check_real(True, "x")
    with pytest.raises(TypeError, match="^x must be a real number, got str '1'$"):
        check_real("1", "x")
    with pytest.raises(TypeError, match="got complex"):
        check_real(1j, "x")
    with pytest.raises(ValueError, match="^x must be finite, got nan$"):
        check_real(float("nan"), "x")
    with pytest.raises(ValueError, match="^x must be finite, got inf$"):
        check_real(float("inf"), "x")
    with pytest.raises(ValueError, match="^x must be a number, got nan$"):
        check_real(float("nan"), "x", finite=False)
    assert check_real(float("inf"), "x", 0, finite=False) == float("inf")


def test_check_real_bounds():
    assert check_real(0, "x", 0) == 0.0
    with pytest.raises(ValueError, match="^x must be > 0, got 0$"):
        check_real(0, "x", 0, exclusive_minimum=True)
    with pytest.raises(ValueError, match="^x must be >= 0, got -0.5$"):
        check_real(-0.5, "x", 0)
    assert check_real(1, "x", 0, 1) == 1.0
    with pytest.raises(ValueError, match="^x must be <= 1, got 1.5$"):
        check_real(1.5, "x", 0, 1)


def test_check_path(tmp_path):
    assert check_path(tmp_path, "p") == str(tmp_path)
    assert check_path("a/b", "p") == "a/b"
    with pytest.raises(TypeError, match="^p must be a str or os.PathLike, got int$"):
        check_path(3, "p")
    with pytest.raises(TypeError, match="^p must be a str or os.PathLike, got bytes$"):
        check_path(b"a/b", "p")

    class BytesPath(os.PathLike):
        def __fspath__(self):
            return b"a/b"

    with pytest.raises(TypeError, match="p must be a text path, got the bytes path b'a/b'"):
        check_path(BytesPath(), "p")


# ---------------------------------------------------------------- files


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _hidden(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


@pytest.mark.parametrize("durable", [True, False])
def test_atomic_write_replaces_with_open_permissions(tmp_path, umask_027, durable):
    target = tmp_path / "conf.gin"
    atomic_write_bytes(str(target), b"old", durable)
    assert target.read_bytes() == b"old" and _mode(target) == 0o640  # 0o666 & ~0o027
    atomic_write_bytes(str(target), b"new", durable)
    assert target.read_bytes() == b"new" and _hidden(tmp_path) == []


def test_atomic_writer_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_writer(str(target)) as f:
            f.write(b"partial")
            raise RuntimeError("half-way")
    assert target.read_bytes() == b"good" and _hidden(tmp_path) == []


def test_named_temporary_file_is_never_reused(tmp_path):
    target = tmp_path / "a.bin"
    (tmp_path / ".taken").write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        atomic_write_bytes(str(target), b"x", tmp_name=".taken")
    assert (tmp_path / ".taken").read_bytes() == b"someone else's" and not target.exists()
    atomic_write_bytes(str(target), b"x", tmp_name=".mine")
    assert target.read_bytes() == b"x" and not (tmp_path / ".mine").exists()


@pytest.mark.parametrize("durable", [True, False])
def test_create_temp_file_then_commit(tmp_path, umask_027, durable):
    target = tmp_path / "video.mp4"
    tmp = create_temp_file(str(target))
    assert Path(tmp).parent == tmp_path and Path(tmp).name.startswith(".video.mp4.")
    assert os.path.getsize(tmp) == 0 and _mode(tmp) == 0o640
    assert create_temp_file(str(target)) != tmp  # a fresh name each time
    with open(tmp, "wb") as f:
        f.write(b"frames")
    commit_file(tmp, str(target), durable)
    assert target.read_bytes() == b"frames" and not os.path.exists(tmp)
