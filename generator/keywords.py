"""The keyword a SOP class UID should have: the one ``lint`` advises (SG203, and the hint of a
keyword ``generate`` refuses) and ``audit`` holds a page to (SG402).

pynetdicom's ``sop_class`` constants are the runtime that users of the generated modules import
beside them, so pynetdicom's keyword is the one to use, even where it differs from pydicom's
(``ColorPaletteInformationModelFind``); pydicom's registry answers for a UID pynetdicom does not
know. Both commands asking here is what keeps following lint's advice from ever causing an audit
finding.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from pydicom._uid_dict import UID_dictionary


class Keyword(NamedTuple):
    """A keyword for a UID, and whose it is (``pynetdicom`` or ``pydicom``), for messages."""

    name: str
    source: str


@functools.cache
def pynetdicom_keywords() -> dict[str, str]:
    """UID → keyword of every SOP class constant ``pynetdicom.sop_class`` defines. Imported
    here, when first asked, so reading a page that needs no advice never loads pynetdicom."""
    from pynetdicom import sop_class

    return {
        str(value): name
        for name, value in vars(sop_class).items()
        if isinstance(value, sop_class.SOPClass)
    }


def expected_keyword(uid: str) -> Keyword | None:
    """pynetdicom's keyword for ``uid``, else pydicom's, else None when neither knows it."""
    known = pynetdicom_keywords().get(uid)
    if known:
        return Keyword(known, "pynetdicom")
    entry = UID_dictionary.get(uid)
    return Keyword(entry[4], "pydicom") if entry and entry[4] else None
