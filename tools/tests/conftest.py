"""Fixtures for the maintainer tools' tests: a throw-away monorepo built in tmp_path."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class FakeRepo:
    """Writes packages/<name>/ trees the way the real repository lays them out."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def package(
        self,
        name: str,
        deps: list[str],
        modules: dict[str, str] | None = None,
        tests: dict[str, str] | None = None,
        extras: dict[str, list[str]] | None = None,
        version: str = "0.1.0",
        extra_toml: str = "",
        py_typed: bool = True,
    ) -> Path:
        path = self.root / "packages" / name
        (path / "src" / "alf").mkdir(parents=True, exist_ok=True)
        if py_typed:
            (path / "src" / "alf" / "py.typed").write_text("")
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
