"""PS3.7 Annex C: the class of every status code, as data.

One table serves ``lint`` (a row whose category contradicts its code's class) and the generated
runtime's ``annex_c_category`` (rendered from it), so the two can never disagree.
"""

from __future__ import annotations

from bisect import bisect_right

from generator.model import Category

ANNEX_C: tuple[tuple[int, int, Category], ...] = (
    (0x0000, 0x0000, Category.SUCCESS),
    (0x0001, 0x0001, Category.WARNING),
    (0x0105, 0x0106, Category.FAILURE),
    (0x0107, 0x0107, Category.WARNING),
    (0x0110, 0x0115, Category.FAILURE),
    (0x0116, 0x0116, Category.WARNING),
    (0x0117, 0x0119, Category.FAILURE),
    (0x0120, 0x0124, Category.FAILURE),
    (0x0210, 0x0213, Category.FAILURE),
    (0xA000, 0xAFFF, Category.FAILURE),
    (0xB000, 0xBFFF, Category.WARNING),
    (0xC000, 0xCFFF, Category.FAILURE),
    (0xFE00, 0xFE00, Category.CANCEL),
    (0xFF00, 0xFF01, Category.PENDING),
)
"""(first, last, category) of each class of codes Annex C defines, in ascending order."""

_STARTS = tuple(first for first, _, _ in ANNEX_C)


def annex_c_class(code: int) -> Category | None:
    """The category PS3.7 Annex C gives ``code``, or ``None`` for a code of no class there."""
    index = bisect_right(_STARTS, code) - 1
    if index >= 0 and code <= ANNEX_C[index][1]:
        return ANNEX_C[index][2]
    return None
