"""Fixtures for the maintainer tools' tests: a throw-away monorepo built in tmp_path."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workspace import TORCH_FREE_PYTHONS, TORCH_PYTHONS  # noqa: E402

LICENSE_TEXT = "Apache License\nVersion 2.0, January 2004\n"


class FakeRepo:
    """Writes packages/<name>/ trees the way the real repository lays them out.

    A package gets complete release metadata (LICENSE, authors, URLs, classifiers,
    requires-python for the versions its tests run on) unless ``metadata=False``,
    and a ``py.typed`` marker at ``alf/`` when it requires no sibling (``py_typed``
    names another folder, or ``None`` for none).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.torch_users: set[str] = set()
        root.mkdir(parents=True, exist_ok=True)
        (root / "LICENSE").write_text(LICENSE_TEXT)

    def package(
        self,
        name: str,
        deps: list[str],
        modules: dict[str, str] | None = None,
        tests: dict[str, str] | None = None,
        extras: dict[str, list[str]] | None = None,
        version: str = "0.1.0",
        extra_toml: str = "",
        py_typed: str | None = "auto",
        metadata: bool = True,
    ) -> Path:
        path = self.root / "packages" / name
        (path / "src" / "alf").mkdir(parents=True, exist_ok=True)
        dep_names = [re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0] for d in deps]
        siblings = [d for d in dep_names if d.startswith("alf-")]
        if py_typed == "auto":
            py_typed = None if siblings else "alf"
        if py_typed is not None:
            (path / "src" / py_typed).mkdir(parents=True, exist_ok=True)
            (path / "src" / py_typed / "py.typed").write_text("")
        if "torch" in dep_names or any(s in self.torch_users for s in siblings):
            self.torch_users.add(name)
        meta_toml = ""
        if metadata:
            (path / "LICENSE").write_text(LICENSE_TEXT)
            pythons = TORCH_PYTHONS if name in self.torch_users else TORCH_FREE_PYTHONS
            classifiers = [
                "Development Status :: 3 - Alpha",
                *(f"Programming Language :: Python :: {v}" for v in pythons),
                "Typing :: Typed",
            ]
            meta_toml = (
                'license = "Apache-2.0"\n'
                'license-files = ["LICENSE"]\n'
                f'requires-python = ">={pythons[0]}"\n'
                'authors = [{ name = "The alf-utils developers" }]\n'
                "classifiers = [" + ", ".join(f'"{c}"' for c in classifiers) + "]\n"
            )
        extras_toml = ""
        if extras:
            extras_toml = "\n[project.optional-dependencies]\n" + "".join(
                f"{k} = {v!r}\n".replace("'", '"') for k, v in extras.items()
            )
        deps_toml = ", ".join(f'"{d}"' for d in deps)
        (path / "pyproject.toml").write_text(
            textwrap.dedent(
                f"""\
                [build-system]
                requires = ["poetry-core>=2.0"]
                build-backend = "poetry.core.masonry.api"

                [project]
                name = "{name}"
                version = "{version}"
                dependencies = [{deps_toml}]
                """
            )
            + meta_toml
            + (
                '\n[project.urls]\n"Reference implementation" = "https://example.org/ref"\n'
                if metadata
                else ""
            )
            + extras_toml
            + '\n[tool.poetry]\npackages = [{ include = "alf", from = "src" }]\n'
            + extra_toml
        )
        for rel, code in (modules or {}).items():
            self.write(path / "src" / rel, code)
        for rel, code in (tests or {}).items():
            self.write(path / "tests" / rel, code)
        return path

    @staticmethod
    def write(path: Path, code: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code))


@pytest.fixture
def repo(tmp_path: Path) -> FakeRepo:
    return FakeRepo(tmp_path)
