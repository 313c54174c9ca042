"""The base of every configuration section: unknown keys are refused, values are frozen, and a
value must already be of its setting's type: `hold_frames = "5"` or `mask_scale = true` is a
mistake to report, not to guess at (a bool is an int to Python, and "5" parses as one). A whole
number is still a number where a float is expected (`fps = 30`). NaN and infinity are refused:
every bound below would let NaN through, since it compares false with everything."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
