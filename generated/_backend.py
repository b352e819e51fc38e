"""Reference storage backend shipped with the generated pynetdicom service modules.

The generated handlers need only four operations (find, retrieve, destination lookup and
store), so this module provides a small folder-backed implementation of them together with
the Key Attribute matching rules of DICOM PS3.4 C.2.2.2.  It imports nothing but pydicom and
the standard library so the generated package stays importable (and testable) without
pynetdicom, and so a real archive can replace it without touching generated code.

Choices made where the standard leaves room:

* Single Value Matching is exact and case-sensitive for every VR, PN included (PS3.4 leaves
  PN matching implementation-defined).  Spaces that PS3.5 declares insignificant (leading and
  trailing for AE, AS, CS, DA, DS, DT, IS, LO, PN, SH, TM; trailing for LT, ST, UC, UR, UT;
  trailing NUL or space for UI) are ignored on both sides.
* A multi-valued attribute (other than UI) matches when the key matches any one of its
  values or its whole backslash-joined value, so both "PRIMARY" and "ORIGINAL\\PRIMARY\\*"
  match ImageType "ORIGINAL\\PRIMARY\\AXIAL".  A multi-valued key is matched as one joined
  string, except DA/TM/DT keys, which match if any of their values does.
* Binary and numeric VRs (including DS and IS, compared as numbers) use plain equality.
* DA, TM and DT values may be partial (e.g. TM "10" or DT "2024").  Each value stands for
  the interval it denotes; an instance value is compared by its start (missing components
  padded with zeros, i.e. HHMMSS.FFFFFF).  A single-value key matches equal starts; a range
  key matches starts from the lower bound's start up to the end of the upper bound's
  interval, so "1000-1015" includes 10:15:59.9.  Ranges with lower > upper (e.g. across
  midnight) match nothing.  Legacy "HH:MM:SS" and "YYYY.MM.DD" forms are accepted.
* DT offsets (&ZZXX) are honoured when both sides carry one; otherwise wall-clock values are
  compared.  TimezoneOffsetFromUTC is not applied, and DA/TM pairs are not combined into one
  datetime (that needs Extended Negotiation).
* An SQ key with no Items, or with one Item whose keys are all universal, is universal.  An
  SQ key with more than one Item is invalid (PS3.4 allows exactly one) and raises ValueError.
* Empty Value Matching (a key of two QUOTATION MARKs) is not supported.
"""

import copy
import functools
import os
import re
import struct
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

__all__ = [
    "FolderBackend",
    "is_universal",
    "matches",
    "temporal_matches",
    "wildcard_matches",
]

_SPECIFIC_CHARACTER_SET = 0x00080005
_QUERY_RETRIEVE_LEVEL = 0x00080052
_SOP_INSTANCE_UID = 0x00080018

# PS3.4 C.2.2.2.4 lists exactly these VRs as eligible for Wild Card Matching.
_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
# PS3.5 6.2: leading and trailing spaces are insignificant for these ...
_STRIP_BOTH_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM"})
# ... and only trailing spaces for these, where leading spaces carry meaning.
_STRIP_TRAILING_VRS = frozenset({"LT", "ST", "UC", "UR", "UT"})
# DS and IS are strings on the wire but are matched as the numbers pydicom decodes them to.
_STRING_VRS = (_WILDCARD_VRS | _STRIP_BOTH_VRS | {"UI"}) - {"DS", "IS"}
_TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})

_DA_RE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TM_RE = re.compile(r"(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?")
_DT_RE = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?"
)
# TM values carry no date; anchoring them to one day lets all three VRs share datetime logic.
_TM_DAY = datetime(2000, 1, 1)
_ONE_US = timedelta(microseconds=1)

_Interval = tuple[datetime, datetime]

# What pydicom raises on unreadable or corrupt input; caught so one bad file is just skipped.
_READ_ERRORS = (
    InvalidDicomError,
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    NotImplementedError,
    struct.error,
)


def _is_ignored(tag: BaseTag) -> bool:
    """Tell whether an Identifier element is never a matching or return key (C.2.2.2)."""
    return (
        tag.group in (0x0000, 0x0002)
        or tag.element == 0x0000
        or tag in (_SPECIFIC_CHARACTER_SET, _QUERY_RETRIEVE_LEVEL)
    )


def _keys(identifier: Dataset) -> list[DataElement]:
    """Return the elements of an Identifier that act as matching or return keys."""
    return [element for element in identifier if not _is_ignored(element.tag)]


def _raw_values(value: Any) -> list[Any]:
    """Flatten an element value into a list so single and multiple values share one path."""
    if value is None:
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return list(value)
    if isinstance(value, (str, bytes)) and not value:
        return []
    return [value]


def _normalize(vr: str, value: Any) -> str:
    """Render one string value as text, dropping the padding PS3.5 calls insignificant."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if vr == "UI":
        return text.rstrip("\x00 ")
    if vr in _STRIP_BOTH_VRS:
        return text.strip(" ")
    if vr in _STRIP_TRAILING_VRS:
        return text.rstrip(" ")
    return text


def _texts(vr: str, element: DataElement) -> list[str]:
    """Return the normalized string values of an element."""
    return [_normalize(vr, value) for value in _raw_values(element.value)]


def _vr(key: DataElement, target: DataElement) -> str:
    """Pick the VR to match with; ambiguous dictionary VRs ("US or SS") defer to the instance."""
    return str(target.VR) if " or " in key.VR else str(key.VR)


def _sole_item(key: DataElement) -> Dataset | None:
    """Return the Item of an SQ key, None when it has none, and reject several (C.2.2.2.6)."""
    items = list(key.value or [])
    if len(items) > 1:
        raise ValueError(f"sequence key {key.tag} must hold at most one Item, not {len(items)}")
    return items[0] if items else None


def is_universal(key: DataElement) -> bool:
    """Tell whether a key matches every entity, even one lacking the attribute (C.2.2.2.3).

    That is a zero-length value, a lone "*" for wildcard VRs (C.2.2.2.4 Note), an SQ with no
    Items, or an SQ whose single Item holds only universal keys.
    """
    if key.VR == "SQ":
        item = _sole_item(key)
        return item is None or all(is_universal(sub_key) for sub_key in _keys(item))
    values = _raw_values(key.value)
    if key.VR in _STRING_VRS:
        texts = [_normalize(str(key.VR), value) for value in values]
        if not any(texts):
            return True
        return key.VR in _WILDCARD_VRS and texts == ["*"]
    return not values


@functools.lru_cache(maxsize=256)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """Translate a DICOM wildcard pattern once; queries repeat it for every instance."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.DOTALL)


def wildcard_matches(pattern: str, value: str) -> bool:
    """Match ``value`` against ``pattern``: "*" is any run of characters, "?" exactly one."""
    return _wildcard_regex(pattern).fullmatch(value) is not None


def _interval(vr: str, text: str) -> _Interval | None:
    """Return the first and last instant a (possibly partial) DA/TM/DT value denotes."""
    if vr == "DA":
        return _da_interval(text.replace(".", ""))
    if vr == "TM":
        return _tm_interval(text.replace(":", ""))
    return _dt_interval(text)


def _da_interval(text: str) -> _Interval | None:
    """Interval of a DA value: the whole day."""
    found = _DA_RE.fullmatch(text)
    if found is None:
        return None
    try:
        start = datetime(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None
    return start, _end_of(start, timedelta(days=1))


def _tm_interval(text: str) -> _Interval | None:
    """Interval of a TM value: e.g. "1015" spans 10:15:00 to 10:15:59.999999."""
    found = _TM_RE.fullmatch(text)
    if found is None:
        return None
    hour, minute, second, fraction = found.groups()
    # A leap second "60" is clamped: it still sorts after every other second of that minute.
    numbers = [int(hour), int(minute or 0), min(int(second or 0), 59)]
    if numbers[0] > 23 or numbers[1] > 59:
        return None
    micro = int((fraction or "").ljust(6, "0"))
    start = _TM_DAY.replace(hour=numbers[0], minute=numbers[1], second=numbers[2])
    start += timedelta(microseconds=micro)
    return start, _end_of(start, _precision(hour, minute, second, fraction))


def _dt_interval(text: str) -> _Interval | None:
    """Interval of a DT value, timezone-aware when the value carries a UTC offset."""
    found = _DT_RE.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = found.groups()
    tz = None
    if sign is not None:
        # Real offsets lie within -12:00..+14:00; rejecting others keeps "2023-2024" a range.
        if int(off_h) > 14 or int(off_m) > 59:
            return None
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(-offset if sign == "-" else offset)
    try:
        start = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            min(int(second or 0), 59),
            int((fraction or "").ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None
    if month is None:
        return start, _next_year_end(start)
    if day is None:
        return start, _next_month_end(start)
    return start, _end_of(start, _precision(hour, minute, second, fraction))


def _precision(
    hour: str | None, minute: str | None, second: str | None, fraction: str | None
) -> timedelta:
    """The span the least significant component given stands for: "10" is an hour, "1015" a
    minute, "101500.5" a tenth of a second; a DT with no time is a day."""
    if fraction is not None:
        return timedelta(microseconds=10 ** (6 - len(fraction)))
    if second is not None:
        return timedelta(seconds=1)
    if minute is not None:
        return timedelta(minutes=1)
    if hour is not None:
        return timedelta(hours=1)
    return timedelta(days=1)


def _end_of(start: datetime, step: timedelta) -> datetime:
    """Last microsecond before ``start + step``, saturating at the end of representable time."""
    try:
        return start + step - _ONE_US
    except OverflowError:
        return datetime.max.replace(tzinfo=start.tzinfo)


def _next_year_end(start: datetime) -> datetime:
    """Last microsecond of the year ``start`` lies in."""
    if start.year == datetime.max.year:
        return datetime.max.replace(tzinfo=start.tzinfo)
    return start.replace(year=start.year + 1) - _ONE_US


def _next_month_end(start: datetime) -> datetime:
    """Last microsecond of the month ``start`` lies in."""
    if start.month == 12:
        return _next_year_end(start)
    return start.replace(month=start.month + 1) - _ONE_US


def _not_after(first: datetime, second: datetime) -> bool:
    """Compare instants; if only one side knows its UTC offset, compare wall-clock times."""
    if (first.tzinfo is None) != (second.tzinfo is None):
        return first.replace(tzinfo=None) <= second.replace(tzinfo=None)
    return first <= second


def _query_bounds(vr: str, query: str) -> tuple[datetime | None, datetime | None] | None:
    """Parse a DA/TM/DT key into inclusive bounds (None = open), or None if it is malformed.

    A whole-value parse is tried first because a DT may itself contain "-" as the sign of its
    UTC offset; only then is each "-" tried as the range separator.
    """
    single = _interval(vr, query)
    if single is not None:
        return single[0], single[0]
    for index, char in enumerate(query):
        if char != "-":
            continue
        low_text, high_text = query[:index].strip(), query[index + 1 :].strip()
        low = _interval(vr, low_text) if low_text else None
        high = _interval(vr, high_text) if high_text else None
        if (low is None and low_text) or (high is None and high_text):
            continue
        return (low[0] if low else None), (high[1] if high else None)
    return None


def temporal_matches(vr: str, query: str, value: str) -> bool:
    """Match one DA/TM/DT value against a single-value or range key (C.2.2.2.1, C.2.2.2.5).

    A key of just "-" is open on both sides and so matches any well-formed value.
    """
    bounds = _query_bounds(vr, query)
    interval = _interval(vr, value)
    if bounds is None or interval is None:
        return False
    low, high = bounds
    start = interval[0]
    return (low is None or _not_after(low, start)) and (high is None or _not_after(start, high))


def _string_matches(vr: str, key: DataElement, target: DataElement) -> bool:
    """Single Value or Wild Card Matching against each value and the joined value."""
    pattern = "\\".join(_texts(vr, key))
    values = _texts(vr, target)
    candidates = values + ["\\".join(values)] if len(values) > 1 else values
    if vr in _WILDCARD_VRS and ("*" in pattern or "?" in pattern):
        return any(wildcard_matches(pattern, candidate) for candidate in candidates)
    return pattern in candidates


def _uid_matches(key: DataElement, target: DataElement) -> bool:
    """List of UID Matching (C.2.2.2.2); a single UID is simply a list of one."""
    wanted = {uid for uid in _texts("UI", key) if uid}
    return any(uid in wanted for uid in _texts("UI", target))


def _temporal_element_matches(vr: str, key: DataElement, target: DataElement) -> bool:
    """Match DA/TM/DT: any key value against any instance value."""
    queries = [query for query in _texts(vr, key) if query]
    values = [value for value in _texts(vr, target) if value]
    return any(temporal_matches(vr, query, value) for query in queries for value in values)


def _value_matches(key: DataElement, target: DataElement) -> bool:
    """Equality for numeric, binary and AT values: the whole value, or one of several."""
    wanted = _raw_values(key.value)
    values = _raw_values(target.value)
    if wanted == values:
        return True
    return len(wanted) == 1 and any(bool(wanted[0] == value) for value in values)


def _sequence_matches(key: DataElement, target: DataElement) -> bool:
    """Sequence Matching (C.2.2.2.6): some Item of the instance matches the key's Item."""
    item = _sole_item(key)
    if item is None or target.VR != "SQ":
        return item is None
    return any(matches(candidate, item) for candidate in target.value)


def _element_matches(instance: Dataset, key: DataElement) -> bool:
    """Match one key against an instance, dispatching on the matching type its VR allows."""
    if is_universal(key):
        return True
    if key.tag not in instance:
        return False
    target = instance[key.tag]
    vr = _vr(key, target)
    if vr == "SQ":
        return _sequence_matches(key, target)
    if vr == "UI":
        return _uid_matches(key, target)
    if vr in _TEMPORAL_VRS:
        return _temporal_element_matches(vr, key, target)
    if vr in _STRING_VRS:
        return _string_matches(vr, key, target)
    return _value_matches(key, target)


def matches(instance: Dataset, identifier: Dataset) -> bool:
    """Tell whether ``instance`` satisfies every key of a query ``identifier`` (PS3.4 C.2.2.2).

    QueryRetrieveLevel, SpecificCharacterSet, group 0000/0002 elements and group lengths
    are not keys and are ignored.  Raises ValueError for an SQ key with several Items.
    """
    return all(_element_matches(instance, key) for key in _keys(identifier))


def _empty_element(tag: BaseTag, vr: str) -> DataElement:
    """An element with zero-length value, for a requested key the instance lacks."""
    vr = vr.split(" or ")[0]
    return DataElement(tag, vr, Sequence() if vr == "SQ" else None)


def _project(source: Dataset, identifier: Dataset) -> Dataset:
    """Copy the requested keys of ``source``; SQ keys with Item keys return matching Items only."""
    result = Dataset()
    for key in _keys(identifier):
        if key.tag not in source:
            result.add(_empty_element(key.tag, str(key.VR)))
            continue
        found = source[key.tag]
        item = _sole_item(key) if key.VR == "SQ" else None
        if item is None or not _keys(item) or found.VR != "SQ":
            result.add(copy.deepcopy(found))
            continue
        kept = [_project(candidate, item) for candidate in found.value if matches(candidate, item)]
        result.add(DataElement(key.tag, "SQ", Sequence(kept)))
    return result


def _response(instance: Dataset, identifier: Dataset) -> Dataset:
    """Build one C-FIND response Identifier; never empty, as pynetdicom drops empty ones."""
    result = _project(instance, identifier)
    if not _keys(identifier):
        if _SOP_INSTANCE_UID in instance:
            result.add(copy.deepcopy(instance[_SOP_INSTANCE_UID]))
        else:
            result.add(_empty_element(BaseTag(_SOP_INSTANCE_UID), "UI"))
    if _QUERY_RETRIEVE_LEVEL in identifier:
        result.add(copy.deepcopy(identifier[_QUERY_RETRIEVE_LEVEL]))
    # The response values come from the instance, so they must be encoded in its character set.
    if _SPECIFIC_CHARACTER_SET in instance:
        result.add(copy.deepcopy(instance[_SPECIFIC_CHARACTER_SET]))
    return result


def _sop_instance_uid(dataset: Dataset) -> str:
    """The normalized SOPInstanceUID of a dataset, or "" when it has none."""
    if _SOP_INSTANCE_UID not in dataset:
        return ""
    return "\\".join(_texts("UI", dataset[_SOP_INSTANCE_UID]))


def _files_under(folder: Path) -> list[Path]:
    """All regular files below ``folder``, sorted component-wise so load order is stable."""
    found: list[Path] = []
    for root, _dirs, names in os.walk(folder):
        found.extend(Path(root, name) for name in names)
    return sorted(found)


def _may_lack_preamble(path: Path) -> bool:
    """Cheap check that a file could be a bare dataset before paying for a forced parse.

    Such files start with the File Meta group (0002) or, without it, with group 0008, which
    every composite instance has (SOPClassUID), in either byte order.
    """
    with path.open("rb") as stream:
        head = stream.read(8)
    if len(head) < 8:
        return False
    return head[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x08")


def _read_instance(path: Path) -> Dataset | None:
    """Read one composite instance, or None for anything else.

    Unreadable, corrupt and non-instance files (such as DICOMDIR, which has no
    SOPInstanceUID) are rejected rather than raised so one bad file cannot stop the server.
    Every element is decoded here so a corrupt value fails now, not during a later query.
    """
    try:
        dataset: Dataset = dcmread(path, force=False)
    except InvalidDicomError:
        try:
            if not _may_lack_preamble(path):
                return None
            dataset = dcmread(path, force=True)
        except _READ_ERRORS:
            return None
    except _READ_ERRORS:
        return None
    try:
        for _element in dataset.iterall():
            pass
        uid = _sop_instance_uid(dataset)
    except _READ_ERRORS:
        return None
    return dataset if uid else None


class FolderBackend:
    """In-memory archive loaded from a folder of DICOM files.

    Meant as a reference and for tests: everything is held in memory and C-STORE only adds
    to memory.  ``instances`` keeps load order (sorted by path) so results are reproducible;
    change it through ``store`` so the SOPInstanceUID index stays right.  A lock guards
    updates because pynetdicom serves each association in its own thread.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        destinations: Mapping[str, tuple[str, int]] | None = None,
    ) -> None:
        """Load every instance under ``folder``; count files that are not ones in ``skipped``.

        ``destinations`` maps C-MOVE destination AE titles to (host, port).  A missing folder
        raises NotADirectoryError rather than silently serving an empty archive.
        """
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise NotADirectoryError(f"not a folder: {self.folder}")
        self.instances: list[Dataset] = []
        self.skipped = 0
        self._positions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._destinations = {
            title.strip(): (host, port) for title, (host, port) in (destinations or {}).items()
        }
        for path in _files_under(self.folder):
            dataset = _read_instance(path)
            if dataset is None:
                self.skipped += 1
            else:
                self._put(dataset, _sop_instance_uid(dataset))

    def _put(self, dataset: Dataset, uid: str) -> None:
        """Replace the instance with the same UID in place, or append a new one."""
        index = self._positions.get(uid)
        if (
            index is not None
            and index < len(self.instances)
            and _sop_instance_uid(self.instances[index]) == uid
        ):
            self.instances[index] = dataset
        else:
            self._positions[uid] = len(self.instances)
            self.instances.append(dataset)

    def _snapshot(self) -> list[Dataset]:
        """Copy the instance list so a concurrent store cannot disturb an ongoing query."""
        with self._lock:
            return list(self.instances)

    def find(self, identifier: Dataset) -> Iterator[Dataset]:
        """Yield one C-FIND response Identifier per matching instance, in load order.

        Each holds only the requested keys (empty when the instance lacks one), plus the
        Identifier's QueryRetrieveLevel and the instance's SpecificCharacterSet; with no
        keys requested it holds SOPInstanceUID so it is never empty.
        """
        for instance in self._snapshot():
            if matches(instance, identifier):
                yield _response(instance, identifier)

    def retrieve(self, identifier: Dataset) -> list[Dataset]:
        """Return the matching instances themselves (not copies) for C-GET and C-MOVE."""
        return [instance for instance in self._snapshot() if matches(instance, identifier)]

    def destination(self, ae_title: str) -> tuple[str, int] | None:
        """Return (host, port) of a known C-MOVE destination; AE title padding is ignored."""
        return self._destinations.get(ae_title.strip())

    def store(self, dataset: Dataset) -> None:
        """Keep ``dataset`` in memory, replacing any instance with the same SOPInstanceUID.

        Raises ValueError when it has no SOPInstanceUID, since such a dataset is no instance.
        """
        uid = _sop_instance_uid(dataset)
        if not uid:
            raise ValueError("cannot store a dataset without SOPInstanceUID")
        with self._lock:
            self._put(dataset, uid)
