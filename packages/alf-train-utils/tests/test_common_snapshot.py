"""Repository snapshots (the snapshot half of alf.utils.common) on real
folders, archives and processes."""

import io
import os
import random
import select
import signal
import stat
import subprocess
import sys
import tarfile
import textwrap

import pytest

from alf.utils import _common_snapshot
from alf.utils._common_snapshot import (
    alf_root,
    generate_alf_snapshot,
    get_alf_snapshot_env_vars,
    is_repo_root,
    snapshot_repo_roots,
    unzip_alf_snapshot,
)

ENV = "ALF_SNAPSHOT_REPO_ROOTS"


@pytest.fixture(autouse=True)
def no_extra_repos(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _files(folder):
    """``{relative path: content}`` of every file under ``folder``."""
    out = {}
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path) as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


@pytest.fixture
def fake_alf(tmp_path):
    """A repository root holding an ``alf`` package: what a snapshot keeps
    and what it must leave out."""
    root = tmp_path / "alf_repo"
    kept = {
        "alf/__init__.py": "VERSION = 'snapshot'\n",
        "alf/utils/tool.py": "def f():\n    return 1\n",
        "alf/examples/conf.gin": "x.y = 1\n",
        "alf/examples/data.json": "{}\n",
    }
    dropped = {
        "alf/notes.txt": "not code\n",
        "alf/__pycache__/tool.cpython-311.pyc": "bytes\n",
        "alf/.hidden/secret.py": "x = 1\n",
        "setup.py": "outside the package folder\n",
    }
    for rel, text in {**kept, **dropped}.items():
        _write(root / rel, text)
    return root, kept


@pytest.fixture
def extra_repo(tmp_path, monkeypatch):
    """A second repository named by ALF_SNAPSHOT_REPO_ROOTS."""
    root = tmp_path / "extra_repo"
    _write(root / "mymod" / "__init__.py", "MARK = 'original'\n")
    _write(root / "mymod" / "sub" / "conf.gin", "a.b = 2\n")
    monkeypatch.setenv(ENV, f"mymod={root}")
    return root


# ---- repository roots ------------------------------------------------------------------
def test_is_repo_root(tmp_path):
    _write(tmp_path / "pkg" / "__init__.py", "")
    (tmp_path / "ns").mkdir()
    assert is_repo_root(str(tmp_path), "pkg")
    assert not is_repo_root(str(tmp_path), "ns")  # a folder without __init__.py
    assert not is_repo_root(str(tmp_path), "missing")
    assert not is_repo_root(str(tmp_path), "../pkg")
    with pytest.raises(TypeError, match="module_name"):
        is_repo_root(str(tmp_path), 3)


def test_snapshot_repo_roots(tmp_path, monkeypatch):
    assert snapshot_repo_roots() == {}
    for name in ("a", "b"):
        _write(tmp_path / f"r{name}" / name / "__init__.py", "")
    monkeypatch.setenv(ENV, f"b={tmp_path / 'rb'}::a={tmp_path / 'ra'}:alf={tmp_path}")
    assert snapshot_repo_roots() == {"b": str(tmp_path / "rb"), "a": str(tmp_path / "ra")}
    for bad in ("b", f"={tmp_path}", f"b={tmp_path}", f"b={tmp_path / 'rb'}:b={tmp_path / 'rb'}"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ValueError, match=ENV):
            snapshot_repo_roots()


# ---- generate, unzip, run -----------------------------------------------------------------
def test_generate_and_unzip_round_trip(fake_alf, extra_repo, tmp_path):
    root, kept = fake_alf
    conf = root / "experiments" / "my_conf.py"  # inside the repo, outside the package
    _write(conf, "# conf\n")
    job = tmp_path / "job"
    generate_alf_snapshot(str(root), str(conf), str(job))
    assert sorted(os.listdir(job)) == ["alf.tar.gz", "mymod.tar.gz"]
    with tarfile.open(job / "alf.tar.gz") as tar:
        assert all(m.isfile() and m.uid == 0 for m in tar.getmembers())
    unzip_alf_snapshot(str(job))
    expected = {os.path.join(*rel.split("/")): text for rel, text in kept.items()}
    expected[os.path.join("experiments", "my_conf.py")] = "# conf\n"
    assert _files(job / "alf") == expected
    assert _files(job / "mymod") == {
        os.path.join("mymod", "__init__.py"): "MARK = 'original'\n",
        os.path.join("mymod", "sub", "conf.gin"): "a.b = 2\n",
    }
    # a config file outside every repository is not part of a snapshot
    generate_alf_snapshot(root, tmp_path / "elsewhere.py", tmp_path / "job2")
    unzip_alf_snapshot(tmp_path / "job2")
    assert os.path.join("experiments", "my_conf.py") not in _files(tmp_path / "job2" / "alf")


def test_snapshot_runs_the_old_code(fake_alf, extra_repo, tmp_path):
    job = tmp_path / "job"
    generate_alf_snapshot(str(fake_alf[0]), None, str(job))
    _write(extra_repo / "mymod" / "__init__.py", "MARK = 'changed later'\n")
    unzip_alf_snapshot(str(job))
    env = get_alf_snapshot_env_vars(str(job))
    paths = env["PYTHONPATH"].split(os.pathsep)
    assert paths[:2] == [str(job / "mymod"), str(job / "alf")]
    assert env["PATH"] == os.environ["PATH"]
    out = subprocess.run(
        [sys.executable, "-c", "import mymod; print(mymod.MARK); print(mymod.__file__)"],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    mark, path = out.stdout.split()
    assert mark == "original"
    assert path.startswith(str(job / "mymod"))


def test_snapshot_of_the_alf_namespace(tmp_path):
    """alf_root() is where this package's alf folder is; the snapshot holds
    every folder of the alf namespace (alf-math's modules included) and the
    snapshot's copy is what a process started with its environment imports."""
    import alf.utils.math_ops

    root = alf_root()
    assert os.path.isfile(os.path.join(root, "alf", "utils", "_common_snapshot.py"))
    job = tmp_path / "job"
    generate_alf_snapshot(root, None, job)
    unzip_alf_snapshot(job)
    files = _files(job / "alf")
    for module in (_common_snapshot, alf.utils.math_ops):
        rel = os.path.join("alf", "utils", os.path.basename(module.__file__))
        with open(module.__file__) as f:
            assert files[rel] == f.read()
    script = "import alf.utils.pretty_print as p; print(p.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=get_alf_snapshot_env_vars(job),
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(job / "alf"))


def test_regenerate_and_unzip_replace_atomically(fake_alf, tmp_path):
    root, _ = fake_alf
    job = tmp_path / "job"
    generate_alf_snapshot(root, None, job)
    unzip_alf_snapshot(job)
    _write(job / "alf" / "stale.py", "left from an older restore\n")
    _write(root / "alf" / "new.py", "NEW = 1\n")
    generate_alf_snapshot(root, None, job)
    unzip_alf_snapshot(job)
    files = _files(job / "alf")
    assert files[os.path.join("alf", "new.py")] == "NEW = 1\n"
    assert "stale.py" not in files
    assert sorted(os.listdir(job)) == ["alf", "alf.tar.gz"]  # no temporary leftovers
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(job / "alf.tar.gz").st_mode & 0o777 == 0o666 & ~mask


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="alf_root"):
        generate_alf_snapshot(str(tmp_path), None, str(tmp_path / "job"))
    with pytest.raises(TypeError, match="dest_path"):
        generate_alf_snapshot(alf_root(), None, 5)
    with pytest.raises(ValueError, match="root_dir"):
        unzip_alf_snapshot(str(tmp_path / "missing"))
    unzip_alf_snapshot(str(tmp_path))  # no archive: nothing to restore
    assert os.listdir(tmp_path) == []


# ---- hostile archives ---------------------------------------------------------------------
def _member(name, kind=tarfile.REGTYPE, data=b"x", linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


_HOSTILE = {
    "parent": [_member("../evil.py")],
    "dotdot inside": [_member("alf/../../evil.py")],
    "absolute": [_member("/tmp/evil.py")],
    "link out": [_member("alf/link", tarfile.SYMTYPE, linkname="../../outside")],
    "absolute link": [_member("alf/link", tarfile.SYMTYPE, linkname="/etc")],
    "through link": [
        _member("alf/d", tarfile.SYMTYPE, linkname="."),
        _member("alf/d/x.py"),
    ],
    "hard link out": [_member("alf/h", tarfile.LNKTYPE, linkname="../x")],
    "fifo": [_member("alf/fifo", tarfile.FIFOTYPE)],
    "empty path": [_member("./")],
    "device": [_member("alf/dev", tarfile.CHRTYPE)],
}


@pytest.mark.parametrize("case", sorted(_HOSTILE))
def test_hostile_archive_is_refused_before_extracting(tmp_path, case):
    job = tmp_path / "job"
    job.mkdir()
    with tarfile.open(job / "alf.tar.gz", "w:gz") as tar:
        tar.addfile(*_member("alf/alf/good.py"))  # a good member first
        for info, data in _HOSTILE[case]:
            tar.addfile(info, data)
    with pytest.raises(ValueError, match="alf.tar.gz"):
        unzip_alf_snapshot(str(job))
    assert os.listdir(job) == ["alf.tar.gz"]  # nothing extracted, no leftovers
    assert sorted(os.listdir(tmp_path)) == ["job"]


def test_links_inside_the_target_are_kept(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    with tarfile.open(job / "alf.tar.gz", "w:gz") as tar:
        tar.addfile(*_member("alf/alf/a.py", data=b"A = 1\n"))
        tar.addfile(*_member("alf/alf/b.py", tarfile.SYMTYPE, linkname="a.py"))
        tar.addfile(*_member("alf/c.py", tarfile.SYMTYPE, linkname="alf/a.py"))
    unzip_alf_snapshot(job)
    assert os.readlink(job / "alf" / "alf" / "b.py") == "a.py"
    assert (job / "alf" / "c.py").read_text() == "A = 1\n"


def test_folders_are_extracted_enterable_and_without_special_bits(tmp_path):
    """A folder member stored with mode 0o000 (or set-id bits) is extracted
    so that its owner can enter and later replace it."""
    job = tmp_path / "job"
    job.mkdir()
    with tarfile.open(job / "alf.tar.gz", "w:gz") as tar:
        folder, _ = _member("alf/alf/pkg", tarfile.DIRTYPE)
        folder.mode = 0o000
        tar.addfile(folder)
        script, data = _member("alf/alf/pkg/run.py", data=b"print(1)\n")
        script.mode = 0o4755  # set-uid: dropped
        tar.addfile(script, data)
    unzip_alf_snapshot(job)
    assert stat.S_IMODE(os.stat(job / "alf" / "alf" / "pkg").st_mode) & 0o700 == 0o700
    assert stat.S_IMODE(os.stat(job / "alf" / "alf" / "pkg" / "run.py").st_mode) == 0o755
    unzip_alf_snapshot(job)  # the earlier extraction can be replaced


# ---- a kill at any moment leaves a complete archive -----------------------------------------
def test_sigkill_while_generating_leaves_a_complete_archive(tmp_path):
    rng = random.Random(0)
    root = tmp_path / "repo"
    expected = set()
    for i in range(300):
        rel = f"alf/m{i // 50}/f{i}.py"
        _write(root / rel, f"# {i}\n{rng.randbytes(3000).hex()}\n")
        expected.add("alf/" + rel)
    job = tmp_path / "job"
    generate_alf_snapshot(root, None, job)  # the previous good state
    child = textwrap.dedent(
        f"""
        import sys
        from alf.utils._common_snapshot import generate_alf_snapshot
        print("ready", flush=True)
        while True:
            generate_alf_snapshot({str(root)!r}, None, {str(job)!r})
        """
    )
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", child], stdout=subprocess.PIPE, env=dict(os.environ)
        )
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 120)  # watchdog
            assert ready and proc.stdout.readline().strip() == b"ready"
            select.select([], [], [], rng.uniform(0.0, 0.3))  # a random moment
            proc.send_signal(signal.SIGKILL)
            kills += 1
        finally:
            proc.kill()
            proc.wait(timeout=60)
            proc.stdout.close()
        # the previous archive or the new one, complete either way
        with tarfile.open(job / "alf.tar.gz") as tar:
            names = set()
            for member in tar.getmembers():
                names.add(member.name)
                assert len(tar.extractfile(member).read()) == member.size
        assert names == expected
    assert kills == 12
