from __future__ import annotations

import pytest

from hoopray.numbers import normalise_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", "0"),
        ("00", "00"),
        ("000", None),
        ("7", "7"),
        ("07", "7"),
        ("23", "23"),
        ("99", "99"),
        ("100", None),
        ("007", None),
        ("#23", "23"),
        ("# 23", "23"),
        ("23.", "23"),
        ("#23.", "23"),
        ("23..", "23"),
        ("#00", "00"),
        ("#07", "7"),
        (" 23 ", "23"),
        ("23\n", "23"),
        ('"23"', "23"),
        ("'5'", "5"),
        ("##23", None),
        ("#", None),
        (".", None),
        ("23.0", None),
        ("2.3", None),
        ("2 3", None),
        ("-1", None),
        ("+5", None),
        ("1e1", None),
        ("twenty-three", None),
        ("twenty three", None),
        ("No. 23", None),
        ("23a", None),
        ("a23", None),
        ("0x1f", None),
        ("２３", None),
        ("٢٣", None),
        (0, "0"),
        (7, "7"),
        (99, "99"),
        (100, None),
        (-1, None),
        (True, None),
        (23.0, None),
        (["23"], None),
    ],
)
def test_normalise_number(raw: object, expected: str | None) -> None:
    assert normalise_number(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("number", [str(n) for n in range(100)] + ["00"])
def test_canonical_numbers_are_fixed_points(number: str) -> None:
    assert normalise_number(number) == number
    assert normalise_number(f"#{number}.") == number
