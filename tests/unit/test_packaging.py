"""The package as pip installs it: the built-in themes travel inside it, and the explorer finds them there."""

from __future__ import annotations

import tomllib
from pathlib import Path

from sdtui._build import BuildWithThemes, copy_themes
from sdtui.config import BUILTIN_THEMES, builtin_themes, load_themes

ROOT = Path(__file__).resolve().parents[2]


def test_the_build_copies_every_theme_into_the_package(tmp_path: Path) -> None:
    package = tmp_path / "build" / "sdtui"
    written = copy_themes(ROOT / "themes", package)
    assert sorted(p.name for p in written) == sorted(p.name for p in (ROOT / "themes").glob("*.toml"))
    assert "sdtui-dark" in {t.name for t in load_themes(builtin_themes(package))}


def test_pyproject_builds_with_the_hook_that_ships_the_themes() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    module, _, name = setuptools["cmdclass"]["build_py"].rpartition(".")
    assert (module, name) == (BuildWithThemes.__module__, BuildWithThemes.__name__)


def test_an_installed_package_uses_its_own_themes_and_a_checkout_the_top_level_ones(tmp_path: Path) -> None:
    installed = tmp_path / "site-packages" / "sdtui"
    (installed / "themes").mkdir(parents=True)
    assert builtin_themes(installed) == installed / "themes"
    checkout = tmp_path / "checkout" / "sdtui"
    checkout.mkdir(parents=True)
    assert builtin_themes(checkout) == tmp_path / "checkout" / "themes"
    assert (BUILTIN_THEMES / "dark.toml").is_file()  # a checkout: the top-level folder
