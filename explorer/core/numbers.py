"""Numbers in the readings, written one way: two significant digits, plain ("0.52", "12",
"1,200") between 0.01 and 10,000 and as a power of ten ("3.5×10⁵", "2.0×10⁻⁵") outside it, the
way the log axes of the charts write them."""

from __future__ import annotations

import math

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def magnitude(value: float) -> str:
    """`value` to two significant digits: "0.52", "12", "1,200", "3.5×10⁵", "2.0×10⁻⁵"."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 0.01 <= abs(value) < 10_000:
        return f"{float(f'{value:.2g}'):,g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}×10{str(int(exponent)).translate(_SUPERSCRIPT)}"
