"""PS3.7 Annex C: the class of every status code, as data.

One table serves ``lint`` (a row whose category contradicts its code's class) and the generated
runtime's ``annex_c_category`` (rendered from it), so the two can never disagree.
"""

from __future__ import annotations

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


def annex_c_class(code: int) -> Category | None:
    """The category PS3.7 Annex C gives ``code``, or ``None`` for a code of no class there."""
    (found,) = annex_c_classes(code, code)
    return found


def annex_c_classes(first: int, last: int) -> set[Category | None]:
    """The classes of the codes ``first`` to ``last``, ``None`` among them when some code has no
    class: from the table's intervals, not code by code, so a wide range costs no more."""
    classes: set[Category | None] = set()
    covered = 0
    for start, end, category in ANNEX_C:
        low, high = max(first, start), min(last, end)
        if low <= high:
            classes.add(category)
            covered += high - low + 1
    if covered < last - first + 1:
        classes.add(None)
    return classes
