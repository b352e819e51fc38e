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
  SQ key with more than one Item is invalid (PS3.4 allows exactly one) and raises ValueError,
  as do Items nested more than 16 deep.
* Empty Value Matching (a key of two QUOTATION MARKs) is not supported.

Keys come from strangers on the network, so no key can make matching slow: an Identifier is
compiled once per query, not once per instance; wildcards run as a bit-parallel automaton that
never backtracks (cost linear in the key's length times the value's, and a value of impossible
length is rejected unread); and a DA/TM/DT key with more "-" than a range holds (one, or three
for DT, whose UTC offsets carry a sign) is malformed and matches nothing, unparsed.
"""

import contextlib
import copy
import io
import os
import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

__all__ = [
    "FolderBackend",
    "is_universal",
    "matches",
    "search",
    "select",
    "temporal_matches",
    "wildcard_matches",
    "with_transfer_syntax",
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
_Bounds = tuple[datetime | None, datetime | None]
"""A range key's inclusive bounds; None is an open end."""

_Test = Callable[[DataElement], bool]
"""A compiled key: applied to the instance's element of the same tag."""

_STAR_RUN = re.compile(r"\*{2,}")
# PS3.4's Information Models nest Sequence keys two or three deep; a bound keeps a hostile
# Identifier's compile time and recursion small.
_MAX_SEQUENCE_DEPTH = 16

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
    RecursionError,
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


def _sole_item(key: DataElement) -> Dataset | None:
    """Return the Item of an SQ key, None when it has none, and reject several (C.2.2.2.6)."""
    items = list(key.value or [])
    if len(items) > 1:
        raise ValueError(f"sequence key {key.tag} must hold at most one Item, not {len(items)}")
    return items[0] if items else None


def _bits(positions: Iterable[int], size: int) -> int:
    """An int with the bits at ``positions`` (all below ``size``) set, built in O(size)."""
    packed = bytearray(size // 8 + 1)
    for position in positions:
        packed[position >> 3] |= 1 << (position & 7)
    return int.from_bytes(packed, "little")


class _Wildcard:
    """A Wild Card Matching pattern run as a bit-parallel automaton, which never backtracks.

    Bit ``i`` of the state is set while the pattern's first ``i`` characters can have consumed
    the value read so far. Each value character updates every bit at once with a few integer
    operations, so a match costs O(len(value) * len(pattern) / word size) whatever the pattern.
    Runs of "*" collapse to one, and a value shorter than the pattern's other characters (or,
    without "*", of any other length) is rejected before it is read.
    """

    def __init__(self, pattern: str) -> None:
        pattern = _STAR_RUN.sub("*", pattern)
        self._minimum = len(pattern) - pattern.count("*")
        self._exact = "*" not in pattern
        positions: dict[str, list[int]] = {}
        for index, char in enumerate(pattern):
            positions.setdefault(char, []).append(index)
        self._size = len(pattern)
        self._stars = _bits(positions.pop("*", ()), self._size)
        self._any = _bits(positions.pop("?", ()), self._size)
        self._positions = positions
        self._masks: dict[str, int] = {}
        # A leading "*" may match nothing, so the state after it is live from the start.
        self._start = 1 | ((1 & self._stars) << 1)
        self._accept = 1 << self._size

    def _mask(self, char: str) -> int:
        """The states that consume ``char`` and move on: "?" and literal ``char``s. Built on first
        use, so a long pattern costs nothing for values the length check already rejected."""
        mask = self._masks.get(char)
        if mask is None:
            literal = self._positions.get(char)
            mask = (self._any | _bits(literal, self._size)) if literal else self._any
            self._masks[char] = mask
        return mask

    def matches(self, value: str) -> bool:
        """Tell whether the whole of ``value`` matches the pattern."""
        if len(value) < self._minimum or (self._exact and len(value) != self._minimum):
            return False
        stars, state = self._stars, self._start
        for char in value:
            # Literals and "?" that accept ``char`` advance; a "*" consumes it and stays.
            state = ((state & self._mask(char)) << 1) | (state & stars)
            # A "*" may also stop here, making the state after it live too.
            state |= (state & stars) << 1
            if not state:
                return False
        return bool(state & self._accept)


def wildcard_matches(pattern: str, value: str) -> bool:
    """Match ``value`` against ``pattern``: "*" is any run of characters, "?" exactly one.

    Never backtracks: the cost is linear in len(pattern) * len(value), whatever the pattern.
    """
    return _Wildcard(pattern).matches(value)


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


def _query_bounds(vr: str, query: str) -> _Bounds | None:
    """Parse a DA/TM/DT key into inclusive bounds (None = open), or None if it is malformed.

    A whole-value parse is tried first because a DT may itself contain "-" as the sign of its
    UTC offset; only then is each "-" tried as the range separator. A DA or TM range holds one
    "-" and a DT range at most three (the separator and each bound's offset sign), so a key with
    more is refused unparsed: the cost stays linear in the key's length.
    """
    if query.count("-") > (1 if vr in ("DA", "TM") else 3):
        return None
    single = _interval(vr, query)
    if single is not None:
        return single[0], single[0]
    index = query.find("-")
    while index >= 0:
        low_text, high_text = query[:index].strip(), query[index + 1 :].strip()
        low = _interval(vr, low_text) if low_text else None
        high = _interval(vr, high_text) if high_text else None
        if (low is not None or not low_text) and (high is not None or not high_text):
            return (low[0] if low else None), (high[1] if high else None)
        index = query.find("-", index + 1)
    return None


def _in_bounds(bounds: _Bounds, start: datetime) -> bool:
    """Tell whether an instance value starting at ``start`` lies within a key's bounds."""
    low, high = bounds
    return (low is None or _not_after(low, start)) and (high is None or _not_after(start, high))


def temporal_matches(vr: str, query: str, value: str) -> bool:
    """Match one DA/TM/DT value against a single-value or range key (C.2.2.2.1, C.2.2.2.5).

    A key of just "-" is open on both sides and so matches any well-formed value.
    """
    bounds = _query_bounds(vr, query)
    interval = _interval(vr, value)
    return bounds is not None and interval is not None and _in_bounds(bounds, interval[0])


def _candidates(vr: str, target: DataElement) -> list[str]:
    """The strings a key is matched against: each value and, if several, all of them joined."""
    values = _texts(vr, target)
    return values + ["\\".join(values)] if len(values) > 1 else values


def _string_test(vr: str, key: DataElement) -> _Test | None:
    """Single Value or Wild Card Matching against each value and the joined value."""
    texts = _texts(vr, key)
    if not any(texts):
        return None
    pattern = "\\".join(texts)
    if vr in _WILDCARD_VRS:
        if pattern == "*":
            return None
        if "*" in pattern or "?" in pattern:
            wildcard = _Wildcard(pattern)
            return lambda target: any(map(wildcard.matches, _candidates(vr, target)))
    return lambda target: pattern in _candidates(vr, target)


def _uid_test(key: DataElement) -> _Test | None:
    """List of UID Matching (C.2.2.2.2); a single UID is simply a list of one."""
    wanted = frozenset(uid for uid in _texts("UI", key) if uid)
    if not wanted:
        return None
    return lambda target: any(uid in wanted for uid in _texts("UI", target))


def _temporal_test(vr: str, key: DataElement) -> _Test | None:
    """DA/TM/DT matching: any key value against any instance value. Each distinct key value is
    parsed once per query; a malformed one matches nothing."""
    queries = dict.fromkeys(query for query in _texts(vr, key) if query)
    if not queries:
        return None
    ranges = [bounds for query in queries if (bounds := _query_bounds(vr, query)) is not None]

    def test(target: DataElement) -> bool:
        intervals = (_interval(vr, value) for value in _texts(vr, target) if value)
        starts = [interval[0] for interval in intervals if interval is not None]
        return any(_in_bounds(bounds, start) for bounds in ranges for start in starts)

    return test


def _value_test(key: DataElement) -> _Test | None:
    """Equality for numeric, binary and AT values: the whole value, or one of several."""
    wanted = _raw_values(key.value)
    if not wanted:
        return None

    def test(target: DataElement) -> bool:
        values = _raw_values(target.value)
        if wanted == values:
            return True
        return len(wanted) == 1 and any(bool(wanted[0] == value) for value in values)

    return test


def _element_test(key: DataElement) -> _Test | None:
    """Compile a non-SQ key into its test, None when it is universal. Ambiguous dictionary VRs
    ("US or SS", "OB or OW") are all binary, so they compare as values whatever the instance's."""
    vr = str(key.VR)
    if vr == "UI":
        return _uid_test(key)
    if vr in _TEMPORAL_VRS:
        return _temporal_test(vr, key)
    if vr in _STRING_VRS:
        return _string_test(vr, key)
    return _value_test(key)


class _Query:
    """An Identifier compiled once per query, so that each instance costs only reading its values.

    Keys are normalized, wildcard patterns and ranges parsed and universal keys dropped up front.
    Raises ValueError for an SQ key with several Items, or with Items nested more than
    ``_MAX_SEQUENCE_DEPTH`` deep.
    """

    def __init__(self, identifier: Dataset, depth: int = 0) -> None:
        if depth > _MAX_SEQUENCE_DEPTH:
            raise ValueError(f"sequence keys nest more than {_MAX_SEQUENCE_DEPTH} levels deep")
        self._identifier = identifier
        self.keys = _keys(identifier)
        self.tests: list[tuple[BaseTag, _Test]] = []
        self._items: dict[BaseTag, _Query] = {}
        for key in self.keys:
            test, item = _key_test(key, depth)
            if test is not None:
                self.tests.append((key.tag, test))
            if item is not None:
                self._items[key.tag] = item

    def __call__(self, instance: Dataset) -> bool:
        """Tell whether ``instance`` satisfies every key."""
        return all(tag in instance and test(instance[tag]) for tag, test in self.tests)

    def project(self, source: Dataset) -> Dataset:
        """Copy the requested keys of ``source``; SQ keys with Item keys return matching Items only."""
        result = Dataset()
        for key in self.keys:
            if key.tag not in source:
                result.add(_empty_element(key.tag, str(key.VR)))
                continue
            found = source[key.tag]
            item = self._items.get(key.tag)
            if item is None or not item.keys or found.VR != "SQ":
                result.add(copy.deepcopy(found))
                continue
            kept = [item.project(candidate) for candidate in found.value if item(candidate)]
            result.add(DataElement(key.tag, "SQ", Sequence(kept)))
        return result

    def response(self, instance: Dataset) -> Dataset:
        """Build one C-FIND response Identifier; never empty, as pynetdicom drops empty ones."""
        result = self.project(instance)
        if not self.keys:
            if _SOP_INSTANCE_UID in instance:
                result.add(copy.deepcopy(instance[_SOP_INSTANCE_UID]))
            else:
                result.add(_empty_element(BaseTag(_SOP_INSTANCE_UID), "UI"))
        if _QUERY_RETRIEVE_LEVEL in self._identifier:
            result.add(copy.deepcopy(self._identifier[_QUERY_RETRIEVE_LEVEL]))
        # The response values come from the instance, so they must be encoded in its character set.
        if _SPECIFIC_CHARACTER_SET in instance:
            result.add(copy.deepcopy(instance[_SPECIFIC_CHARACTER_SET]))
        return result


def _key_test(key: DataElement, depth: int) -> tuple[_Test | None, _Query | None]:
    """The test ``key`` applies to the instance's element (None: the key is universal) and, for
    an SQ key with an Item, that Item compiled one level deeper (Sequence Matching, C.2.2.2.6)."""
    if key.VR != "SQ":
        return _element_test(key), None
    item = _sole_item(key)
    if item is None:
        return None, None
    query = _Query(item, depth + 1)
    if not query.tests:
        return None, query

    def test(target: DataElement) -> bool:
        return target.VR == "SQ" and any(query(candidate) for candidate in target.value)

    return test, query


def is_universal(key: DataElement) -> bool:
    """Tell whether a key matches every entity, even one lacking the attribute (C.2.2.2.3).

    That is a zero-length value, a lone "*" for wildcard VRs (C.2.2.2.4 Note), an SQ with no
    Items, or an SQ whose single Item holds only universal keys.
    """
    return _key_test(key, 0)[0] is None


def matches(instance: Dataset, identifier: Dataset) -> bool:
    """Tell whether ``instance`` satisfies every key of a query ``identifier`` (PS3.4 C.2.2.2).

    QueryRetrieveLevel, SpecificCharacterSet, group 0000/0002 elements and group lengths
    are not keys and are ignored. Raises ValueError for an SQ key with several Items or with
    Items nested more than 16 deep. FolderBackend compiles an identifier once per query instead.
    """
    return _Query(identifier)(instance)


def search(instances: Iterable[Dataset], identifier: Dataset) -> Iterator[Dataset]:
    """Yield a C-FIND response Identifier per instance that matches ``identifier``, in order.

    Each holds only the requested keys (empty when the instance lacks one), plus the
    Identifier's QueryRetrieveLevel and the instance's SpecificCharacterSet; with no keys
    requested it holds SOPInstanceUID so it is never empty. The identifier is compiled once, so
    a backend of one's own gets the reference matching at the reference cost. A malformed
    Identifier raises ValueError (see :func:`matches`) before anything is yielded.
    """
    query = _Query(identifier)
    return (query.response(instance) for instance in instances if query(instance))


def select(instances: Iterable[Dataset], identifier: Dataset) -> list[Dataset]:
    """The instances themselves (not copies) that match a C-GET or C-MOVE ``identifier``:
    one SOPInstanceUID, a list of them, or any other keys, matched as :func:`matches` does."""
    query = _Query(identifier)
    return [instance for instance in instances if query(instance)]


def with_transfer_syntax(instance: Dataset) -> Dataset:
    """``instance`` if its File Meta names its Transfer Syntax, else a shallow copy whose File
    Meta names the one it was read in (Implicit VR Little Endian for one built in memory).

    Writing a file needs it, and so does pynetdicom's send_c_store, which picks the C-STORE
    presentation context from ``file_meta.TransferSyntaxUID`` and fails the sub-operation
    without it. The caller's object is left untouched.
    """
    meta = getattr(instance, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return instance
    implicit, little = instance.original_encoding
    if little is False:
        syntax = ExplicitVRBigEndian
    elif implicit is False:
        syntax = ExplicitVRLittleEndian
    else:
        syntax = ImplicitVRLittleEndian
    copy = Dataset(dict(instance.items()))
    copy.set_original_encoding(implicit, little)
    copy.file_meta = FileMetaDataset()
    copy.file_meta.TransferSyntaxUID = syntax
    return copy


def _empty_element(tag: BaseTag, vr: str) -> DataElement:
    """An element with zero-length value, for a requested key the instance lacks."""
    vr = vr.split(" or ")[0]
    return DataElement(tag, vr, Sequence() if vr == "SQ" else None)


def _sop_instance_uid(dataset: Dataset) -> str:
    """The normalized SOPInstanceUID of a dataset, or "" when it has none."""
    if _SOP_INSTANCE_UID not in dataset:
        return ""
    return "\\".join(_texts("UI", dataset[_SOP_INSTANCE_UID]))


_TEMPORARY = re.compile(r"\.servicegen-[0-9a-f]{16}\.tmp")
"""The name :func:`_write_durably` gives a file until it is complete: never read as an instance."""

_UID_TEXT = re.compile(r"[0-9]+(\.[0-9]+)*")


def _files_under(folder: Path) -> list[Path]:
    """All regular files below ``folder``, sorted component-wise so load order is stable;
    a store's unfinished temporary file (a crash mid-write) is left out."""
    found: list[Path] = []
    for root, _dirs, names in os.walk(folder):
        found.extend(Path(root, name) for name in names if not _TEMPORARY.fullmatch(name))
    return sorted(found)


def _write_durably(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` so that it is there whole after a crash or power loss, or the
    old file is: a temporary file beside it, written and fsynced, renamed over it, and the
    folder fsynced so the rename itself is on disk. The temporary name is refused if it
    exists and never followed if it is a link."""
    temporary = path.with_name(f".servicegen-{os.urandom(8).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, 0o644)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


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
    """An archive that is a folder of DICOM files, held in memory while it serves.

    Every instance under the folder is loaded at start-up; one received by C-STORE is written
    into the folder durably (see :meth:`store`) before it is kept, so a server started later on
    the same folder has it too. ``instances`` keeps load order (sorted by path, then stores) so
    results are reproducible; change it through ``store`` so the SOPInstanceUID index stays
    right. A lock guards updates because pynetdicom serves each association in its own thread.
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
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._destinations = {
            title.strip(): (host, port) for title, (host, port) in (destinations or {}).items()
        }
        for path in _files_under(self.folder):
            dataset = _read_instance(path)
            if dataset is None:
                self.skipped += 1
            else:
                uid = _sop_instance_uid(dataset)
                self._paths[uid] = path
                self._put(dataset, uid)

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
        """Yield one C-FIND response Identifier per matching instance, in load order
        (:func:`search`)."""
        return search(self._snapshot(), identifier)

    def retrieve(self, identifier: Dataset) -> list[Dataset]:
        """Return the matching instances themselves for C-GET and C-MOVE (:func:`select`)."""
        return select(self._snapshot(), identifier)

    def destination(self, ae_title: str) -> tuple[str, int] | None:
        """Return (host, port) of a known C-MOVE destination; AE title padding is ignored."""
        return self._destinations.get(ae_title.strip())

    def store(self, dataset: Dataset) -> None:
        """Write ``dataset`` into the folder, then keep it, replacing any instance with the
        same SOPInstanceUID (PS3.4 B.2.3 leaves a duplicate's handling to the SCP: the newer
        copy wins, in the file the older one came from).

        A new instance is written as ``<SOPInstanceUID>.dcm``, in the transfer syntax of its
        File Meta Information (a received instance's, as the peer sent it; else
        :func:`with_transfer_syntax`'s), through
        :func:`_write_durably`: when this returns, the file is on disk whole, and a crash at
        any moment leaves either the old file or the new one. Raises ValueError for a dataset
        without a SOPInstanceUID, or with one that is no UID (which could name a path), and
        OSError when the folder cannot be written; nothing is kept then.
        """
        uid = _sop_instance_uid(dataset)
        if not uid:
            raise ValueError("cannot store a dataset without SOPInstanceUID")
        if len(uid) > 64 or not _UID_TEXT.fullmatch(uid):
            raise ValueError(f"cannot store an instance whose SOPInstanceUID is {uid[:80]!r}")
        buffer = io.BytesIO()
        with_transfer_syntax(dataset).save_as(buffer, enforce_file_format=True)
        with self._lock:
            path = self._paths.get(uid, self.folder / f"{uid}.dcm")
            _write_durably(path, buffer.getvalue())
            self._paths[uid] = path
            self._put(dataset, uid)
