"""git_utils on a real git repository made in a temporary folder."""

import os
import subprocess

import pytest

from alf.utils import git_utils
from alf.utils.git_utils import get_diff, get_revision


def _git(repo, *args):
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_SYSTEM=os.devnull)
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\ny = 2\n")
    (root / "README").write_text("readme\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    return root


def _head_from_files(root):
    """The commit id of HEAD read from .git without running git."""
    head = (root / ".git" / "HEAD").read_text().strip()
    assert head.startswith("ref: ")
    ref = root / ".git" / head[len("ref: ") :]
    return ref.read_text().strip()


def test_revision_is_head_commit(repo):
    first = _head_from_files(repo)
    assert get_revision(str(repo)) == first
    assert get_revision(str(repo / "pkg")) == first  # any folder of the work tree
    (repo / "README").write_text("changed\n")
    _git(repo, "commit", "-qam", "second")
    second = _head_from_files(repo)
    assert second != first
    assert get_revision(repo / "pkg") == second  # PathLike accepted


def test_diff_clean_staged_unstaged_untracked(repo):
    assert get_diff(str(repo)) == ""
    (repo / "untracked.py").write_text("new\n")
    assert get_diff(str(repo)) == ""  # untracked files are not part of the diff
    (repo / "pkg" / "__init__.py").write_text("x = 1\ny = 3\n")
    diff = get_diff(str(repo / "pkg"))
    lines = diff.splitlines()
    assert "--- a/pkg/__init__.py" in lines and "+++ b/pkg/__init__.py" in lines
    assert "-y = 2" in lines and "+y = 3" in lines
    assert "\x1b[" not in diff  # no colours
    _git(repo, "add", "pkg/__init__.py")
    assert get_diff(str(repo)) == diff  # staged changes still differ from HEAD
    os.chmod(repo / "README", 0o755)
    assert get_diff(str(repo)) == diff  # mode changes are ignored


def test_not_a_repository_and_no_commit(tmp_path, monkeypatch):
    # git must not find a repository above the temporary folder
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ValueError, match="module_root"):
        get_revision(str(plain))
    with pytest.raises(ValueError, match="module_root"):
        get_diff(str(plain))
    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q")
    with pytest.raises(ValueError, match="commit"):
        get_revision(str(empty))


def test_git_missing_from_path(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    with pytest.raises(FileNotFoundError, match="git_utils needs the 'git' program on PATH"):
        get_revision(str(repo))


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="module_root"):
        get_revision(3)
    with pytest.raises(ValueError, match="existing directory"):
        get_diff(str(tmp_path / "missing"))
    assert sorted(git_utils.__all__) == ["get_diff", "get_revision"]
