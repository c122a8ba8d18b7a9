"""Typer's checks of plain parameters (text, flags, whole numbers, decimals) without importing pydantic.

Typer (0.29) checks every parameter's value with a pydantic TypeAdapter: importing pydantic and building the adapters
costs more CPU than the rest of `sd ls` (issue 18). `sd` takes text, lists of text, flags, whole numbers and decimals; a value
that is plainly one of those (and within the option's min and max) is taken as is, and anything else (a malformed
number, one out of range, any other type) goes to typer's own check, so typer's messages are unchanged. Where typer
no longer has this hook, `install` leaves typer as it is: slower, never wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NUMBER = {int: re.compile(r"-?[0-9]{1,18}"), float: re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")}
_PLAIN = (str, bool, int, float, list[str])
_NOT_PLAIN = object()


def _plain(annotation: Any, low: float | None, high: float | None, value: Any) -> Any:
    """`value` as typer's check for `annotation` would return it, or _NOT_PLAIN when only that check can say."""
    if annotation is str:
        return value if type(value) is str else _NOT_PLAIN
    if annotation == list[str]:
        plain = isinstance(value, (list, tuple)) and all(type(item) is str for item in value)
        return list(value) if plain else _NOT_PLAIN
    if type(value) is str and annotation in _NUMBER and _NUMBER[annotation].fullmatch(value):
        value = annotation(value)
    if type(value) is not annotation or (low is not None and value < low):
        return _NOT_PLAIN
    return value if high is None or value <= high else _NOT_PLAIN


def install() -> bool:
    """Check the plain parameters of typer apps without pydantic; False if this typer has no such hook."""
    try:
        from typer import core
        from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    except ImportError:
        return False
    current = getattr(core, "build_runtime_param", None)
    if current is not build_runtime_param:  # installed already, or typer changed
        return getattr(current, "__module__", None) == __name__

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):  # type: ignore[misc]
        """A plain value checked here; typer's own check (built when first needed) for any other."""

        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            info = self.parameter_info
            plain = _plain(self.annotation, info.min, info.max, value)
            if plain is not _NOT_PLAIN:
                return plain
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def plain_or_typers(descriptor: TypeDescriptor) -> RuntimeParam:
        info = descriptor.parameter_info
        plain = descriptor.annotation in _PLAIN and descriptor.file_annotation is None
        if plain and info.parser is None and not info.clamp:
            return PlainRuntimeParam(info, descriptor.annotation, descriptor)
        return build_runtime_param(descriptor)

    plain_or_typers.__module__ = __name__
    core.build_runtime_param = plain_or_typers
    return True
