"""tools/release.py: version bumps, CHANGELOG dating, sibling range warnings."""

from __future__ import annotations

import pytest
import release

CHANGELOG = """\
# Changelog

## Unreleased

- Faster ring buffer.

## 0.1.0 - 2026-11-25

- First release.
"""


@pytest.mark.parametrize(
    ("part", "expected"), [("major", "1.0.0"), ("minor", "0.3.0"), ("patch", "0.2.5")]
)
def test_bump_version(part, expected):
    assert release.bump_version("0.2.4", part) == expected


def test_bump_version_rejects_bad_input():
    with pytest.raises(release.ReleaseError, match="MAJOR.MINOR.PATCH; got '1.0'"):
        release.bump_version("1.0", "patch")
    with pytest.raises(release.ReleaseError, match="part must be one of"):
        release.bump_version("1.0.0", "micro")


def test_set_project_version_touches_only_the_project_table():
    text = '[tool.x]\nversion = "9.9.9"\n\n[project]\nname = "a"\nversion = "0.1.0"  # keep\n\n[tool.y]\nversion = "1"\n'
    new, old = release.set_project_version(text, "0.2.0")
    assert old == "0.1.0"
    assert new == text.replace('version = "0.1.0"', 'version = "0.2.0"')


def test_set_project_version_without_version_line():
    with pytest.raises(release.ReleaseError, match="no version"):
        release.set_project_version('[project]\nname = "a"\n', "1.0.0")


def test_changelog_unreleased_section_is_dated():
    new = release.date_changelog(CHANGELOG, "0.2.0", "2026-12-01")
    assert "## 0.2.0 - 2026-12-01\n\n- Faster ring buffer." in new
    assert "Unreleased" not in new
    assert new.endswith("## 0.1.0 - 2026-11-25\n\n- First release.\n")


def test_changelog_without_unreleased_gets_a_new_section_on_top():
    text = "# Changelog\n\n## 0.1.0 - 2026-11-25\n\n- First release.\n"
    new = release.date_changelog(text, "0.1.1", "2026-12-01")
    assert new.index("## 0.1.1 - 2026-12-01") < new.index("## 0.1.0")
    assert "Version bump only" in new


def test_changelog_refuses_a_duplicate_version():
    with pytest.raises(release.ReleaseError, match="already has a section for 0.1.0"):
        release.date_changelog(CHANGELOG, "0.1.0", "2026-12-01")


def test_release_end_to_end_and_sibling_warning(repo):
    math = repo.package("alf-math", ["torch"])
    (math / "CHANGELOG.md").write_text(CHANGELOG)
    repo.package("alf-dist", ["alf-math>=0.1,<0.2"])
    assert (
        release.main(["alf-math", "minor", "--date", "2026-12-01", "--root", str(repo.root)]) == 0
    )
    assert 'version = "0.2.0"' in (math / "pyproject.toml").read_text()
    assert "## 0.2.0 - 2026-12-01" in (math / "CHANGELOG.md").read_text()
    lines = release.release(repo.root, "alf-math", "patch", "2026-12-02", dry_run=True)
    assert lines[0] == "alf-math: 0.2.0 -> 0.2.1 (2026-12-02)"
    assert any("alf-dist requires 'alf-math>=0.1,<0.2', which excludes 0.2.1" in x for x in lines)
    assert 'version = "0.2.0"' in (math / "pyproject.toml").read_text()  # dry run wrote nothing


def test_release_errors_leave_files_alone(repo, capsys):
    math = repo.package("alf-math", ["torch"])
    before = (math / "pyproject.toml").read_text()
    assert release.main(["alf-math", "patch", "--root", str(repo.root)]) == 1
    assert "CHANGELOG.md does not exist" in capsys.readouterr().err
    (math / "CHANGELOG.md").write_text(CHANGELOG)
    assert (
        release.main(["alf-math", "patch", "--date", "01/12/2026", "--root", str(repo.root)]) == 1
    )
    assert "date must be YYYY-MM-DD" in capsys.readouterr().err
    assert release.main(["nope", "patch", "--root", str(repo.root)]) == 1
    assert (math / "pyproject.toml").read_text() == before


def test_release_points_at_the_build_of_the_artifacts(repo):
    math = repo.package("alf-math", ["torch>=2.3"])
    (math / "CHANGELOG.md").write_text(CHANGELOG)
    lines = release.release(repo.root, "alf-math", "patch", "2026-12-03")
    assert lines[-1].startswith("next: nox -s build -- alf-math (sdist and wheel into dist/")
    # the bump keeps the release metadata the dependency check guards
    import check_deps

    found, _ = check_deps.check(repo.root)
    assert not [p for p in found if "LICENSE" in p or "classifier" in p or "requires-python" in p]
