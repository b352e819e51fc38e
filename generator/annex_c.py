"""PS3.7 Annex C: the class of every status code, as data.

One table serves ``lint`` (a row whose category contradicts its code's class) and the generated
runtime's ``annex_c_category``: it is the runtime's own ``ANNEX_C_CLASSES``, read from there, so
the two can never disagree.
"""

from __future__ import annotations

from generator.model import Category
from generator.runtime._runtime import ANNEX_C_CLASSES

ANNEX_C: tuple[tuple[int, int, Category], ...] = tuple(
    (first, last, Category(category)) for first, last, category in ANNEX_C_CLASSES
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
