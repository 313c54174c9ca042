"""The base of every configuration section: unknown keys are refused, values are frozen, and a
value must already be of its setting's type: `hold_frames = "5"` or `mask_scale = true` is a
mistake to report, not to guess at (a bool is an int to Python, and "5" parses as one). A whole
number is still a number where a float is expected (`fps = 30`). NaN and infinity are refused:
every bound below would let NaN through, since it compares false with everything."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

# Control characters (a newline, an escape), invisible formatting (a right-to-left override) and
# line separators: a setting is printed in error lines and status output, where any of these
# could break the line or disguise what it says. No source, address or URL needs one.
_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp"}


def _printable(value: str) -> str:
    if any(unicodedata.category(c) in _UNPRINTABLE for c in value):
        raise ValueError("must not hold control or invisible characters (a newline, an escape)")
    return value


Text = Annotated[str, AfterValidator(_printable)]


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
