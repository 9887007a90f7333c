"""Check the public API surface of every package: ``__all__``, docstrings and tests.

Usage::

    python tools/check_api.py [--root ROOT] [PACKAGE ...]

A *public module* is a ``.py`` file under ``packages/<pkg>/src/alf/`` whose dotted
name has no component starting with ``_`` (``__init__`` excepted, so
``alf/summary/__init__.py`` is the public module ``alf.summary``). Every public
module of the packages checked (all, or the ones named) is read with :mod:`ast`
(nothing is imported) and must satisfy these rules:

1. It assigns ``__all__`` once, at top level, to a literal list or tuple of string
   constants without duplicates (``__all__ += ...`` and the like are reported).
2. Every name in ``__all__`` is bound at the module's top level: by ``def``,
   ``class``, an assignment (annotated ones only with a value), ``import`` or
   ``from ... import`` (``as`` names included), also inside top-level ``if``,
   ``try`` and ``with`` blocks. ``__init__.py`` may also list its submodules. A
   ``from ... import *`` makes this unverifiable and is itself a problem.
3. Every function and class listed in ``__all__`` and *defined* by the module
   has a docstring, and so does every public method of such a class (a
   ``def`` in the class body whose name does not start with ``_``; properties
   included; ``@x.setter``/``@x.deleter`` and ``@overload`` stubs are skipped).
   A method without a docstring is accepted when it *overrides a documented
   method*, that is when a base class has a method of the same name whose
   documentation it inherits:

   * a base class of this repository (defined in the same module, or reached
     through the module's imports of repository modules) that defines the method
     with a docstring, or inherits one by this same rule;
   * a base class from torch, when the name is in :data:`TORCH_BASE_METHODS`
     (e.g. ``nn.Module.forward``, ``Distribution.log_prob``, ``Transform.sign``,
     ``autograd.Function.backward``); torch is not imported, so the table stands
     in for it;
   * a base class from the standard library (builtins included) that has a
     documented attribute of that name (looked up by importing the stdlib module).

   Bases that cannot be resolved (a call such as ``namedtuple(...)``, a class of
   another third-party library) document nothing.
4. Every class and function listed in ``__all__`` reports a public module as its
   ``__module__`` (this one, or another public module): pickles, reprs and docs
   never record a private file such as ``alf/utils/_dist_classes.py``. This rule
   imports the module (in a child process whose ``PYTHONPATH`` lists every
   package's ``src/``), so the packages' dependencies must be installed; a module
   that fails rules 1-2 is not imported, one that cannot be imported is a problem.

Whether the public names are *tested* is measured, not guessed: the ``tests``
sessions of the noxfile run each suite under branch coverage with a floor.

Re-exports (names bound by an import of a repository module) are checked where
they are defined: by the defining module when it is public and lists the name in
its ``__all__``, otherwise (a private helper module such as
``alf/utils/_dist_its.py``) rule 3 is applied to the definition here, and
problems point at the definition. Names imported from outside the repository are
only checked by rules 1 and 2.

Problems are printed as ``path:line: message`` (path relative to the repository
root), then a summary line. Exit status 0 when every rule holds, 1 when there are
problems, 2 for a bad command line (an unknown package name) or an unreadable
package table.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import (  # noqa: E402
    Package,
    WorkspaceError,
    discover_packages,
    normalize,
    package_checker_parser,
)

__all__ = [
    "TORCH_BASE_METHODS",
    "Report",
    "check",
    "is_public_module",
    "main",
    "module_problems",
    "top_level_bindings",
]

#: Public methods and properties of the torch base classes that the packages
#: subclass, by the module prefix of the base (``torch.nn.Linear`` counts as
#: ``torch.nn``). An undocumented override of one of these names inherits torch's
#: documentation (rule 3).
TORCH_BASE_METHODS: dict[str, frozenset[str]] = {
    # torch.nn.Module
    "torch.nn": frozenset(
        """add_module apply bfloat16 buffers children compile cpu cuda double eval
        extra_repr float forward get_buffer get_extra_state get_parameter get_submodule
        half ipu load_state_dict modules mtia named_buffers named_children named_modules
        named_parameters parameters register_backward_hook register_buffer
        register_forward_hook register_forward_pre_hook register_full_backward_hook
        register_full_backward_pre_hook register_load_state_dict_post_hook
        register_load_state_dict_pre_hook register_module register_parameter
        register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
        set_extra_state set_submodule share_memory state_dict to to_empty train type
        xpu zero_grad""".split()
    ),
    # torch.distributions.Distribution, Transform and constraints.Constraint
    "torch.distributions": frozenset(
        """arg_constraints batch_shape cdf entropy enumerate_support event_shape expand
        has_enumerate_support has_rsample icdf log_prob mean mode perplexity rsample
        sample sample_n stddev support variance
        bijective codomain domain event_dim forward_shape inv inverse_shape
        log_abs_det_jacobian sign with_cache
        check is_discrete""".split()
    ),
    # torch.autograd.Function
    "torch.autograd": frozenset("apply backward forward jvp setup_context vjp vmap".split()),
}

_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"builtins", "typing", "abc"}


@dataclass
class Report:
    """What :func:`check` found.

    Attributes:
        problems: one ``path:line: message`` line per problem.
        modules: the number of public modules checked.
        names: the number of names their ``__all__`` lists.
    """

    problems: list[str] = field(default_factory=list)
    modules: int = 0
    names: int = 0


@dataclass(frozen=True)
class _Binding:
    """One top-level binding of a name.

    ``kind`` is ``def``, ``class``, ``assign`` or ``import``; for imports ``target``
    is the dotted module and ``attr`` the imported name (None for ``import a.b``).
    """

    kind: str
    node: ast.AST
    line: int
    target: str | None = None
    attr: str | None = None


@dataclass
class _Module:
    name: str
    path: Path
    package: str
    tree: ast.Module | None = None
    error: str | None = None
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    star_imports: list[tuple[int, str]] = field(default_factory=list)
    all_names: list[str] | None = None  # a valid literal __all__, else None
    all_line: int = 1
    all_problems: list[str] = field(default_factory=list)

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def public(self) -> bool:
        return is_public_module(self.name)


def is_public_module(dotted: str) -> bool:
    """Whether a module is public: no component of its dotted name starts with ``_``.

    ``alf.utils.math_ops`` and ``alf.summary`` are public, ``alf.utils._dist_its``
    is not. Names of packages are given without ``__init__``.
    """
    return not any(part.startswith("_") for part in dotted.split("."))


def _module_name(file: Path, src: Path) -> str:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    if node.level == 0:
        return node.module
    base = module.split(".")
    drop = node.level - 1 if is_package else node.level
    if drop > len(base):
        return None
    base = base[: len(base) - drop]
    return ".".join(base + ([node.module] if node.module else [])) or None


def _targets(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _targets(elt)]
    if isinstance(target, ast.Starred):
        return _targets(target.value)
    return []


def top_level_bindings(
    tree: ast.Module, module: str = "", is_package: bool = False
) -> tuple[dict[str, list[_Binding]], list[tuple[int, str]]]:
    """Collect the names a module binds at top level (also in top-level if/try/with blocks).

    Args:
        tree: the parsed module.
        module: its dotted name, used to resolve relative imports.
        is_package: whether the module is a package's ``__init__.py``.

    Returns:
        ``(bindings, star_imports)``: name -> its bindings in source order, and
        ``(line, module)`` for each ``from module import *``.
    """
    bindings: dict[str, list[_Binding]] = {}
    stars: list[tuple[int, str]] = []

    def bind(name: str, binding: _Binding) -> None:
        bindings.setdefault(name, []).append(binding)

    def visit(stmts: list[ast.stmt]) -> None:
        for node in stmts:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                bind(node.name, _Binding("def", node, node.lineno))
            elif isinstance(node, ast.ClassDef):
                bind(node.name, _Binding("class", node, node.lineno))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for name in _targets(target):
                        bind(name, _Binding("assign", node, node.lineno))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                if isinstance(node, ast.AugAssign) or node.value is not None:
                    for name in _targets(node.target):
                        bind(name, _Binding("assign", node, node.lineno))
            elif type(node).__name__ == "TypeAlias":  # Python >= 3.12: ``type X = ...``
                for name in _targets(node.name):  # type: ignore[attr-defined]
                    bind(name, _Binding("assign", node, node.lineno))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        bind(alias.asname, _Binding("import", node, node.lineno, alias.name))
                    else:
                        top = alias.name.split(".")[0]
                        bind(top, _Binding("import", node, node.lineno, top))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve_relative(node, module, is_package)
                for alias in node.names:
                    if alias.name == "*":
                        stars.append((node.lineno, target or "." * node.level))
                    else:
                        bind(
                            alias.asname or alias.name,
                            _Binding("import", node, node.lineno, target, alias.name),
                        )
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
                visit(node.body)  # type: ignore[attr-defined]
                for handler in node.handlers:  # type: ignore[attr-defined]
                    if handler.name:
                        bind(handler.name, _Binding("assign", handler, handler.lineno))
                    visit(handler.body)
                visit(node.orelse)  # type: ignore[attr-defined]
                visit(node.finalbody)  # type: ignore[attr-defined]
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        for name in _targets(item.optional_vars):
                            bind(name, _Binding("assign", node, node.lineno))
                visit(node.body)

    visit(tree.body)
    return bindings, stars


def _read_all(mod: _Module, rel: str) -> list[str]:
    """Validate rule 1; set ``mod.all_names`` when ``__all__`` is valid. Return problems."""
    assert mod.tree is not None
    defs = []
    for node in mod.tree.body:
        if isinstance(node, ast.Assign) and any("__all__" in _targets(t) for t in node.targets):
            defs.append((node, node.value))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and "__all__" in _targets(
            node.target
        ):
            defs.append((node, node.value if isinstance(node, ast.AnnAssign) else None))
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and isinstance(node.value.func.value, ast.Name)
            and node.value.func.value.id == "__all__"
        ):
            defs.append((node, None))
    if not defs:
        return [f"{rel}:1: no __all__"]
    node, value = defs[0]
    mod.all_line = node.lineno
    problems = []
    if len(defs) > 1:
        problems.append(
            f"{rel}:{defs[1][0].lineno}: __all__ is changed after its definition at line "
            f"{node.lineno}; keep it one literal list"
        )
    if not (
        isinstance(value, (ast.List, ast.Tuple))
        and isinstance(node, (ast.Assign, ast.AnnAssign))
        and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts)
    ):
        return problems + [f"{rel}:{node.lineno}: __all__ is not a literal list of strings"]
    names = [e.value for e in value.elts]  # type: ignore[attr-defined]
    seen: set[str] = set()
    for elt, name in zip(value.elts, names):
        if name in seen:
            problems.append(f"{rel}:{elt.lineno}: __all__ lists {name!r} twice")
        seen.add(name)
    mod.all_names = list(dict.fromkeys(names))
    return problems


class _Index:
    """Every module under ``packages/*/src``, parsed on demand, with name resolution."""

    def __init__(self, root: Path, packages: dict[str, Package]) -> None:
        self.root = root
        self.modules: dict[str, _Module] = {}
        self.packages = packages
        for pkg in packages.values():
            if not pkg.src.is_dir():
                continue
            for path in sorted(pkg.src.rglob("*.py")):
                if "__pycache__" in path.parts:
                    continue
                name = _module_name(path, pkg.src)
                if name.split(".")[0] == "alf":
                    self.modules.setdefault(name, _Module(name, path, pkg.name))

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def get(self, name: str | None) -> _Module | None:
        """The parsed module ``name`` of the repository, or None."""
        mod = self.modules.get(name or "")
        if mod is None or mod.tree is not None or mod.error is not None:
            return mod
        try:
            mod.tree = ast.parse(mod.path.read_text(encoding="utf-8"), filename=str(mod.path))
        except SyntaxError as exc:
            mod.error = f"{self.rel(mod.path)}:{exc.lineno or 1}: does not parse: {exc.msg}"
            return mod
        mod.bindings, mod.star_imports = top_level_bindings(mod.tree, mod.name, mod.is_package)
        if mod.public:
            mod.all_problems = _read_all(mod, self.rel(mod.path))
        return mod

    # -- name resolution ------------------------------------------------------
    # A resolved name is ("def", module, name, binding) for a definition in the
    # repository, ("module", dotted) for a module (of the repository or not),
    # ("external", dotted) for something imported from outside, or None.

    def resolve(self, mod: _Module, name: str, depth: int = 0) -> tuple | None:
        if depth > 20:
            return None
        found = mod.bindings.get(name)
        if not found:
            if mod.is_package and f"{mod.name}.{name}" in self.modules:
                return ("module", f"{mod.name}.{name}")
            return None
        binding = found[0]
        if binding.kind != "import":
            return ("def", mod, name, binding)
        if binding.attr is None:
            return ("module", binding.target)
        return self._member(binding.target or "", binding.attr, depth + 1)

    def _member(self, dotted: str, attr: str, depth: int) -> tuple | None:
        source = self.get(dotted)
        if source is not None and source.tree is not None:
            if attr in source.bindings:
                return self.resolve(source, attr, depth)
        if f"{dotted}.{attr}" in self.modules:
            return ("module", f"{dotted}.{attr}")
        if source is not None:
            return None  # a repository module that does not bind the name
        if dotted.split(".")[0] == "alf" and any(m.startswith(dotted + ".") for m in self.modules):
            return ("module", f"{dotted}.{attr}")  # a namespace package of the repository
        return ("external", f"{dotted}.{attr}")

    def resolve_expr(self, mod: _Module, expr: ast.expr) -> tuple | None:
        if isinstance(expr, ast.Name):
            found = self.resolve(mod, expr.id)
            return found if found is not None else ("external", f"builtins.{expr.id}")
        if isinstance(expr, ast.Attribute):
            base = self.resolve_expr(mod, expr.value)
            if base is None or base[0] == "def":
                return None
            return self._member(base[1], expr.attr, 0)
        if isinstance(expr, ast.Subscript):  # Generic[T], Base[int]
            return self.resolve_expr(mod, expr.value)
        return None


def _is_setter_or_overload(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for dec in func.decorator_list:
        if isinstance(dec, ast.Attribute) and dec.attr in ("setter", "deleter"):
            return True
        if (isinstance(dec, ast.Name) and dec.id == "overload") or (
            isinstance(dec, ast.Attribute) and dec.attr == "overload"
        ):
            return True
    return False


def _class_members(cls: ast.ClassDef) -> dict[str, ast.AST]:
    """Names the class body binds, the first binding of each."""
    members: dict[str, ast.AST] = {}
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            members.setdefault(node.name, node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in _targets(target):
                    members.setdefault(name, node)
    return members


def _external_documents(dotted: str, method: str) -> bool:
    """Whether the class ``dotted`` from outside the repository documents ``method``."""
    for prefix, names in TORCH_BASE_METHODS.items():
        if dotted == prefix or dotted.startswith(prefix + "."):
            return method in names
    top = dotted.split(".")[0]
    if top not in _STDLIB:
        return False
    module, _, attr = dotted.rpartition(".")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception:  # anything that cannot be imported documents nothing
        return False
    member = getattr(obj, method, None)
    return isinstance(obj, type) and member is not None and bool(getattr(member, "__doc__", None))


def _inherits_doc(
    index: _Index, mod: _Module, cls: ast.ClassDef, method: str, seen: set[tuple[str, str]]
) -> bool:
    """Whether a base of ``cls`` (of module ``mod``) documents ``method`` (rule 3)."""
    for base in cls.bases:
        found = index.resolve_expr(mod, base)
        if found is None:
            continue
        if found[0] == "external":
            if _external_documents(found[1], method):
                return True
            continue
        if found[0] != "def" or not isinstance(found[3].node, ast.ClassDef):
            continue
        base_mod, base_cls = found[1], found[3].node
        key = (base_mod.name, base_cls.name)
        if key in seen:
            continue
        seen.add(key)
        member = _class_members(base_cls).get(method)
        if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if ast.get_docstring(member):
                return True
        if _inherits_doc(index, base_mod, base_cls, method, seen):
            return True
    return False


def _check_definition(index: _Index, mod: _Module, name: str, binding: _Binding) -> list[str]:
    """Rule 3 for a name defined by ``mod``."""
    rel = index.rel(mod.path)
    problems = []
    node = binding.node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        if not ast.get_docstring(node):
            problems.append(f"{rel}:{node.lineno}: {kind} {name} has no docstring")
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if (
                    isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and not item.name.startswith("_")
                    and not ast.get_docstring(item)
                    and not _is_setter_or_overload(item)
                    and not _inherits_doc(index, mod, node, item.name, set())
                ):
                    problems.append(
                        f"{rel}:{item.lineno}: method {node.name}.{item.name} has no docstring "
                        "and overrides no documented base method"
                    )
    return problems


_REPORT_MODULES = """
import importlib, inspect, json, sys
out = []
for name in sys.argv[1:]:
    try:
        mod = importlib.import_module(name)
    except BaseException as exc:  # report it, go on with the others
        out.append([name, None, f"{type(exc).__name__}: {exc}"])
        continue
    for attr in getattr(mod, "__all__", ()):
        obj = getattr(mod, attr, None)
        if inspect.isclass(obj) or inspect.isroutine(obj):
            out.append([name, attr, getattr(obj, "__module__", None)])
print(json.dumps(out))
"""


def module_problems(root: Path, packages: dict[str, Package], modules: dict[str, str]) -> list[str]:
    """Rule 4: import ``modules`` (dotted name -> path shown in problems) in a child
    process and report each class or function of their ``__all__`` whose
    ``__module__`` is private (a dotted component starting with ``_``)."""
    if not modules:
        return []
    paths = [str(p.src) for p in packages.values() if p.src.is_dir()]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run(
        [sys.executable, "-c", _REPORT_MODULES, *modules],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=600,
    )
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"check_api: importing the public modules failed: {detail}"]
    problems = []
    for module, attr, reported in json.loads(proc.stdout.strip().splitlines()[-1]):
        where = modules[module]
        if attr is None:
            problems.append(
                f"{where}: cannot import {module} to check __module__ (rule 4): {reported}; "
                "install the packages' dependencies"
            )
        elif isinstance(reported, str) and not is_public_module(reported):
            problems.append(
                f"{where}: {attr} reports __module__ {reported!r}, a private module; set "
                f"{attr}.__module__ = {module!r} (pickles and reprs name __module__)"
            )
    return problems


def check(root: Path, selected: list[str] | None = None, imports: bool = True) -> Report:
    """Check the public modules of the selected packages (default: all).

    Args:
        root: the repository root.
        selected: package names (normalized or not); None or empty for all.
        imports: whether to apply rule 4, which imports the modules.

    Returns:
        The problems found and what was counted.

    Raises:
        WorkspaceError: if the package table cannot be read or a selected package
            does not exist.
    """
    packages = discover_packages(root)
    unknown = [n for n in selected or () if normalize(n) not in packages]
    if unknown:
        raise WorkspaceError(
            f"unknown package(s): {', '.join(unknown)}; known: {', '.join(packages) or 'none'}"
        )
    chosen = {normalize(n) for n in selected} if selected else set(packages)
    index = _Index(root, packages)
    report = Report()
    checked: set[tuple[str, str]] = set()  # (module, name) definitions already checked
    importable: dict[str, str] = {}  # public modules that pass rules 1-2: rule 4 imports them
    for dotted in sorted(index.modules, key=lambda m: (index.modules[m].package, m)):
        mod = index.get(dotted)
        assert mod is not None
        if mod.package not in chosen or not mod.public:
            continue
        report.modules += 1
        rel = index.rel(mod.path)
        if mod.error:
            report.problems.append(mod.error)
            continue
        assert mod.tree is not None
        report.problems += mod.all_problems
        for line, source in mod.star_imports:
            report.problems.append(
                f"{rel}:{line}: 'from {source} import *' makes the names of __all__ unverifiable"
            )
        names = mod.all_names or []
        report.names += len(names)
        static_ok = not mod.all_problems and not mod.star_imports and mod.all_names is not None
        for name in names:
            found = index.resolve(mod, name)
            if name not in mod.bindings and found is None:
                if not mod.star_imports:
                    report.problems.append(
                        f"{rel}:{mod.all_line}: __all__ lists {name!r}, which is not bound at "
                        "the top level"
                    )
                static_ok = False
                continue
            if found is None or found[0] != "def":
                continue  # a module, or imported from outside the repository
            _, def_mod, def_name, binding = found
            if def_mod is not mod and def_mod.public and def_name in (def_mod.all_names or ()):
                continue  # the defining public module checks it
            if (def_mod.name, def_name) in checked:
                continue
            checked.add((def_mod.name, def_name))
            report.problems += _check_definition(index, def_mod, def_name, binding)
        if static_ok:
            importable[dotted] = f"{rel}:{mod.all_line}"
    if imports:
        report.problems += module_problems(root, packages, importable)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run :func:`check` from the command line; return the exit status."""
    args = package_checker_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    try:
        report = check(args.root, args.packages)
    except WorkspaceError as exc:
        print(f"check_api: {exc}", file=sys.stderr)
        return 2
    for line in report.problems:
        print(line)
    print(
        f"check_api: {report.modules} modules, {report.names} public names, "
        f"{len(report.problems)} problems"
    )
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
