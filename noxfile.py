"""Nox sessions of the alf-utils monorepo: tests, isolated wheel installs, lint, the
examples, build, bench, and the demo.

The package table is read from ``packages/*/pyproject.toml`` (see
``tools/workspace.py``); every per-package session is generated from it.

    nox -s demo                           train PPO on CartPole with every package (runs/demo)
    nox -s tests isolated lowest lint examples   what CI runs (.ci/run)
    nox -s "tests(alf-math-cpu)"          one package, one torch flavour
    nox -s "isolated(alf-dist)"           one package's wheel, installed alone
    nox -s "lowest(alf-plot)"             one package with its dependencies at their floors
    nox -t alf-math                       tests and isolated of one package (-t cpu: all cpu tests)
    nox -s lint -- alf-math               ruff + dependency check for one package
    nox -s examples                       the tests of examples/ (pytest examples/)
    nox -s build                          every wheel into dist/ (-- NAME ... for some)
    nox -s bench -- bench_buffers         benchmarks (not part of CI)

Add ``-r`` to reuse the test virtualenvs between runs (``isolated`` always starts
from a fresh one). Every pip install passes ``-c constraints.txt``, which pins
torch to the local CPU build; the ``cuda`` flavour alone installs torch from the
PyTorch CUDA index, and only on a machine where ``nvidia-smi`` lists a GPU.
Arguments after ``--`` go to pytest in ``tests`` and ``isolated``.
"""

from __future__ import annotations

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

from check_wheels import check_wheels, shipped_modules  # noqa: E402
from floors import FloorError, floor_pins  # noqa: E402
from workspace import (  # noqa: E402
    DEFAULT_TEST_REQUIREMENTS,
    Package,
    discover_packages,
    requirement_name,
    sibling_closure,
)

CONSTRAINTS = ROOT / "constraints.txt"
RESULTS = ROOT / ".nox" / "_results"
TORCH_PIN = "torch==2.13.0"
CUDA_INDEX = os.environ.get("ALF_TORCH_CUDA_INDEX", "https://download.pytorch.org/whl/cu126")

PACKAGES: dict[str, Package] = discover_packages(ROOT)

nox.options.sessions = ["tests", "isolated", "lowest", "lint", "examples"]
nox.options.error_on_external_run = True
# uv creates the venvs and installs into them, hard-linking every file from its
# cache: torch is unpacked once on disk instead of once per session. Without uv
# on PATH, nox falls back to virtualenv + pip (slower, one torch copy per venv).
nox.options.default_venv_backend = "uv|virtualenv"
if os.environ.get("ALF_NOX_REPORT"):
    nox.options.report = os.environ["ALF_NOX_REPORT"]


def _test_matrix() -> list:
    """(package, torch flavour) pairs: cpu and cuda for torch packages, none for the others."""
    params = []
    for pkg in PACKAGES.values():
        for flavour in ("cpu", "cuda") if pkg.uses_torch else ("none",):
            params.append(
                nox.param(pkg.name, flavour, id=f"{pkg.name}-{flavour}", tags=[pkg.name, flavour])
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


def _pip_find_links() -> list[str]:
    """The ``find-links`` locations of the machine's pip configuration.

    uv does not read pip's configuration; on a machine whose pip finds the torch
    wheel in a local folder (``pip config``: ``global.find-links``), uv is pointed
    there too, so it installs that wheel instead of downloading another build.
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
        return []
    links: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.rsplit(".", 1)[-1] == "find-links":
            for item in value.strip().strip("'\"").split():
                if item not in links:
                    links.append(item)
    return links


FIND_LINKS = _pip_find_links()


def _uses_uv(session: nox.Session) -> bool:
    return getattr(session.virtualenv, "venv_backend", "") == "uv"


def _pip_install(session: nox.Session, *args: str) -> None:
    """Install into the session's venv with ``-c constraints.txt`` (uv or pip)."""
    if _uses_uv(session):
        links = [arg for loc in FIND_LINKS for arg in ("--find-links", loc)]
        session.install(*links, "-c", str(CONSTRAINTS), *args)
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
    session: nox.Session, pkg: Package, tests: Path, config: Path, env: dict[str, str]
) -> None:
    """Run ``tests`` with pytest in one process, writing a JUnit report for .ci/run.

    ``config`` is the root pyproject.toml (or a copy of it): its [tool.pytest.ini_options]
    sets ``--import-mode=importlib`` and the rootdir is its folder.
    """
    if not list(tests.rglob("test_*.py")) and not list(tests.rglob("*_test.py")):
        session.error(f"{pkg.name} has no tests: {pkg.tests.relative_to(ROOT)}/test_*.py not found")
    RESULTS.mkdir(parents=True, exist_ok=True)
    junit = RESULTS / f"{results_name(session.name)}.xml"
    junit.unlink(missing_ok=True)
    # Exit status 5 (nothing collected) fails the session like any other non-zero status.
    _step(
        session,
        "tests",
        "pytest",
        "-c",
        str(config),
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
        str(tests),
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


def _run_source_tests(session: nox.Session, pkg: Package, device: str) -> None:
    """Run ``pkg``'s tests from the repository root with ``ALF_TEST_DEVICE=device``."""
    session.chdir(ROOT)
    _run_pytest(
        session,
        pkg,
        pkg.tests.relative_to(ROOT),
        ROOT / "pyproject.toml",
        {"ALF_TEST_DEVICE": device},
    )


@nox.session
@nox.parametrize(("package", "torch"), _test_matrix())
def tests(session: nox.Session, package: str, torch: str) -> None:
    """Run one package's suite with only the package, its declared dependencies and test tools.

    Siblings are installed from their folders (editable). ``torch``: ``cpu`` pins
    torch 2.13.0 (the local CPU wheel), ``cuda`` installs torch 2.13.0 from the
    PyTorch CUDA index and sets ALF_TEST_DEVICE=cuda (skipped where nvidia-smi finds
    no GPU), ``none`` is the flavour of torch-free packages and asserts torch is absent.
    """
    pkg = PACKAGES[package]
    if torch == "cuda":
        reason = _no_gpu_reason()
        if reason:
            session.skip(f"no CUDA GPU on this machine: {reason}")
        # Installed first, from the CUDA index; the later -c constraints.txt install keeps it.
        _pip_install(session, "--index-url", CUDA_INDEX, TORCH_PIN)
    _install_from_folders(session, pkg)
    _check_torch(session, pkg, torch)
    _run_source_tests(session, pkg, "cuda" if torch == "cuda" else "cpu")


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


def _build_wheel(session: nox.Session, pkg: Package, out: Path) -> Path:
    """Build ``pkg``'s wheel into ``out`` (replacing older ones) and check its namespaces."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{pkg.wheel_prefix}*.whl"):
        old.unlink()
    if _uses_uv(session):
        session.run(
            "uv",
            "build",
            "--wheel",
            "--out-dir",
            str(out),
            str(pkg.path),
            silent=True,
            external=True,
        )
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
    if len(wheels) != 1:
        session.error(f"expected one {pkg.name} wheel in {out}, found {[w.name for w in wheels]}")
    problems = check_wheels(wheels)
    if problems:
        session.error("wheel check failed:\n  " + "\n  ".join(problems))
    session.log(f"built {wheels[0].name}: namespaces are PEP 420, py.typed shipped")
    return wheels[0]


@nox.session(reuse_venv=False)
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
        str(_build_wheel(session, PACKAGES[s], wheel_dir))
        for s in sibling_closure(PACKAGES, package)
    ]
    wheel = _build_wheel(session, pkg, wheel_dir)
    _pip_install(session, *sibling_wheels, *_test_requirements(pkg, str(wheel)))
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


@nox.session(reuse_venv=False)
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


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, the dependency/namespace check and the tools' own tests (``-- NAME`` limits to packages).

    Every step runs even when an earlier one fails; the session fails if any did.
    """
    _pip_install(session, "ruff", "pytest", "packaging")
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


@nox.session
def examples(session: nox.Session) -> None:
    """The tests of examples/ (``pytest examples/``), with what the demo installs.

    A short configuration of the demo's code, its artifacts, resuming after SIGKILL,
    data-parallel runs, bad input.
    Arguments after ``--`` go to pytest.
    """
    _install_examples(session, "pytest")
    session.chdir(ROOT)
    RESULTS.mkdir(parents=True, exist_ok=True)
    junit = RESULTS / f"{results_name(session.name)}.xml"
    junit.unlink(missing_ok=True)
    _step(
        session,
        "examples tests",
        "pytest",
        "-c",
        str(ROOT / "pyproject.toml"),
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
        "examples",
        *session.posargs,
        env={"OMP_NUM_THREADS": "1"},
    )


@nox.session
def build(session: nox.Session) -> None:
    """Build wheels into dist/ and check them (``-- NAME ...`` for some packages only)."""
    names = list(session.posargs) or list(PACKAGES)
    unknown = [n for n in names if n not in PACKAGES]
    if unknown:
        session.error(f"unknown package(s) {unknown}; known: {list(PACKAGES)}")
    dist = ROOT / "dist"
    wheels = [_build_wheel(session, PACKAGES[n], dist) for n in names]
    problems = check_wheels(sorted(dist.glob("*.whl")))
    if problems:
        session.error("wheels in dist/ conflict:\n  " + "\n  ".join(problems))
    session.log("dist/: " + ", ".join(w.name for w in wheels))


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
