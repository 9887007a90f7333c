"""Nox sessions of the alf-utils monorepo: tests, isolated wheel installs, lint, the
examples, build, bench, and the demo.

The package table is read from ``packages/*/pyproject.toml`` (see
``tools/workspace.py``); every per-package session is generated from it.

    nox -s demo                           train PPO on CartPole with every package (runs/demo)
    nox -j auto -s tests isolated lowest subset typecheck lint examples   what CI runs (.ci/run)
    nox -s "tests(alf-math-cpu)"          one package, one torch flavour
    nox -s "tests(alf-plot-none-py3.9)"   the torch-free package on one CPython
    nox -s "isolated(alf-dist)"           one package's wheel, installed alone
    nox -s "lowest(alf-plot)"             one package with its dependencies at their floors
    nox -t alf-math                       tests and isolated of one package (-t cpu: all cpu tests)
    nox -s lint -- alf-math               ruff + dependency check for one package
    nox -s build                          every wheel and sdist into dist/ (-- NAME ... for some)
    nox -s subset                         each package installed alone from dist/, as documented
    nox -s typecheck                      mypy over every package's src/
    nox -s examples                       the tests of examples/ (pytest examples/)
    nox -s bench -- bench_buffers         benchmarks (not part of CI)

``-j auto`` runs the sessions that allow it (``allow_parallel=True``: the test
sessions, subset, typecheck, lint, examples) side by side, one per CPU; build
(writes dist/, which subset also fills), bench (timings), demo (uses every
core) and gpu always run alone.
Add ``-r`` to reuse the test virtualenvs between runs (``isolated`` always starts
from a fresh one). Every pip install passes ``-c constraints.txt``, which pins
torch to the local CPU build; the ``cuda`` flavour alone installs torch from the
PyTorch CUDA index, and only on a machine where ``nvidia-smi`` lists a GPU.
Arguments after ``--`` go to pytest in ``tests`` and ``isolated``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nox
import nox.command

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))

from check_wheels import check_sdist, check_wheels, shipped_modules  # noqa: E402
from floors import FloorError, floor_pins  # noqa: E402
from workspace import (  # noqa: E402
    DEFAULT_TEST_REQUIREMENTS,
    Package,
    discover_packages,
    requirement_name,
    sibling_closure,
)

CONSTRAINTS = ROOT / "constraints.txt"
DIST = ROOT / "dist"
#: Branch coverage of a package's own src/ below this (percent) fails its tests session.
COVERAGE_FLOOR = 90
RESULTS = ROOT / ".nox" / "_results"
TORCH_PIN = "torch==2.13.0"
CUDA_INDEX = os.environ.get("ALF_TORCH_CUDA_INDEX", "https://download.pytorch.org/whl/cu126")

PACKAGES: dict[str, Package] = discover_packages(ROOT)

# ``nox -j auto`` (what CI runs) needs the parallel scheduler of nox 2026.8.10.
nox.needs_version = ">=2026.8.10"
nox.options.sessions = ["tests", "isolated", "lowest", "subset", "typecheck", "lint", "examples"]
nox.options.error_on_external_run = True
# uv creates the venvs and installs into them, hard-linking every file from its
# cache: torch is unpacked once on disk instead of once per session. Without uv
# on PATH, nox falls back to virtualenv + pip (slower, one torch copy per venv).
nox.options.default_venv_backend = "uv|virtualenv"
if os.environ.get("ALF_NOX_REPORT"):
    nox.options.report = os.environ["ALF_NOX_REPORT"]


def _python_version_of(exe: str) -> str | None:
    """``"3.11"`` for a working interpreter, None where it does not run (pyenv shims
    refuse versions that are not active)."""
    try:
        proc = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _python_candidates(version: str) -> list[str]:
    """Where a CPython ``version`` interpreter may be: nox's own, PATH, pyenv, /usr."""
    found = [sys.executable]
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        exes = Path(root, "versions").glob(f"{version}.*/bin/python{version}")

        def patch(exe: Path) -> int:
            tail = exe.parent.parent.name.split(".")[2]
            return int(tail) if tail.isdigit() else -1

        found += [str(e) for e in sorted(exes, key=patch, reverse=True)]
    found += [f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    return found


def find_python(version: str) -> str | None:
    """The absolute path of a working CPython ``version`` interpreter, or None."""
    for exe in _python_candidates(version):
        if Path(exe).is_file() and _python_version_of(exe) == version:
            return str(Path(exe).absolute())
    return None


#: Every CPython version some test session runs, mapped to its interpreter (None: missing).
PYTHONS: dict[str, str | None] = {
    v: find_python(v) for v in sorted({v for p in PACKAGES.values() for v in p.test_pythons})
}


def _missing_python(version: str) -> str:
    return (
        f"CPython {version} not found (looked for a working python{version} on PATH, "
        f"under $PYENV_ROOT/versions and ~/.pyenv/versions, and in /usr/local/bin, /usr/bin)"
    )


def _test_matrix() -> list:
    """(python, package, torch flavour) triples: cpu and cuda for torch packages (on the
    one CPython they are tested on), none for the others (on every CPython of
    ``Package.test_pythons``; ``-py3.X`` in the id). A missing interpreter gives
    ``python=False``: the session then skips, saying which one it looked for."""
    params = []
    for pkg in PACKAGES.values():
        several = len(pkg.test_pythons) > 1
        for version in pkg.test_pythons:
            python = PYTHONS[version] or False
            for flavour in ("cpu", "cuda") if pkg.uses_torch else ("none",):
                ident = f"{pkg.name}-{flavour}" + (f"-py{version}" if several else "")
                params.append(
                    nox.param(
                        python,
                        pkg.name,
                        flavour,
                        version,
                        id=ident,
                        tags=[pkg.name, flavour, f"py{version}"],
                    )
                )
    return params


def results_name(session_name: str) -> str:
    """File stem of a session's JUnit report (``tests(alf-math-cpu)`` -> ``tests_alf-math-cpu_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", session_name)


def _step(session: nox.Session, label: str, *args: str, **kwargs) -> None:
    """``session.run`` that fails the session with ``label`` as the reason .ci/run prints."""
    try:
        session.run(*args, **kwargs)
    except nox.command.CommandFailed as exc:
        if args[0] == "pytest" and exc.return_code == 5:
            session.error(f"{label}: pytest collected no tests (exit status 5)")
        session.error(f"{label} failed ({exc.reason})")


@functools.cache
def _uv_find_links() -> tuple[str, ...]:
    """``--find-links`` arguments for uv: the locations of pip's configuration.

    uv does not read pip's configuration; on a machine whose pip finds the torch
    wheel in a local folder (``pip config``: ``global.find-links``), uv is pointed
    there too, so it installs that wheel instead of downloading another build.
    Asked of pip once per nox run, when the first uv install needs it.
    """
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    links: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.rsplit(".", 1)[-1] == "find-links":
            for item in value.strip().strip("'\"").split():
                if item not in links:
                    links.append(item)
    return tuple(arg for loc in links for arg in ("--find-links", loc))


def _uses_uv(session: nox.Session) -> bool:
    return getattr(session.virtualenv, "venv_backend", "") == "uv"


def _pip_install(session: nox.Session, *args: str) -> None:
    """Install into the session's venv with ``-c constraints.txt`` (uv or pip)."""
    if _uses_uv(session):
        session.install(*_uv_find_links(), "-c", str(CONSTRAINTS), *args)
    else:
        session.install("--disable-pip-version-check", "-c", str(CONSTRAINTS), *args)


def _test_requirements(pkg: Package, target: str) -> list[str]:
    """What installs ``target`` (a path or wheel of ``pkg``) with its test tools."""
    if pkg.has_test_extra:
        return [f"{target}[test]", "pytest"]
    return [target, *DEFAULT_TEST_REQUIREMENTS]


def _no_gpu_reason() -> str | None:
    """Why this machine cannot run the cuda flavour, or None when nvidia-smi lists a GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "nvidia-smi is not on PATH"
    try:
        proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi -L failed ({exc})"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return f"nvidia-smi -L exited with {proc.returncode}" + (f": {detail[0]}" if detail else "")
    if "GPU" not in proc.stdout:
        return "nvidia-smi -L lists no GPU"
    return None


def _check_torch(session: nox.Session, pkg: Package, flavour: str) -> None:
    """Fail unless the venv's torch is what the flavour promises (absent for torch-free packages)."""
    _step(
        session, "torch check", "python", str(ROOT / "tools" / "check_torch.py"), pkg.name, flavour
    )


def _run_pytest(
    session: nox.Session,
    pkg: Package,
    tests: Path,
    config: Path,
    env: dict[str, str],
    extra: tuple[str, ...] = (),
) -> None:
    """Run ``tests`` with pytest in one process, writing a JUnit report for .ci/run.

    ``config`` is the root pyproject.toml (or a copy of it): its [tool.pytest.ini_options]
    sets ``--import-mode=importlib`` and the rootdir is its folder.
    """
    if not list(tests.rglob("test_*.py")) and not list(tests.rglob("*_test.py")):
        session.error(f"{pkg.name} has no tests: {pkg.tests.relative_to(ROOT)}/test_*.py not found")
    _pytest_with_report(session, "tests", config, [*extra, str(tests)], env)


def _pytest_with_report(
    session: nox.Session, label: str, config: Path, args: list[str], env: dict[str, str]
) -> None:
    """``pytest -c config ARGS`` writing the session's JUnit report, which .ci/run reads;
    ``label`` names the step in a failure. Arguments after ``--`` go to pytest."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    junit = RESULTS / f"{results_name(session.name)}.xml"
    junit.unlink(missing_ok=True)
    # Exit status 5 (nothing collected) fails the session like any other non-zero status.
    _step(
        session,
        label,
        "pytest",
        "-c",
        str(config),
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
        *args,
        *session.posargs,
        env=env,
    )


def _install_from_folders(session: nox.Session, pkg: Package, *pip_args: str) -> None:
    """Install ``pkg`` with its test tools and the siblings it requires, all
    editable from their folders (``pip_args``, e.g. extra constraints, go first)."""
    editable = []
    for sib in sibling_closure(PACKAGES, pkg.name):
        editable += ["-e", str(PACKAGES[sib].path)]
    _pip_install(session, *pip_args, *editable, "-e", *_test_requirements(pkg, str(pkg.path)))


def _run_source_tests(
    session: nox.Session, pkg: Package, device: str, coverage: bool = False
) -> None:
    """Run ``pkg``'s tests from the repository root with ``ALF_TEST_DEVICE=device``.

    ``coverage``: measure branch coverage of the package's own ``src/`` (pytest-cov,
    which the caller installed) and fail below :data:`COVERAGE_FLOOR` percent.
    """
    session.chdir(ROOT)
    env = {"ALF_TEST_DEVICE": device}
    extra: tuple[str, ...] = ()
    if coverage:
        env["COVERAGE_FILE"] = str(Path(session.create_tmp()).resolve() / ".coverage")
        extra = (
            f"--cov={pkg.src}",
            "--cov-branch",
            "--cov-report=term-missing:skip-covered",
            f"--cov-fail-under={COVERAGE_FLOOR}",
        )
    _run_pytest(session, pkg, pkg.tests.relative_to(ROOT), ROOT / "pyproject.toml", env, extra)


@nox.session(allow_parallel=True)
@nox.parametrize(("python", "package", "torch", "version"), _test_matrix())
def tests(session: nox.Session, package: str, torch: str, version: str) -> None:
    """Run one package's suite with only the package, its declared dependencies and test tools.

    Siblings are installed from their folders (editable). ``torch``: ``cpu`` pins
    torch 2.13.0 (the local CPU wheel), ``cuda`` installs torch 2.13.0 from the
    PyTorch CUDA index and sets ALF_TEST_DEVICE=cuda (skipped where nvidia-smi finds
    no GPU), ``none`` is the flavour of torch-free packages and asserts torch is absent.
    ``version``: the CPython the venv is made with (skipped, with the places looked
    at, where no such interpreter is found). pytest runs under pytest-cov: branch
    coverage of the package's src/, failing below COVERAGE_FLOOR percent.
    """
    pkg = PACKAGES[package]
    if session.python is False:
        session.skip(_missing_python(version))
    if torch == "cuda":
        reason = _no_gpu_reason()
        if reason:
            session.skip(f"no CUDA GPU on this machine: {reason}")
        # Installed first, from the CUDA index; the later -c constraints.txt install keeps it.
        _pip_install(session, "--index-url", CUDA_INDEX, TORCH_PIN)
    _install_from_folders(session, pkg, "pytest-cov")
    _check_torch(session, pkg, torch)
    _run_source_tests(session, pkg, "cuda" if torch == "cuda" else "cpu", coverage=True)


def _third_party_requirements(pkg: Package) -> list[str]:
    """Declared third-party requirements of ``pkg``, its siblings and its test extra, less torch."""
    reqs: list[str] = []
    for name in [*sibling_closure(PACKAGES, pkg.name), pkg.name]:
        member = PACKAGES[name]
        declared = member.dependencies + (member.extras.get("test", []) if name == pkg.name else [])
        for req in declared:
            dist = requirement_name(req)
            if dist != "torch" and dist not in PACKAGES and req not in reqs:
                reqs.append(req)
    return reqs


@nox.session(venv_backend="virtualenv", venv_params=["--system-site-packages"], reuse_venv=False)
@nox.parametrize(
    "package", [nox.param(n, id=n, tags=[n]) for n, p in PACKAGES.items() if p.uses_torch]
)
def gpu(session: nox.Session, package: str) -> None:
    """One package's suite on CUDA with the torch the interpreter already has.

    For GPU machines whose image ships a CUDA build of torch (and that may reach
    no package index): the venv sees the interpreter's site-packages, the package
    and its siblings are installed ``--no-deps`` from their folders, and only the
    declared third-party requirements that are missing get installed; torch is
    never installed or replaced. ``ALF_WHEELHOUSE=DIR`` makes those installs
    offline, from the wheels in ``DIR``. Not in the default sessions.
    """
    pkg = PACKAGES[package]
    offline = []
    if os.environ.get("ALF_WHEELHOUSE"):
        offline = ["--no-index", "--find-links", os.environ["ALF_WHEELHOUSE"]]
    editable = []
    for name in [*sibling_closure(PACKAGES, package), package]:
        editable += ["-e", str(PACKAGES[name].path)]
    session.install("--disable-pip-version-check", "--no-deps", *editable)
    session.install("--disable-pip-version-check", *offline, *_third_party_requirements(pkg))
    reason = _no_gpu_reason()
    if reason:
        session.skip(f"no CUDA GPU on this machine: {reason}")
    _step(
        session, "torch check", "python", str(ROOT / "tools" / "check_torch.py"), pkg.name, "system"
    )
    _run_source_tests(session, pkg, "cuda")


def _build(session: nox.Session, pkg: Package, out: Path, sdist: bool = False) -> list[Path]:
    """Build ``pkg``'s wheel (and, with ``sdist``, its sdist first, then the wheel from
    that sdist) into ``out``, replacing older ones; return ``[wheel]`` or ``[wheel, sdist]``."""
    out.mkdir(parents=True, exist_ok=True)
    sdist_prefix = pkg.wheel_prefix
    for old in [*out.glob(f"{pkg.wheel_prefix}*.whl"), *out.glob(f"{sdist_prefix}*.tar.gz")]:
        old.unlink()
    if _uses_uv(session):
        kind = [] if sdist else ["--wheel"]
        session.run(
            "uv", "build", *kind, "--out-dir", str(out), str(pkg.path), silent=True, external=True
        )
    else:
        if sdist:
            _pip_install(session, "build")
            session.run("python", "-m", "build", "--outdir", str(out), str(pkg.path), silent=True)
        else:
            session.run(
                "python",
                "-m",
                "pip",
                "wheel",
                "--disable-pip-version-check",
                "--no-deps",
                "-c",
                str(CONSTRAINTS),
                "-w",
                str(out),
                str(pkg.path),
                silent=True,
            )
    wheels = sorted(out.glob(f"{pkg.wheel_prefix}*.whl"))
    sdists = sorted(out.glob(f"{sdist_prefix}*.tar.gz")) if sdist else []
    if len(wheels) != 1 or len(sdists) != (1 if sdist else 0):
        found = [p.name for p in wheels + sdists]
        session.error(
            f"expected one {pkg.name} wheel{' and sdist' if sdist else ''}, found {found}"
        )
    return wheels + sdists


def _check_archives(session: nox.Session, archives: list[Path]) -> None:
    """tools/check_wheels.py's rules over wheels (together) and sdists; fail on a problem."""
    problems = check_wheels([a for a in archives if a.suffix == ".whl"])
    for sdist in (a for a in archives if a.suffix != ".whl"):
        problems += check_sdist(sdist)
    if problems:
        session.error("archive check failed:\n  " + "\n  ".join(problems))
    session.log(
        "checked " + ", ".join(a.name for a in archives) + ": PEP 420 namespaces, LICENSE, "
        "py.typed on every module's path, no file shipped twice"
    )


def _build_all(session: nox.Session, names: list[str], out: Path) -> list[Path]:
    """Wheels and sdists of ``names`` into ``out``, checked together."""
    archives = [a for n in names for a in _build(session, PACKAGES[n], out, sdist=True)]
    _check_archives(
        session, sorted(out.glob("*.whl")) + [a for a in archives if a.suffix != ".whl"]
    )
    return archives


@nox.session(reuse_venv=False, allow_parallel=True)
@nox.parametrize("package", [nox.param(name, id=name, tags=[name]) for name in PACKAGES])
def isolated(session: nox.Session, package: str) -> None:
    """Build the wheel, install it alone in a fresh venv, import every module, run the suite.

    Only the declared dependencies are installed; sibling packages come from
    wheels built here. pytest runs from a temporary folder holding a copy of the
    tests, so the source tree cannot leak in.
    """
    pkg = PACKAGES[package]
    tmp = Path(session.create_tmp()).resolve()
    wheel_dir = tmp / "wheels"
    shutil.rmtree(wheel_dir, ignore_errors=True)
    sibling_wheels = [
        _build(session, PACKAGES[s], wheel_dir)[0] for s in sibling_closure(PACKAGES, package)
    ]
    [wheel] = _build(session, pkg, wheel_dir)
    _check_archives(session, [*sibling_wheels, wheel])
    _pip_install(session, *map(str, sibling_wheels), *_test_requirements(pkg, str(wheel)))
    _check_torch(session, pkg, "cpu" if pkg.uses_torch else "none")

    run_dir = tmp / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    session.chdir(run_dir)
    modules = shipped_modules(wheel)
    _step(
        session, "importing every module", "python", str(ROOT / "tools" / "import_all.py"), *modules
    )
    if pkg.tests.is_dir():
        shutil.copytree(pkg.tests, run_dir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", run_dir / "pyproject.toml")
    _run_pytest(session, pkg, Path("tests"), run_dir / "pyproject.toml", {"ALF_TEST_DEVICE": "cpu"})


@nox.session(reuse_venv=False, allow_parallel=True)
@nox.parametrize("package", [nox.param(name, id=name, tags=[name]) for name in PACKAGES])
def lowest(session: nox.Session, package: str) -> None:
    """Run the suite with every third-party dependency at the lowest version declared.

    The floors of the package and its siblings (``tools/floors.py``) become a second
    constraints file, so ``numpy>=1.23.2`` installs numpy 1.23.2. torch is the one
    exception: it stays at the local 2.13.0 CPU build of constraints.txt, because
    older builds are not available on this machine without multi-GB CUDA downloads.
    Test tools (the ``test`` extra) come at their newest versions.
    """
    pkg = PACKAGES[package]
    try:
        pins = floor_pins(PACKAGES, package, exclude=("torch",))
    except FloorError as exc:
        session.error(str(exc))
    tmp = Path(session.create_tmp()).resolve()
    floors_file = tmp / "floors.txt"
    floors_file.write_text("".join(f"{dist}=={version}\n" for dist, version in pins.items()))
    session.log("floors: " + (", ".join(f"{d}=={v}" for d, v in pins.items()) or "none"))
    _install_from_folders(session, pkg, "-c", str(floors_file))
    _check_torch(session, pkg, "cpu" if pkg.uses_torch else "none")
    _run_source_tests(session, pkg, "cpu")


@nox.session(allow_parallel=True)
def lint(session: nox.Session) -> None:
    """ruff, the dependency/namespace check and the tools' own tests (``-- NAME`` limits to packages).

    Every step runs even when an earlier one fails; the session fails if any did.
    """
    # check_api's rule 4 imports the public modules: every package is installed.
    editable = [arg for pkg in PACKAGES.values() for arg in ("-e", str(pkg.path))]
    _pip_install(session, "ruff", "pytest", "packaging", *editable)
    names = list(session.posargs)
    unknown = [n for n in names if n not in PACKAGES]
    if unknown:
        session.error(f"unknown package(s) {unknown}; known: {list(PACKAGES)}")
    paths = [str(PACKAGES[n].path) for n in names] or ["."]
    steps = [
        ("ruff", ["ruff", "check", *paths]),
        ("check_deps", ["python", "tools/check_deps.py", *names]),
        ("check_api", ["python", "tools/check_api.py", *names]),
    ]
    if not names:
        RESULTS.mkdir(parents=True, exist_ok=True)
        junit = RESULTS / f"{results_name(session.name)}.xml"
        pytest_args = ["-p", "no:cacheprovider", f"--junitxml={junit}", "-o", "junit_family=xunit2"]
        steps.append(("tools tests", ["pytest", *pytest_args, "tools/tests"]))
    failed = []
    for label, cmd in steps:
        try:
            session.run(*cmd)
        except nox.command.CommandFailed:
            failed.append(label)
    if failed:
        session.error(f"{', '.join(failed)} failed (see above)")


# What examples/ needs besides the packages: the environments (with pygame, CartPole's
# renderer) and the progress bars.
EXAMPLE_REQUIREMENTS = ["gymnasium[classic-control]>=1.0", "tqdm>=4.60"]
DEMO_SCRIPT = Path("examples") / "ppo_cartpole" / "ppo_demo.py"


def _install_examples(session: nox.Session, *extra: str) -> None:
    """The six packages from their folders (alf-train-utils with its ``video`` extra,
    the MP4 encoder), the example requirements and ``extra``."""
    folders = []
    for pkg in PACKAGES.values():
        target = f"{pkg.path}[video]" if pkg.name == "alf-train-utils" else str(pkg.path)
        folders += ["-e", target]
    _pip_install(session, *folders, *EXAMPLE_REQUIREMENTS, *extra)


@nox.session(reuse_venv=True)
def demo(session: nox.Session) -> None:
    """Train PPO on CartPole-v1 with every package (3 seeds, plot, video in runs/demo).

    The newcomer's first command: 3 seeds in parallel, TensorBoard logs and checkpoints
    under runs/demo, runs/demo/return.png, an MP4 of the trained policy. Arguments after ``--`` go to the script
    (``nox -s demo -- --seeds 0 --total-steps 20000``); a rerun resumes unfinished seeds
    and keeps finished ones (``-- --restart`` trains again). The venv is kept between runs.
    Not part of CI (``examples`` tests the same code on a short configuration).
    """
    start = time.perf_counter()
    _install_examples(session)
    setup = time.perf_counter() - start
    session.chdir(ROOT)
    start = time.perf_counter()
    # one torch thread per process: the seeds train in parallel processes
    _step(
        session, "demo", "python", str(DEMO_SCRIPT), *session.posargs, env={"OMP_NUM_THREADS": "1"}
    )
    session.log(
        f"installs {setup:.0f} s, demo script {time.perf_counter() - start:.0f} s "
        "(the script's own split is printed above)"
    )


@nox.session(allow_parallel=True)
def examples(session: nox.Session) -> None:
    """The tests of examples/ (``pytest examples/``), with what the demo installs.

    A short configuration of the demo's code, its artifacts, resuming after SIGKILL,
    data-parallel runs, bad input.
    Arguments after ``--`` go to pytest.
    """
    _install_examples(session, "pytest")
    session.chdir(ROOT)
    _pytest_with_report(
        session, "examples tests", ROOT / "pyproject.toml", ["examples"], {"OMP_NUM_THREADS": "1"}
    )


@nox.session
def build(session: nox.Session) -> None:
    """Build every package's sdist and wheel into dist/, check them, ``twine check`` them.

    ``-- NAME ...`` builds some packages only (the check still covers every wheel in
    dist/). dist/ is then the wheelhouse of the README's install commands.
    """
    names = list(session.posargs) or list(PACKAGES)
    unknown = [n for n in names if n not in PACKAGES]
    if unknown:
        session.error(f"unknown package(s) {unknown}; known: {list(PACKAGES)}")
    _pip_install(session, "twine")
    archives = _build_all(session, names, DIST)
    _step(session, "twine check", "twine", "check", "--strict", *map(str, archives))
    session.log("dist/: " + ", ".join(a.name for a in archives))


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install_command(name: str) -> list[str]:
    """The README's command that installs package ``name`` (and the siblings it requires)
    from the wheelhouse ``dist/`` that ``nox -s build`` makes; run from the repository root."""
    return ["pip", "install", "-c", "constraints.txt", "--find-links", "dist", name]


def _subset_install(session: nox.Session, venv: Path, names: list[str]) -> None:
    """Run the README's install command for ``names`` into ``venv``, from the repository root.

    With ``ALF_SUBSET_INSTALLER=pip`` it is run literally by the venv's pip; by default
    the same arguments go to uv's pip interface (``uv pip install --python VENV ...``),
    which hard-links torch from uv's cache instead of unpacking it into every venv.
    """
    args = install_command(names[0])[1:-1] + names
    session.chdir(ROOT)
    if os.environ.get("ALF_SUBSET_INSTALLER", "uv") == "pip":
        session.run(str(_venv_python(venv)), "-m", "pip", *args, external=True)
    else:
        session.run(
            "uv",
            "pip",
            *args[:1],
            "--python",
            str(_venv_python(venv)),
            *_uv_find_links(),
            *args[1:],
            external=True,
        )


def _make_venv(session: nox.Session, venv: Path, python: str) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    if os.environ.get("ALF_SUBSET_INSTALLER", "uv") == "pip":
        session.run(python, "-m", "venv", str(venv), external=True, silent=True)
    else:
        session.run("uv", "venv", "--python", python, str(venv), external=True, silent=True)


@nox.session(reuse_venv=False, allow_parallel=True)
def subset(session: nox.Session) -> None:
    """Each package installed alone from the wheelhouse, by the README's one command.

    Builds dist/ as ``nox -s build`` does, then for every package: a fresh venv, the
    documented ``pip install -c constraints.txt --find-links dist NAME`` (see
    ``_subset_install`` for the installer), every module of the package and of its
    siblings imported from site-packages, and no sibling installed that it does not
    require. Last, every package in one venv, uninstalled one by one (dependents
    first): after each uninstall, every remaining distribution still has every file
    its RECORD lists and a py.typed marker on the path of each of its modules.
    """
    if not shutil.which("uv") and os.environ.get("ALF_SUBSET_INSTALLER", "uv") != "pip":
        session.error("uv is not on PATH (pip install uv, or set ALF_SUBSET_INSTALLER=pip)")
    archives = _build_all(session, list(PACKAGES), DIST)
    wheels = {
        n: w
        for n in PACKAGES
        for w in archives
        if w.name.startswith(PACKAGES[n].wheel_prefix) and w.suffix == ".whl"
    }
    tmp = Path(session.create_tmp()).resolve()
    check = str(ROOT / "tools" / "check_install.py")
    known = ["--known", *PACKAGES]
    for name, pkg in PACKAGES.items():
        version = "3.11" if "3.11" in pkg.test_pythons else pkg.test_pythons[0]
        python = PYTHONS.get(version) or find_python(version)
        if python is None:
            session.error(_missing_python(version))
        venv = tmp / f"venv-{name}"
        _make_venv(session, venv, python)
        session.log(f"{name}: " + " ".join(install_command(name)))
        _subset_install(session, venv, [name])
        expected = [*sibling_closure(PACKAGES, name), name]
        modules = [m for n in expected for m in shipped_modules(wheels[n])]
        session.chdir(tmp)
        _step(
            session,
            f"{name} installed alone",
            str(_venv_python(venv)),
            check,
            *known,
            "--expect",
            *expected,
            "--import",
            *modules,
            external=True,
        )
        shutil.rmtree(venv, ignore_errors=True)
    venv = tmp / "venv-all"
    python = PYTHONS.get("3.11") or find_python("3.11")
    if python is None:
        session.error(_missing_python("3.11"))
    _make_venv(session, venv, python)
    _subset_install(session, venv, list(PACKAGES))
    remaining = list(PACKAGES)
    for name in reversed(list(PACKAGES)):
        session.chdir(ROOT)
        if os.environ.get("ALF_SUBSET_INSTALLER", "uv") == "pip":
            session.run(
                str(_venv_python(venv)), "-m", "pip", "uninstall", "-y", name, external=True
            )
        else:
            session.run(
                "uv", "pip", "uninstall", "--python", str(_venv_python(venv)), name, external=True
            )
        remaining.remove(name)
        session.chdir(tmp)
        _step(
            session,
            f"after uninstalling {name}",
            str(_venv_python(venv)),
            check,
            *known,
            "--expect",
            *remaining,
            external=True,
        )
    shutil.rmtree(venv, ignore_errors=True)


@nox.session(allow_parallel=True)
def typecheck(session: nox.Session) -> None:
    """mypy over every package's src/ (configured in the root pyproject.toml).

    Every package is installed (editable, with its dependencies) so that mypy sees
    torch, numpy and matplotlib's own annotations; MYPYPATH lists each src/ folder so
    the shared ``alf`` namespace resolves across packages.
    """
    editable = [arg for pkg in PACKAGES.values() for arg in ("-e", str(pkg.path))]
    _pip_install(session, "mypy", *editable)
    session.chdir(ROOT)
    env = {"MYPYPATH": os.pathsep.join(str(p.src) for p in PACKAGES.values())}
    cache = str(Path(session.create_tmp()).resolve() / "mypy_cache")
    _step(
        session,
        "mypy",
        "mypy",
        "--cache-dir",
        cache,
        *(str(p.src.relative_to(ROOT)) for p in PACKAGES.values()),
        env=env,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Install every package and benchmarks/requirements.txt, run benchmarks/bench_*.py.

    ``nox -s bench -- bench_plot_read --runs 5``: arguments naming a benchmark select
    it, the others are passed to every selected script. Not part of CI.
    """
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    stems = {s.stem for s in scripts}
    wanted = [a for a in session.posargs if Path(a).stem in stems]
    script_args = [a for a in session.posargs if Path(a).stem not in stems]
    if wanted:
        scripts = [s for s in scripts if s.stem in {Path(a).stem for a in wanted}]
    if not scripts:
        session.error("no benchmarks/bench_*.py to run")
    _pip_install(
        session,
        "-r",
        str(ROOT / "benchmarks" / "requirements.txt"),
        *(str(p.path) for p in PACKAGES.values()),
    )
    session.chdir(ROOT)
    for script in scripts:
        session.log(f"--- {script.name}")
        session.run("python", str(script.relative_to(ROOT)), *script_args)
