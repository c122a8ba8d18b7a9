"""The user's settings: key bindings (every key rebindable), the theme, and the theme files.

The config file is TOML, by default `$XDG_CONFIG_HOME/sdtui/config.toml`:

    theme = "sdtui-light"

    [keys]              # binding id = keys, comma separated (see `?` for the ids)
    cursor_down = "down,j,ctrl+n"
    copy_to_other = "f5,c"

Theme files are TOML too: `themes/*.toml` of this project, then `$XDG_CONFIG_HOME/sdtui/themes/*.toml`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.theme import Theme

from sdcore.errors import SdError

DEFAULT_THEME = "sdtui-dark"
"""The theme used when the config names none."""

BUILTIN_THEMES = Path(__file__).resolve().parent.parent / "themes"
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
