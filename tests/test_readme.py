"""The README documents every configuration variable."""

from __future__ import annotations

from marketlake.settings import REPO_ROOT, Settings


def test_readme_lists_every_setting_variable() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [f"MARKETLAKE_{name.upper()}" for name in Settings.model_fields if f"MARKETLAKE_{name.upper()}" not in readme]
    assert not missing, f"README.md does not document {missing}"


def test_readme_quick_start_is_the_two_commands() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    assert [line.split()[0:2] for line in quick_start.strip().splitlines()] == [["make", "run"], ["make", "test"]]
