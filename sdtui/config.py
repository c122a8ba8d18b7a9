"""The user's settings: key bindings (every key rebindable), the theme, and the theme files.

The config file is TOML, by default `$XDG_CONFIG_HOME/sdtui/config.toml`:

    theme = "sdtui-light"

    [keys]              # binding id = keys, comma separated (see `?` for the ids)
    cursor_down = "down,j,ctrl+n"
    copy_to_other = "f5,c"

Theme files are TOML too: `themes/*.toml` of this project, then `$XDG_CONFIG_HOME/sdtui/themes/*.toml`.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.theme import Theme

from sdcore.errors import SdError

DEFAULT_THEME = "sdtui-dark"
"""The theme used when the config names none."""


def builtin_themes(package: Path) -> Path:
    """Where the themes that ship with sdtui are: inside the installed package (the wheel puts them there), else
    at the top of the source checkout the package runs from."""
    inside = package / "themes"
    return inside if inside.is_dir() else package.parent / "themes"


BUILTIN_THEMES = builtin_themes(Path(__file__).resolve().parent)
"""The theme files that ship with sdtui."""

_THEME_FIELDS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)


class ConfigError(SdError):
    """The config or a theme file cannot be used; the message names the file and the fix."""


def config_dir() -> Path:
    """Where the user's config lives."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "sdtui"


@dataclass
class Config:
    """Settings read from the config file."""

    theme: str = DEFAULT_THEME
    """Name of the theme to start with."""
    keys: dict[str, str] = field(default_factory=dict)
    """Binding id -> keys (comma separated), overriding the defaults."""
    path: Path | None = None
    """The file this came from, if any."""


def load_config(path: Path | None = None) -> Config:
    """Read the config file (a missing default file is an empty config; a missing named file is an error)."""
    explicit = path is not None
    path = path or config_dir() / "config.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such config file") from None
        return Config()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc}); fix or remove it") from None
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise ConfigError(f'{path}: [keys] must map binding ids to strings, like cursor_down = "down,j"')
    theme = data.get("theme", DEFAULT_THEME)
    if not isinstance(theme, str):
        raise ConfigError(f"{path}: theme must be a theme name")
    return Config(theme=theme, keys=dict(keys), path=path)


def save_theme(name: str, path: Path | None = None) -> Path:
    """Remember `name` as the theme to start with, in the config file (made when there is none).

    Only the top-level `theme = ...` line is written (added at the top when missing); the rest of the file stays
    as the user wrote it. Returns the file written.
    """
    path = path or config_dir() / "config.toml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config to save the theme ({exc.strerror or exc})") from None
    setting = f"theme = {json.dumps(name)}"  # a JSON string of a theme name is a TOML basic string
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("["):  # top-level keys end where the first table starts
            lines.insert(0, setting)
            break
        if re.match(r"\s*theme\s*=", line):
            lines[i] = setting
            break
    else:
        lines.insert(0, setting)
    new = "\n".join(lines) + "\n"
    try:
        if tomllib.loads(new).get("theme") != name:
            raise ValueError
    except (tomllib.TOMLDecodeError, ValueError):
        raise ConfigError(f"{path}: cannot save the theme without breaking the file; set theme = {json.dumps(name)} there") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(new)
        os.replace(temp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot save the theme ({exc.strerror or exc})") from None
    return path


def config_problems(config: Config, themes: set[str], binding_ids: set[str]) -> list[str]:
    """What in the config names a theme or an action that does not exist, one clear line each."""
    where = str(config.path) if config.path is not None else "config"
    problems = []
    if config.theme not in themes:
        known = ", ".join(sorted(t for t in themes if t.startswith("sdtui-")))
        problems.append(f"{where}: no theme named {config.theme!r}; using {DEFAULT_THEME} (themes: {known}, …)")
    for action in sorted(set(config.keys) - binding_ids):
        problems.append(f"{where}: [keys] {action} is no action; ? lists the action ids (e.g. cursor_down)")
    return problems


def theme_from_file(path: Path) -> Theme:
    """A Textual theme from a TOML file: a name, colours, `dark`, and optional `[variables]`."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the theme ({exc})") from None
    if "name" not in data or "primary" not in data:
        raise ConfigError(f"{path}: a theme needs at least `name` and `primary`")
    colours = {k: data[k] for k in _THEME_FIELDS if k in data}
    return Theme(
        name=data["name"],
        dark=bool(data.get("dark", True)),
        variables=dict(data.get("variables", {})),
        **colours,
    )


def load_themes(*dirs: Path) -> list[Theme]:
    """Every theme file in `dirs` (default: the built-in themes, then the user's), in name order per dir."""
    found: list[Theme] = []
    for directory in dirs or (BUILTIN_THEMES, config_dir() / "themes"):
        if directory.is_dir():
            found.extend(theme_from_file(p) for p in sorted(directory.glob("*.toml")))
    return found
