"""Jersey numbers as canonical strings: "0".."99" and "00".

"00" is a real jersey number distinct from "0", so numbers are strings, never ints.
"""

from __future__ import annotations

import re

_WRAPPERS = " \t\r\n\"'`"
_DIGITS = re.compile(r"[0-9]{1,2}")


def normalise_number(raw: str | int | None) -> str | None:
    """Canonical form of a jersey number, or None when ``raw`` is not one.

    Accepted: one or two ASCII digits, optionally wrapped in whitespace or quotes, with
    at most one leading ``#`` and trailing dots (``"#23."`` -> ``"23"``). A leading zero
    is dropped (``"07"`` -> ``"7"``) except in ``"00"``, which stays ``"00"``. Ints in
    0..99 are accepted too (``7`` -> ``"7"``; an int cannot express ``"00"``).
    Anything else (words, three digits, signs, decimals, non-ASCII digits) is None.

    Args:
        raw: a reader's answer, a roster key, or None.

    Returns:
        "0".."99", "00", or None.
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw) if 0 <= raw <= 99 else None
    if not isinstance(raw, str):
        return None
    text = raw.strip(_WRAPPERS)
    if text.startswith("#"):
        text = text[1:].lstrip()
    text = text.rstrip(".").rstrip()
    if not _DIGITS.fullmatch(text):
        return None
    if text == "00":
        return text
    return str(int(text))
