"""Build hook: the wheel carries the top-level themes/ inside the package, as sdtui/themes/."""

from __future__ import annotations

from pathlib import Path

from setuptools.command.build_py import build_py


def copy_themes(source: Path, package: Path) -> list[Path]:
    """Copy the theme files of `source` into `package`/themes; the files written."""
    target = package / "themes"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for theme in sorted(source.glob("*.toml")):
        (target / theme.name).write_bytes(theme.read_bytes())
        written.append(target / theme.name)
    return written


class BuildWithThemes(build_py):
    """setuptools' build_py, plus the themes (the layout keeps them at the top level, where pip leaves them out)."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install finds them in the checkout
            copy_themes(Path("themes"), Path(self.build_lib) / "sdtui")
