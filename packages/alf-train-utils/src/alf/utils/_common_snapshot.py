"""Repository snapshots of an experiment (part of ``alf.utils.common``).

When a run starts, ALF can store the source code it runs into the experiment
folder, so that the same code is used later to play the trained model or to
run a queued job even if the repository moved on. A snapshot is one archive
per repository, ``<root_dir>/<module>.tar.gz``, for ``alf`` and for every
module named in the environment variable ``ALF_SNAPSHOT_REPO_ROOTS``. An
archive holds ``<module>/<module>/...``: a copy of the repository (the
folder ``<module>/``, to put on ``PYTHONPATH``) holding the package.

Archives are written atomically (temporary file, fsync, rename) and are
extracted only inside their target folder: absolute member names, ``..``
components, links leading outside and special files are refused before
anything is extracted.
"""

import fnmatch
import logging
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
from typing import Dict, Iterator, List, Optional, Tuple

from alf.utils._train_atomic import atomic_writer
from alf.utils._train_checks import check_path

__all__ = [
    "alf_root",
    "generate_alf_snapshot",
    "get_alf_snapshot_env_vars",
    "is_repo_root",
    "snapshot_repo_roots",
    "unzip_alf_snapshot",
]

#: The environment variable naming extra repositories to snapshot.
SNAPSHOT_REPO_ROOTS_ENV = "ALF_SNAPSHOT_REPO_ROOTS"
#: The files a snapshot keeps (code and the data files configs refer to).
SNAPSHOT_FILE_PATTERNS = ("*.py", "*.gin", "*.json", "*.so")

_logger = logging.getLogger("alf")
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_path(value, name: str) -> str:
    return os.path.abspath(os.path.expanduser(check_path(value, name, nonempty=True)))


# ---- repository roots -------------------------------------------------------------
def alf_root() -> str:
    """Get the ALF root path.

    The folder holding the ``alf`` package folder this module was imported
    from (the repository root for a source checkout of ALF; here, where
    ``alf`` is a namespace package shared by several distributions, the
    ``src`` folder of alf-train-utils, or ``site-packages`` for an installed
    wheel). ``generate_alf_snapshot(alf_root(), ...)`` captures every folder
    of the ``alf`` namespace.

    Returns:
        str: an absolute path.
    """
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def is_repo_root(dir: str, module_name: str) -> bool:
    """Given a directory, check if it is a valid repo root. Currently the way
    of checking is to see if there is valid ``__init__.py`` under it.

    Args:
        dir (str): the candidate repository root (``~`` expanded).
        module_name (str): the package expected directly under it.
    Returns:
        bool: whether ``dir/module_name/__init__.py`` is a file.
    Raises:
        TypeError: ``dir`` is not a path or ``module_name`` not a str.
    """
    root = _check_path(dir, "dir")
    if not isinstance(module_name, str):
        raise TypeError(f"module_name must be a str; got {type(module_name).__name__}")
    if not _MODULE_NAME.match(module_name):
        return False
    return os.path.isfile(os.path.join(root, module_name, "__init__.py"))


def snapshot_repo_roots() -> Dict[str, str]:
    """Return a dict of repo root dirs for snapshot. The paths should be
    defined by a special environment variable ``ALF_SNAPSHOT_REPO_ROOTS``, in
    the following format::

        export ALF_SNAPSHOT_REPO_ROOTS="<module_name1>=<repo_root1>:<module_name2>=<repo_root2>:..."

    where pairs of ``"<module_name>=<repo_root>"`` are separated by ``":"``.
    Note that ``<repo_root>`` should be the parent dir of the module package
    dir. Empty pairs are ignored, so is a pair for ``alf``.

    Returns:
        dict[str]: a dict of ``{module_name: repo_root}`` (absolute paths, in
        the order of the variable), excluding the alf repo itself.
    Raises:
        ValueError: a pair is not ``name=root``, a name is not a Python
            identifier or repeats, or a root does not hold
            ``<module_name>/__init__.py`` (the message names the variable and
            the pair).
    """
    value = os.environ.get(SNAPSHOT_REPO_ROOTS_ENV, "")
    roots: Dict[str, str] = {}
    for pair in value.split(":"):
        if not pair.strip():
            continue
        name, sep, root = pair.partition("=")
        name = name.strip()
        if not sep or not root or not _MODULE_NAME.match(name):
            raise ValueError(
                f"{SNAPSHOT_REPO_ROOTS_ENV}: expected '<module_name>=<repo_root>' pairs "
                f"separated by ':'; got {pair!r}"
            )
        if name == "alf":
            continue
        if name in roots:
            raise ValueError(f"{SNAPSHOT_REPO_ROOTS_ENV}: module {name!r} is given twice")
        if not is_repo_root(root, name):
            raise ValueError(
                f"{SNAPSHOT_REPO_ROOTS_ENV}: {root!r} is not the repo root of module {name!r} "
                f"(no {name}/__init__.py under it)"
            )
        roots[name] = _check_path(root, SNAPSHOT_REPO_ROOTS_ENV)
    return roots


# ---- writing archives ---------------------------------------------------------------
def _alf_namespace_folders() -> List[str]:
    """The folders of the imported ``alf`` namespace package, in import order."""
    alf = sys.modules["alf"]  # imported: this module is alf.utils._common_snapshot
    return [os.path.abspath(p) for p in getattr(alf, "__path__", [])]


def _module_folders(module_name: str, repo_root: str) -> List[str]:
    """The folders whose files make up ``module_name`` of ``repo_root``.

    For ``alf``, when ``repo_root/alf`` is a folder of the imported ``alf``
    namespace, all of the namespace's folders (one per installed alf-*
    distribution), in import order; otherwise ``repo_root/module_name``.
    """
    own = os.path.join(repo_root, module_name)
    if module_name == "alf":
        folders = _alf_namespace_folders()
        real = {os.path.realpath(f) for f in folders}
        if os.path.realpath(own) in real:
            return folders
    return [own]


def _walk_files(folder: str, patterns: Tuple[str, ...]) -> Iterator[Tuple[str, str]]:
    """``(path, path relative to folder)`` of the files under ``folder``
    matching ``patterns``, skipping hidden folders and ``__pycache__``."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for filename in sorted(filenames):
            if any(fnmatch.fnmatch(filename, p) for p in patterns):
                path = os.path.join(dirpath, filename)
                if os.path.isfile(path):
                    yield path, os.path.relpath(path, folder)


def _is_inside(path: str, folder: str) -> bool:
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(folder))
    return relative != os.pardir and not relative.startswith(os.pardir + os.sep)


def _archive_members(
    module_name: str, repo_root: str, conf_file: Optional[str], patterns: Tuple[str, ...]
) -> Dict[str, str]:
    """``{archive name: source path}`` of a repository's snapshot."""
    members: Dict[str, str] = {}
    for folder in _module_folders(module_name, repo_root):
        if not os.path.isdir(folder):
            continue
        for path, relative in _walk_files(folder, patterns):
            name = "/".join([module_name, module_name, *relative.split(os.sep)])
            members.setdefault(name, path)  # the first folder wins, as for imports
    if conf_file is not None and os.path.isfile(conf_file) and _is_inside(conf_file, repo_root):
        relative = os.path.relpath(os.path.realpath(conf_file), os.path.realpath(repo_root))
        members.setdefault("/".join([module_name, *relative.split(os.sep)]), conf_file)
    return members


def _write_archive(path: str, members: Dict[str, str]) -> None:
    """Write the gzip tar archive ``path`` atomically (regular files only,
    links followed, owner and group left out)."""
    with atomic_writer(path) as f:
        with tarfile.open(fileobj=f, mode="w:gz", dereference=True) as tar:
            for name in sorted(members):
                info = tar.gettarinfo(members[name], arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(members[name], "rb") as source:
                    tar.addfile(info, source)


def generate_alf_snapshot(alf_root: str, conf_file: Optional[str], dest_path: str) -> None:
    """Given a destination path, copy the local ALF root dir to the path. To
    save disk space, only source files are copied: ``*.py`` files, and the
    ``*.gin``, ``*.json`` and ``*.so`` files configs and extensions need.

    This function can be used to generate a snapshot of the repo so that the
    exactly same code status will be recovered when later playing a trained
    model or launching a grid-search job in the waiting queue.

    One archive is written per repository: ``dest_path/alf.tar.gz`` for the
    files under ``alf_root/alf`` (all folders of the ``alf`` namespace when
    ``alf_root/alf`` is one of them, see ``alf_root``), and
    ``dest_path/<module>.tar.gz`` for each repository of
    ``snapshot_repo_roots()``. Hidden folders and ``__pycache__`` are skipped.
    The config file is added as well when it lies inside one of the
    repositories. Each archive is replaced atomically.

    Args:
        alf_root (str): the parent path of the 'alf' module
        conf_file (str): the alf config file (or None)
        dest_path (str): the path to generate a snapshot of ALF repo (created
            if missing)
    Raises:
        ValueError: ``alf_root`` has no ``alf`` folder, or
            ``ALF_SNAPSHOT_REPO_ROOTS`` is malformed.
    """
    root = _check_path(alf_root, "alf_root")
    if not os.path.isdir(os.path.join(root, "alf")):
        raise ValueError(f"alf_root must be the folder holding the 'alf' package; got {alf_root!r}")
    conf = _check_path(conf_file, "conf_file") if conf_file is not None else None
    dest = _check_path(dest_path, "dest_path")
    repos = [("alf", root)] + list(snapshot_repo_roots().items())
    archives = [
        (name, _archive_members(name, repo, conf, SNAPSHOT_FILE_PATTERNS)) for name, repo in repos
    ]
    os.makedirs(dest, exist_ok=True)
    for name, members in archives:
        _write_archive(os.path.join(dest, f"{name}.tar.gz"), members)


# ---- extracting archives --------------------------------------------------------------
def _safe_member_name(name: str, archive: str) -> str:
    """The normalized relative path of a member, or ValueError."""
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        raise ValueError(
            f"archive {archive!r}: member {name!r} has an absolute or non-portable path"
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"archive {archive!r}: member {name!r} leaves the target folder ('..')")
    if not parts:
        raise ValueError(f"archive {archive!r}: member {name!r} has an empty path")
    return "/".join(parts)


def _check_members(tar: tarfile.TarFile, archive: str) -> List[tarfile.TarInfo]:
    """Check every member before anything is extracted: only files, folders
    and links whose target stays inside, no path through a link."""
    members = tar.getmembers()
    links = set()
    names = []
    for member in members:
        name = _safe_member_name(member.name, archive)
        names.append(name)
        if member.issym() or member.islnk():
            links.add(name)
            target = member.linkname
            if not target or target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
                raise ValueError(
                    f"archive {archive!r}: link {member.name!r} points to an absolute path {target!r}"
                )
            # a symbolic link is relative to its folder, a hard link to the
            # archive root
            base = name.split("/")[:-1] if member.issym() else []
            depth = 0
            for part in base + target.split("/"):
                if part in ("", "."):
                    continue
                depth += -1 if part == ".." else 1
                if depth < 0:
                    raise ValueError(
                        f"archive {archive!r}: link {member.name!r} -> {target!r} leads outside the target folder"
                    )
        elif not (member.isfile() or member.isdir()):
            raise ValueError(
                f"archive {archive!r}: member {member.name!r} is not a file, folder or link"
            )
    for name in names:
        parts = name.split("/")
        for n in range(1, len(parts)):
            if "/".join(parts[:n]) in links:
                raise ValueError(f"archive {archive!r}: member {name!r} lies under a link")
    return members


def _extract(archive: str, root: str) -> None:
    """Extract ``archive`` into ``root`` (see ``unzip_alf_snapshot``)."""
    with tarfile.open(archive, "r:*") as tar:
        members = _check_members(tar, archive)
        staging = tempfile.mkdtemp(prefix=".unzip-", dir=root)
        try:
            for member in members:
                # No set-id or sticky bits; the owner can always read, write
                # (and, for folders, enter), so that a later restore can
                # replace what this one extracts.
                member.mode = (member.mode & 0o777) | stat.S_IRUSR | stat.S_IWUSR
                if member.isdir():
                    member.mode |= stat.S_IXUSR
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4; members were checked above
                tar.extractall(staging, members=members)
            for entry in sorted(os.listdir(staging)):
                _replace(os.path.join(staging, entry), os.path.join(root, entry))
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _replace(source: str, target: str) -> None:
    """Move ``source`` to ``target``, replacing what is there."""
    if os.path.lexists(target):
        trash = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(target))
        os.replace(target, os.path.join(trash, "old"))
        os.replace(source, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(source, target)


def unzip_alf_snapshot(root_dir: str) -> None:
    """Restore an ALF snapshot from a job directory by unzipping the snapshot
    'tar.gz' files.

    ``root_dir/alf.tar.gz`` and ``root_dir/<module>.tar.gz`` for each module
    of ``snapshot_repo_roots()`` are extracted into ``root_dir`` (a missing
    archive is skipped). Every member of an archive is checked first (no
    absolute path, no ``..``, links only to places inside ``root_dir``, no
    special files); the archive is extracted into a temporary folder inside
    ``root_dir`` and each top-level entry then replaces the one of the same
    name (e.g. ``root_dir/alf``).

    Args:
        root_dir (str): the tensorboard job directory
    Raises:
        ValueError: ``root_dir`` is not a directory, or an archive has a
            member that would land outside it (nothing of that archive is
            extracted).
        tarfile.ReadError: an archive is not a readable tar file.
    """
    root = _check_path(root_dir, "root_dir")
    if not os.path.isdir(root):
        raise ValueError(f"root_dir must be an existing directory; got {root_dir!r}")
    for name in ["alf", *snapshot_repo_roots()]:
        archive = os.path.join(root, f"{name}.tar.gz")
        if not os.path.isfile(archive):
            _logger.info(
                "unzip_alf_snapshot: no snapshot %s in %s", os.path.basename(archive), root
            )
            continue
        _extract(archive, root)


def get_alf_snapshot_env_vars(root_dir: str) -> Dict[str, str]:
    """Given a ``root_dir``, return modified env variable dict so that
    ``PYTHONPATH`` points to the ALF snapshot under this directory.

    ``PYTHONPATH`` becomes ``root_dir/<module>`` for each module of
    ``snapshot_repo_roots()``, then ``root_dir/alf``, then the current
    ``PYTHONPATH``; the other variables are those of ``os.environ``.

    Args:
        root_dir (str): the job directory holding the extracted snapshot.
    Returns:
        dict[str, str]: a new environment for ``subprocess`` (``env=``).
    """
    root = _check_path(root_dir, "root_dir")
    paths = [os.path.join(root, name) for name in snapshot_repo_roots()]
    paths.append(os.path.join(root, "alf"))
    current = os.environ.get("PYTHONPATH", "")
    if current:
        paths.append(current)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
