"""A validation error as a person would say it: "must be at most 0.6", "unknown setting
`mask_scal` (did you mean `mask_scale`?)", not pydantic's "Input should be less than or equal
to" or "Extra inputs are not permitted". The dotted location stays, so the line number and the
key can be found."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

_BOUNDS = {
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
}
_KINDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number, not nan or inf",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string in quotes",
    "tuple_type": "a list, e.g. [1, 4]",
    "model_type": "a [section] of settings",
    "dict_type": "a [section] of settings",
}


class KeyedProblem(ValueError):
    """A model validator's problem with one of its settings (or another section's): `loc`, the
    key's path from the section that raised it (from the root with `absolute`), so that the
    problem is reported on that key's line rather than the section's."""

    def __init__(self, loc: tuple[str, ...], message: str, *, absolute: bool = False) -> None:
        super().__init__(message)
        self.loc, self.absolute = loc, absolute


def located(error: ErrorDetails) -> tuple[Any, ...]:
    """`error`'s location, down to the key a `KeyedProblem` names."""
    loc = tuple(error["loc"])
    problem = (error.get("ctx") or {}).get("error")
    if isinstance(problem, KeyedProblem):
        return problem.loc if problem.absolute else loc + problem.loc
    return loc


def _fields_at(root: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The setting names of the section that holds `loc`'s last key (none without a root)."""
    model: Any = root
    for key in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(key)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def plain(error: ErrorDetails, root: type[BaseModel] | None = None) -> str:
    """`error`'s message in plain words (the location is not included); `root`, the model the
    error's location starts in, is where a misspelt name's suggestion comes from."""
    kind, ctx = error["type"], error.get("ctx") or {}
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        close = difflib.get_close_matches(name, _fields_at(root, loc), n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        what = "section" if isinstance(error.get("input"), dict) else "setting"
        return f"unknown {what} `{name}`{hint}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}"
    if kind == "missing":
        return "missing (a list needs all its values)"
    if kind in ("too_short", "too_long"):
        return error["msg"].replace("Value should have", "needs").replace("Tuple", "the list")
    # Our own validators' messages are already written for people ("Value error, ...").
    return error["msg"].removeprefix("Value error, ")


def first_problem(exc: ValidationError, root: type[BaseModel] | None = None) -> str:
    """The first validation error as one line: `dotted.location: message` in plain words."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in located(first))}: {plain(first, root)}"
