"""Git utilities.

The revision and the uncommitted changes of the repository holding a Python
module, recorded by a trainer next to its results so that a run can be traced
back to the exact code that produced it. Both functions run the ``git``
command-line program in ``module_root``.
"""

import os
import subprocess
from typing import List

__all__ = ["get_diff", "get_revision"]


def _run_git(module_root: str, args: List[str]) -> str:
    """Run ``git <args>`` in ``module_root`` and return its standard output.

    Raises:
        TypeError: ``module_root`` is not a str or path.
        ValueError: ``module_root`` is not a directory, is not inside a git
            work tree, or git failed (the message holds git's own error).
        FileNotFoundError: the ``git`` program is not installed.
    """
    if not isinstance(module_root, (str, os.PathLike)):
        raise TypeError(
            f"module_root must be a str or os.PathLike; got {type(module_root).__name__}"
        )
    root = os.path.expanduser(os.fspath(module_root))
    if not os.path.isdir(root):
        raise ValueError(f"module_root must be an existing directory; got {module_root!r}")
    env = dict(os.environ)
    # Reading must not take the index lock (a concurrent git command of the
    # user would fail), and the output must not depend on the user's pager,
    # colour or locale settings.
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_PAGER="cat", LC_ALL="C", LANG="C")
    try:
        proc = subprocess.run(
            ["git", "-c", "core.fileMode=false", "-c", "color.ui=never", *args],
            cwd=root,
            env=env,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as e:
        raise FileNotFoundError("git_utils needs the 'git' program on PATH") from e
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise ValueError(
            f"git {' '.join(args)} failed in module_root {module_root!r} "
            f"(is it inside a git work tree with at least one commit?): {message}"
        )
    return proc.stdout.decode("utf-8", "surrogateescape")


def get_revision(module_root: str) -> str:
    """Get the current revision of a python module at HEAD.

    Args:
        module_root (str): the path to the module root (any folder inside the
            git work tree; ``~`` is expanded).
    Returns:
        str: the full 40-hex-digit (SHA-1) or 64-hex-digit (SHA-256) commit id
        of ``HEAD``.
    Raises:
        ValueError: ``module_root`` is not a directory or not inside a git
            work tree, or the repository has no commit yet.
    """
    return _run_git(module_root, ["rev-parse", "--verify", "HEAD"]).strip()


def get_diff(module_root: str) -> str:
    """Get the diff of ALF at HEAD.

    If the repo is clean, the returned value is an empty string.

    The diff covers every uncommitted change of tracked files of the whole
    repository (staged or not) against ``HEAD``, as ``git diff HEAD`` prints
    it without colours; file mode changes are ignored and untracked files are
    not included.

    Args:
        module_root (str): the path to the module root (any folder inside the
            git work tree; ``~`` is expanded).
    Returns:
        str: current diff.
    Raises:
        ValueError: ``module_root`` is not a directory or not inside a git
            work tree, or the repository has no commit yet.
    """
    return _run_git(module_root, ["diff", "--no-color", "--no-ext-diff", "HEAD", "--"])
