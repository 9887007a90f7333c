"""Configuration files of an experiment (part of ``alf.utils.common``).

ALF configures a run with a config file: a gin file (``*.gin``, parsed by
gin-config) or a Python file (``*.py``, run as a program; here it configures
gin through ``gin.bind_parameter``/``gin.parse_config``). The functions below
find that file, parse it, write the configuration used into the experiment
folder (``root_dir``) and summarize it to TensorBoard.

The reference reads the command-line flags ``--conf``, ``--gin_file``,
``--root_dir``, ``--gin_param`` and ``--conf_param`` from absl's ``FLAGS``.
Here every such value is a keyword argument; when it is left out (``None``)
and the program defined the absl flag of that name (absl is imported only if
the program already did), the flag's value is used, so ALF-style launchers
keep working unchanged.
"""

import glob
import html
import os
import runpy
import shutil
import sys
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import gin
import gin.config as _gin_config

import alf.summary
from alf.utils import gin_utils
from alf.utils._train_atomic import atomic_write_bytes
from alf.utils._train_checks import check_path

__all__ = [
    "copy_gin_configs",
    "get_conf_file",
    "get_gin_confg_strs",
    "get_gin_file",
    "parse_conf_file",
    "read_conf_file",
    "summarize_config",
    "summarize_gin_config",
    "write_config",
    "write_gin_configs",
]

#: File name of a Python config written into ``root_dir`` by ``write_config``.
ALF_CONFIG_FILE = "alf_config.py"
#: File name of a gin config written into ``root_dir`` by ``write_config``.
GIN_CONFIG_FILE = "configured.gin"

_PathLike = Union[str, "os.PathLike[str]"]


# ---- absl fallback ------------------------------------------------------------
def _flag_defined(name: str) -> bool:
    """Whether the program imported absl and defined the flag ``name`` (absl
    is never imported here)."""
    flag_values = getattr(sys.modules.get("absl.flags"), "FLAGS", None)
    return flag_values is not None and name in flag_values


def _absl_flag(name: str) -> Any:
    """The value of the absl flag ``name`` if it is defined (see
    :func:`_flag_defined`); None otherwise."""
    if not _flag_defined(name):
        return None
    return sys.modules["absl.flags"].FLAGS[name].value


def _or_flag(value: Any, flag: str) -> Any:
    """``value``, or when it is None the absl flag ``flag`` (an empty flag
    value counts as unset)."""
    if value is not None:
        return value
    value = _absl_flag(flag)
    return None if value in ("", [], ()) else value


# ---- argument checks ----------------------------------------------------------
def _path(value: Any, name: str) -> str:
    return os.path.expanduser(check_path(value, name, nonempty=True))


def _bindings(value: Any, name: str) -> List[str]:
    """A list of gin binding strings from None, a str or a sequence of str."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be None, a str or a list of str; got {value!r}")
    return list(value)


def _atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# ---- finding the config file ----------------------------------------------------
def get_conf_file(
    root_dir: Optional[_PathLike] = None,
    conf: Optional[_PathLike] = None,
    gin_file: Optional[Union[_PathLike, Sequence[_PathLike]]] = None,
) -> Optional[str]:
    """Get the configuration file.

    If ``conf`` (the reference's ``FLAGS.conf``) is not set, the gin file
    ``gin_file`` (``FLAGS.gin_file``) is the config; if neither is set, find
    ``alf_config.py`` or ``configured.gin`` under ``root_dir`` (in that order)
    and return it. Each argument left as None falls back to the absl flag of
    the same name when the program defined one; with no argument and no flag,
    the result is None.

    Args:
        root_dir (str): when None, FLAGS.root_dir is used to find the conf file.
        conf (str): the config file named by the user (``.py`` or ``.gin``).
        gin_file (str | list[str]): the gin file named by the user; a list
            must hold a single file (several gin files are ``get_gin_file``'s
            business).
    Returns:
        str: the name of the conf file (``~`` expanded). None if there is no
        conf file.
    Raises:
        TypeError: an argument is not a path (or a list of paths).
        ValueError: ``gin_file`` lists several files.
    """
    conf = _or_flag(conf, "conf")
    if conf is not None:
        return _path(conf, "conf")
    gin_file = _or_flag(gin_file, "gin_file")
    if gin_file is not None:
        if isinstance(gin_file, (list, tuple)):
            if len(gin_file) > 1:
                raise ValueError(
                    f"gin_file must name a single config file; got {list(gin_file)!r} "
                    "(use get_gin_file for several gin files)"
                )
            if gin_file:
                return _path(gin_file[0], "gin_file")
        else:
            return _path(gin_file, "gin_file")
    root_dir = _or_flag(root_dir, "root_dir")
    if root_dir is None:
        return None
    root = _path(root_dir, "root_dir")
    for name in (ALF_CONFIG_FILE, GIN_CONFIG_FILE):
        candidate = os.path.join(root, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def get_gin_file(
    gin_file: Optional[Union[_PathLike, Sequence[_PathLike]]] = None,
    root_dir: Optional[_PathLike] = None,
) -> Union[List[str], str]:
    """Get the gin configuration file.

    If ``gin_file`` (the reference's ``FLAGS.gin_file``) is not set, find gin
    files under ``root_dir`` (``FLAGS.root_dir``) and returns them. If there is
    no ``gin_file`` given nor flag defined, and no ``root_dir``, return ''.

    Args:
        gin_file (str | list[str]): gin file(s) named by the user.
        root_dir (str): the folder searched for ``*.gin`` files when
            ``gin_file`` is not set.
    Returns:
        list[str] | str: the gin file(s) (``~`` expanded; files found under
        ``root_dir`` in sorted order), or ``''``.
    Raises:
        TypeError: an argument is not a path (or a list of paths).
        ValueError: the absl flag ``gin_file`` is defined but empty and no
            ``root_dir`` is known.
        FileNotFoundError: ``root_dir`` holds no ``*.gin`` file.
    """
    flag_defined = gin_file is not None or _flag_defined("gin_file")
    gin_file = _or_flag(gin_file, "gin_file")
    if gin_file is not None:
        files = list(gin_file) if isinstance(gin_file, (list, tuple)) else [gin_file]
        return [_path(f, "gin_file") for f in files]
    root_dir = _or_flag(root_dir, "root_dir")
    if root_dir is None:
        if not flag_defined:
            return ""
        raise ValueError(
            "get_gin_file: gin_file is not set; give root_dir to search for *.gin files"
        )
    root = _path(root_dir, "root_dir")
    found = sorted(glob.glob(os.path.join(glob.escape(root), "*.gin")))
    if not found:
        raise FileNotFoundError(f"no *.gin file in root_dir {root!r}; give gin_file")
    return found


def read_conf_file(
    root_dir: _PathLike,
    conf: Optional[_PathLike] = None,
    gin_file: Optional[Union[_PathLike, Sequence[_PathLike]]] = None,
) -> Optional[str]:
    """Read the content of the conf file.

    The file is the one ``get_conf_file(root_dir, conf, gin_file)`` finds; it
    is read as text, never run.

    Args:
        root_dir (str): alf log directory path
        conf (str): the config file named by the user (``FLAGS.conf``).
        gin_file (str | list[str]): the gin file named by the user
            (``FLAGS.gin_file``).
    Returns:
        str: the content of the conf file as a str. None if conf file is not
        specified through commandline and cannot be found in root_dir
    Raises:
        FileNotFoundError: the named conf file does not exist.
    """
    conf_file = get_conf_file(_path(root_dir, "root_dir"), conf, gin_file)
    if conf_file is None:
        return None
    with open(conf_file, encoding="utf-8") as f:
        return f.read()


# ---- parsing --------------------------------------------------------------------
def parse_conf_file(
    conf_file: _PathLike,
    gin_params: Optional[Union[str, Sequence[str]]] = None,
    conf_params: Optional[Union[str, Sequence[str]]] = None,
) -> None:
    """Parse config from file.

    A ``.gin`` file is parsed by gin (its ``include`` statements followed);
    it is never executed. A ``.py`` file is run as a Python program (with
    ``__name__ == "__alf_config__"`` and ``__file__`` set): naming a ``.py``
    file as the config is the user's request to run it, as in ALF. Then the
    extra bindings ``gin_params`` and ``conf_params`` (the reference's
    ``FLAGS.gin_param`` and ``FLAGS.conf_param``; gin binding strings such as
    ``"Adam.lr = 1e-3"``) are applied in that order, overriding the file.

    Unlike the reference, no global environment is created and no random seed
    is set (environments are not part of alf-utils): call
    ``alf.utils.common.set_random_seed`` after parsing. The gin configuration
    is not locked (``gin.finalize`` is not called), so modules imported later
    can still register configurables.

    Args:
        conf_file (str): the full path to the config file
        gin_params (str | list[str]): extra gin bindings; None falls back to
            the absl flag ``gin_param`` when the program defined it.
        conf_params (str | list[str]): extra bindings, applied after
            ``gin_params``; None falls back to the absl flag ``conf_param``.
    Raises:
        TypeError: an argument has the wrong type.
        ValueError: ``conf_file`` is neither a ``.gin`` nor a ``.py`` file.
        FileNotFoundError: ``conf_file`` does not exist.
    """
    path = _path(conf_file, "conf_file")
    gin_params = _bindings(_or_flag(gin_params, "gin_param"), "gin_params")
    conf_params = _bindings(_or_flag(conf_params, "conf_param"), "conf_params")
    extension = os.path.splitext(path)[1]
    if extension not in (".gin", ".py"):
        raise ValueError(f"conf_file must be a '.gin' or '.py' file; got {conf_file!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"conf_file {conf_file!r} does not exist")
    if extension == ".gin":
        # Not finalized (locked), like a Python config: modules imported
        # later may still register configurables.
        gin.parse_config_files_and_bindings([path], gin_params + conf_params, finalize_config=False)
        return
    runpy.run_path(path, run_name="__alf_config__")
    if gin_params or conf_params:
        gin.parse_config(gin_params + conf_params)


# ---- writing the configuration ------------------------------------------------------
def write_gin_configs(root_dir: _PathLike, gin_file: _PathLike) -> None:
    """Write a gin configration to a file. Because the user can

    1. manually change the gin confs after loading a conf file into the code, or
    2. include a gin file in another gin file while only the latter might be
       copied to root_dir.

    So here we just dump the actual used gin conf string to a file: the
    operative configuration (``gin.operative_config_str()``), then, under a
    comment header, the inoperative one (``gin_utils.inoperative_config_str()``:
    values bound but not used so far, e.g. by code that runs only later), so
    that parsing the file restores every binding. The file is replaced
    atomically.

    Args:
        root_dir (str): directory path (created if missing)
        gin_file (str): a single file path for storing the gin configs. Only
            the basename of the path will be used.
    """
    root = _path(root_dir, "root_dir")
    name = os.path.basename(_path(gin_file, "gin_file"))
    if not name:
        raise ValueError(f"gin_file must end with a file name; got {gin_file!r}")
    text = gin.operative_config_str()
    inoperative = gin_utils.inoperative_config_str()
    if _has_bindings(inoperative):
        text = (
            text.rstrip("\n")
            + "\n\n# Inoperative configuration: bound but not used by the program so far.\n\n"
            + inoperative
        )
    os.makedirs(root, exist_ok=True)
    _atomic_write_text(os.path.join(root, name), text.rstrip("\n") + "\n")


def _has_bindings(config_str: str) -> bool:
    """Whether a gin config string binds anything (beyond imports/comments)."""
    return any(
        line.strip() and not line.startswith("#") and not line.startswith("import ")
        for line in config_str.splitlines()
    )


def copy_gin_configs(root_dir: _PathLike, gin_files: Optional[Sequence[_PathLike]]) -> None:
    """Copy gin config files to root_dir

    Each file is copied under its base name, atomically; the checks run
    before anything is copied.

    Args:
        root_dir (str): directory path (created if missing)
        gin_files (None|list[str]): list of file paths
    Raises:
        TypeError: ``gin_files`` is not None nor a list of paths.
        ValueError: two files have the same base name.
        FileNotFoundError: a file does not exist.
    """
    if gin_files is None:
        return
    if isinstance(gin_files, (str, os.PathLike)):
        gin_files = [gin_files]
    if not isinstance(gin_files, (list, tuple)):
        raise TypeError(
            f"gin_files must be None or a list of paths; got {type(gin_files).__name__}"
        )
    root = _path(root_dir, "root_dir")
    sources = [_path(f, "gin_files") for f in gin_files]
    names = [os.path.basename(s) for s in sources]
    for source in sources:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"gin_files: {source!r} does not exist")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"gin_files: several files are named {duplicates}; they would overwrite each other"
        )
    os.makedirs(root, exist_ok=True)
    for source, name in zip(sources, names):
        target = os.path.join(root, name)
        if os.path.exists(target) and os.path.samefile(source, target):
            continue
        with open(source, "rb") as f:
            data = f.read()
        atomic_write_bytes(target, data)
        shutil.copymode(source, target)


def write_config(
    root_dir: _PathLike,
    conf_file: Optional[_PathLike] = None,
    conf_params: Optional[Union[str, Sequence[str]]] = None,
) -> None:
    """Write config to a file under directory ``root_dir``

    For a gin config (or none), ``write_gin_configs(root_dir,
    "configured.gin")``. For a Python config, ``root_dir/alf_config.py`` is
    the file's content followed by the extra bindings (``conf_params``, the
    reference's ``FLAGS.conf_param``) applied with ``gin.parse_config``, so
    that running it again reproduces the configuration. Files are replaced
    atomically.

    Args:
        root_dir (str): directory path
        conf_file (str): the config file of the run; None falls back to
            ``get_conf_file()`` (absl flags).
        conf_params (str | list[str]): extra gin bindings of the run; None
            falls back to the absl flag ``conf_param``.
    """
    root = _path(root_dir, "root_dir")
    conf = _path(conf_file, "conf_file") if conf_file is not None else get_conf_file()
    params = _bindings(_or_flag(conf_params, "conf_param"), "conf_params")
    if conf is None or conf.endswith(".gin"):
        write_gin_configs(root, GIN_CONFIG_FILE)
        return
    with open(conf, encoding="utf-8") as f:
        text = f.read()
    if params:
        lines = "".join(f"    {p!r},\n" for p in params)
        text = (
            text.rstrip("\n")
            + "\n\n\n# ---- conf_params of the run (added by alf.utils.common.write_config) ----\n"
            + "import gin as _conf_params_gin  # noqa: E402\n\n"
            + "_conf_params_gin.parse_config([\n"
            + lines
            + "])\n"
        )
    os.makedirs(root, exist_ok=True)
    _atomic_write_text(os.path.join(root, ALF_CONFIG_FILE), text)


# ---- summaries ----------------------------------------------------------------------
_OPERATIVE_DESCRIPTION = (
    "All parameter values used by configurable functions that are actually called "
    "during execution of the current program."
)
_INOPERATIVE_DESCRIPTION = (
    "All parameter values configured but not used by configurable functions "
    "(never called, or the argument given explicitly by the caller)."
)


def get_gin_confg_strs() -> Tuple[str, str]:
    """Obtain both the operative and inoperative config strs from gin.

    The operative configuration consists of all parameter values used by
    configurable functions that are actually called during execution of the
    current program, and inoperative configuration consists of all parameter
    configured but not used by configurable functions. See
    ``gin.operative_config_str()`` and ``gin_utils.inoperative_config_str`` for
    more detail on how the config is generated.

    Each string is a one-line description followed by the config in Markdown
    (``gin.markdown``): section comments become ``####`` headers, bindings are
    indented four spaces (code blocks).

    Returns:
        tuple:
        - md_operative_config_str (str): a markdown-formatted operative str
        - md_inoperative_config_str (str): a markdown-formatted inoperative str
    """
    operative = gin.markdown(gin.operative_config_str())
    inoperative = gin.markdown(gin_utils.inoperative_config_str())
    return (
        f"{_OPERATIVE_DESCRIPTION}\n\n{operative}",
        f"{_INOPERATIVE_DESCRIPTION}\n\n{inoperative}",
    )


def summarize_gin_config() -> None:
    """Write the operative and inoperative gin config to Tensorboard summary.

    Two text summaries (``alf.summary.text``, at the global counter's step,
    under the current summary scope): ``gin/operative_config`` and
    ``gin/inoperative_config``, the strings of ``get_gin_confg_strs()``.
    Nothing is written unless summaries are being recorded (a default writer
    is set, see ``alf.summary.set_default_writer``).
    """
    operative, inoperative = get_gin_confg_strs()
    alf.summary.text("gin/operative_config", operative)
    alf.summary.text("gin/inoperative_config", inoperative)


def _binding_rows(config: Iterable[Tuple[Tuple[str, str], dict]]) -> List[Tuple[str, Any]]:
    """``[(scope/Selector.param, value)]`` sorted by name, from gin's
    ``{(scope, selector): {param: value}}`` tables."""
    rows: List[Tuple[str, Any]] = []
    for (scope, selector), params in config:
        configurable = _gin_config._REGISTRY.get(selector)
        if configurable is not None and configurable.wrapped in (
            _gin_config.macro,
            _gin_config._retrieve_constant,
        ):
            continue
        short = (
            _gin_config._REGISTRY.minimal_selector(selector)
            if configurable is not None
            else selector
        )
        prefix = f"{scope}/{short}" if scope else short
        rows.extend((f"{prefix}.{param}", value) for param, value in params.items())
    return sorted(rows, key=lambda row: row[0])


def _html_table(rows: List[Tuple[str, Any]]) -> str:
    lines = ["<table>", "<tr><th>Name</th><th>Value</th></tr>"]
    for name, value in rows:
        lines.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(repr(value))}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def summarize_config(conf_file: Optional[_PathLike] = None) -> None:
    """Write config to TensorBoard.

    For a gin config (or none), ``summarize_gin_config()``. For a Python
    config, as the reference does for its Python configs, two text summaries
    of HTML tables with one row ``name | value`` per configured value:
    ``config/operative_config`` (values used) and, when some are,
    ``config/inoperative_config`` (values configured but not used).

    Args:
        conf_file (str): the config file of the run; None falls back to
            ``get_conf_file()`` (absl flags).
    """
    conf = _path(conf_file, "conf_file") if conf_file is not None else get_conf_file()
    if conf is None or conf.endswith(".gin"):
        summarize_gin_config()
        return
    with _gin_config._OPERATIVE_CONFIG_LOCK:
        operative = list(_gin_config._OPERATIVE_CONFIG.items())
    alf.summary.text("config/operative_config", _html_table(_binding_rows(operative)))
    inoperative = _binding_rows(gin_utils._inoperative_bindings().items())
    if inoperative:
        alf.summary.text("config/inoperative_config", _html_table(inoperative))
