"""Names and codes a hostile page cannot break (issue 10, items 9 and 11).

Every name the generator emits (enum members, SOP class constants, modules, output files) is
proven unique and importable before anything is written, else the run is refused with
``path:line`` and exit status 2; and a handler answers each outcome with the code that means it,
on pages of our own making and on pynetdicom's 24.
"""

from __future__ import annotations

import importlib
import itertools
import random
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from generator import render, views, writer
from generator.cli import main
from generator.errors import SpecError
from generator.model import (
    Alias,
    Category,
    Dimse,
    Page,
    Scope,
    Status,
    StatusTable,
    alias_faults,
    member_names,
)
from generator.parser import read_page
from generator.rst_text import escape_inline
from generator.runtime._levels import MODELS, RETRIEVE_MODELS

from . import sdist
from .conftest import SEED, generate, load

Row = tuple[str, str, str]
"""(code cell, category, description) of a status table row."""


def grid(header: list[str], rows: list[list[str]]) -> str:
    """An RST grid table of ASCII cells."""
    widths = [max(len(cell) for cell in column) + 2 for column in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c}".ljust(w) for c, w in zip(cells, widths)) + "|\n"

    def rule(char: str) -> str:
        return "+" + "+".join(char * w for w in widths) + "+\n"

    body = "".join(line(row) + rule("-") for row in rows)
    return rule("-") + line(header) + rule("=") + body


def page_text(
    keywords: list[str], tables: dict[str, list[Row]], dimse: Dimse = Dimse.C_FIND
) -> str:
    """A page with one SOP class table (``dimse`` for each keyword) and status tables by title."""
    sops = [[f"1.2.3.{n}", escape_inline(kw)] for n, kw in enumerate(keywords, 1)]
    text = "Hostile Service Class\n=====================\n\n"
    text += f"{dimse.value} SOP Classes\n{'-' * 20}\n\n" + grid(["UID", "SOP Class"], sops)
    for title, rows in tables.items():
        cells = [[code, category, escape_inline(d)] for code, category, d in rows]
        text += f"\n{title}\n{'-' * len(title)}\n\n"
        text += grid(["Code (hex)", "Category", "Description"], cells)
    return text


FIND_ROWS: list[Row] = [
    ("0x0000", "Success", "Success"),
    ("0xC000 to 0xCFFF", "Failure", "Unable to process"),
    ("0xFF00", "Pending", "Matches are continuing"),
]


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


_packages = itertools.count()


# Enum member names


def test_a_suffixed_name_that_equals_another_rows_name(
    tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's example, and the other member of its class: an exact code and a range that
    start at one code, each named by its first code."""
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "page.rst").write_text(
        page_text(
            ["HostileFind"],
            {
                "C-FIND Statuses": [
                    *FIND_ROWS[::2],
                    ("0xA700", "Failure", "Out of resources"),
                    ("0xA701", "Failure", "Out of resources"),
                    ("0xA702", "Failure", "Out of resources A700"),
                    ("0xA703", "Failure", "Dataset does not match"),
                    ("0xA704", "Failure", "Dataset does not match"),
                    ("0xC000", "Failure", "Unable to process"),
                ],
                "C-FIND Service Statuses": [
                    ("0xC000 to 0xCFFF", "Failure", "Unable to process"),
                ],
            },
        ),
        encoding="utf-8",
    )
    assert generate(spec, package, capsys) == (0, [])
    status = load(package, "page").CFindStatus
    assert {m.name: m.value for m in status} == {
        "SUCCESS": 0x0000,
        "MATCHES_CONTINUING": 0xFF00,
        "OUT_OF_RESOURCES_0xA700": 0xA700,
        "OUT_OF_RESOURCES_A701": 0xA701,  # no longer shared: today's name stays
        "OUT_OF_RESOURCES_A700_A702": 0xA702,
        "DATASET_NOT_MATCH_A703": 0xA703,
        "DATASET_NOT_MATCH_A704": 0xA704,
        "UNABLE_TO_PROCESS_0xC000": 0xC000,
    }
    assert status.UNABLE_TO_PROCESS_0xC000_0xCFFF is status.UNABLE_TO_PROCESS_0xC000


def test_a_broken_name_invariant_is_an_error_at_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should ``member_names`` ever give two rows one name, the run stops at the row rather than
    writing a module that cannot be imported."""
    page = read_page(SEED)
    monkeypatch.setattr(views, "member_names", lambda rows: dict.fromkeys(rows, "SAME"))
    with pytest.raises(SpecError) as caught:
        views.service_view(page, Dimse.C_FIND)
    second = page.statuses(Dimse.C_FIND)[1]
    assert (caught.value.path, caught.value.line) == (page.source, second.line)
    assert "enum member 'SAME'" in caught.value.message


CODES = st.integers(0, 0xFFFF)
DESCRIPTIONS = st.one_of(
    st.sampled_from(
        ["Out of resources", "Unable to process", "", "'", "0xC000", "1st", "_", "The a an"]
    ),
    st.sampled_from(["Failed to decode the dataset received from the peer", "Of to from a no"]),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=80),
)


@st.composite
def description_sets(draw: st.DrawFn) -> list[Status]:
    """Rows of one service as ``Page.statuses`` gives them: unique exact codes, disjoint ranges
    (one may start at an exact code), and arbitrary or repeated descriptions, some ending in
    another row's code the way a qualified name does (``Out of resources A700``, ``... 0xA700``)."""
    exact = draw(st.lists(CODES, max_size=10, unique=True))
    codes = [(code, code) for code in exact]
    taken: list[tuple[int, int]] = []
    for first in draw(st.lists(st.one_of(st.sampled_from(exact or [0]), CODES), max_size=5)):
        last = min(first + draw(st.integers(1, 0x1FF)), 0xFFFF)
        if first < last and all(last < a or b < first for a, b in taken):
            taken.append((first, last))
    codes += taken
    rows: list[Status] = []
    for line, (first, last) in enumerate(codes, 10):
        text = draw(DESCRIPTIONS)
        mimic = draw(st.booleans())
        if rows and mimic:
            other = draw(st.sampled_from(rows))
            form = draw(st.sampled_from(["{:04X}", "0x{:04X}", "0X{:04X}", "{:04x}", "_{:04X}"]))
            text = draw(st.sampled_from([other.description, text])) + " " + form.format(other.first)
        category = draw(st.sampled_from(list(Category)))
        rows.append(Status(first, last, category, text, "A row.", line))  # RST: docs only
    return rows


@st.composite
def alias_sets(draw: st.DrawFn, rows: list[Status], names: list[str]) -> tuple[Alias, ...]:
    """C-FIND aliases of a row's code or any code, named as a member or another alias is, as
    the old rule might have named one, or as no member can be named."""
    names = names or ["X"]
    drawn = st.tuples(
        st.one_of(st.sampled_from([s.first for s in rows] or [0]), CODES),
        st.one_of(
            st.sampled_from(names),
            st.sampled_from([f"{n}_OLD" for n in names]),
            st.sampled_from(["OLD", "to_bytes", "_X_", "1ST"]),
        ),
    )
    return tuple(
        Alias(Dimse.C_FIND, code, name, line)
        for line, (code, name) in enumerate(draw(st.lists(drawn, max_size=4)), 1000)
    )


@given(rows=description_sets(), order=st.randoms(use_true_random=False), data=st.data())
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_random_descriptions_give_an_importable_module_with_every_code(
    rows: list[Status],
    order: random.Random,
    data: st.DataObject,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Names unique whatever the descriptions and row order; and every alias either refused at
    its line with the reason ``alias_faults`` gives, or importable as the member of its code."""
    names = member_names(tuple(rows))
    shuffled = list(rows)
    order.shuffle(shuffled)
    assert member_names(tuple(shuffled)) == names
    assert len(set(names.values())) == len(rows)

    exact = tuple(s for s in rows if not s.is_range)
    ranges = tuple(s for s in rows if s.is_range)
    tables = tuple(
        StatusTable(Dimse.C_FIND, scope, title, statuses, 1)
        for scope, title, statuses in (
            (Scope.GENERAL, "C-FIND Statuses", exact),
            (Scope.SERVICE, "C-FIND Service Statuses", ranges),
        )
        if statuses
    )
    root = tmp_path_factory.mktemp("names")
    aliases = data.draw(alias_sets(rows, sorted(names.values()))) if rows else ()
    page = Page("Random", str(root / "random_page.rst"), (), tables, aliases=aliases)
    faults = alias_faults(page)
    event(f"aliases: {len(aliases) - len(faults)} kept, {len(faults)} refused")
    if faults:
        with pytest.raises(SpecError) as caught:
            render.render([page])
        assert caught.value.lines() == [f"{page.source}:{a.line}: {why}" for a, why in faults]
        refused = {alias for alias, _ in faults}
        page = replace(page, aliases=tuple(a for a in aliases if a not in refused))
    name = f"hostile{next(_packages)}"
    writer.write(render.render([page]), root / name)
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(f"{name}.random_page")
    finally:
        sys.path.remove(str(root))
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
    for status in rows:
        assert getattr(module.CFindStatus, names[status]) == status.first
        assert status.last in module.C_FIND_STATUSES
    for alias in page.aliases:
        assert getattr(module.CFindStatus, alias.name) is module.CFindStatus(alias.code)


# SOP class keywords


UNDERSCORE = "starts with '_', which Python and the generated package keep for themselves"
BUILTIN = "is a Python builtin, which `from module import *` would hide"
CLASH = "clashes with a name the generated module defines"
KEYWORD_CASES = {
    **dict.fromkeys(
        (
            "__builtins__",
            "__annotations__",
            "__package__",
            "__spec__",
            "_handlers",
            "_C_FIND_ROLES",
        ),
        UNDERSCORE,
    ),
    **dict.fromkeys(("str", "print", "dict"), BUILTIN),
    # A Cyrillic letter in a keyword that reads as another's; a name NFKC makes another.
    **dict.fromkeys(("Hostil\u0435Find", "\ufb01le"), "is not ASCII, as every DICOM keyword is"),
}


@pytest.mark.parametrize("keyword", sorted(KEYWORD_CASES))
def test_a_keyword_python_or_the_module_needs_is_refused(
    keyword: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    text = page_text(["HostileFind", keyword], {"C-FIND Statuses": FIND_ROWS})
    (spec / "page.rst").write_text(text, encoding="utf-8")
    status, lines = generate(spec, tmp_path / "out", capsys)
    line = line_of(text, "| 1.2.3.2 ")
    assert (status, lines) == (
        2,
        [
            f"servicegen: {spec / 'page.rst'}:{line}: SOP class keyword {keyword!r} "
            + KEYWORD_CASES[keyword]
        ],
    )
    assert not (tmp_path / "out").exists()


def test_every_bad_keyword_of_a_page_is_reported_and_harmless_ones_pass(
    tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    # What the parser refuses is reported first, every row of it; then what the module needs.
    for keywords, whys in (
        (["__spec__", "len", "Backend"], [UNDERSCORE, BUILTIN]),
        (["Backend", "annotations", "CFindStatus", "handle_c_find"], [CLASH] * 4),
    ):
        text = page_text(["HostileFind", *keywords], {"C-FIND Statuses": FIND_ROWS})
        (spec / "page.rst").write_text(text, encoding="utf-8")
        status, lines = generate(spec, package, capsys)
        assert (status, lines) == (
            2,
            [
                f"servicegen: {spec / 'page.rst'}:{line_of(text, f'| 1.2.3.{n} ')}: "
                f"SOP class keyword {keyword!r} {why}"
                for n, keyword, why in zip(itertools.count(2), keywords, whys)
            ],
        )
    # Names only a page with other services, or only a function's own scope, would use.
    text = page_text(["CStoreStatus", "event", "backend"], {"C-FIND Statuses": FIND_ROWS})
    (spec / "page.rst").write_text(text, encoding="utf-8")
    assert generate(spec, package, capsys) == (0, [])
    assert load(package, "page").event == "1.2.3.2"


# Page file names and output paths


RESERVED_STEM = "starts with '_', which the generated package keeps for its own modules"
STEM_CASES = {
    **{
        stem: f"file name {stem!r} {RESERVED_STEM}"
        for stem in ("_runtime", "__init__", "_handlers", "_backend", "__main__", "_private")
    },
    "index": "its output docs/index.rst is also written by index.rst.j2",
    "backend": "its output backend.py is also written by runtime/backend.py",
    "server": "its output server.py is also written by runtime/server.py",
    "\ufb01le": "file name '\ufb01le' is not in NFKC form, so Python would import it as 'file'",
    "search": "its output docs/search.html is also written by Sphinx",
    "genindex": "its output docs/genindex.html is also written by Sphinx",
}


@pytest.mark.parametrize("stem", sorted(STEM_CASES))
def test_a_page_whose_outputs_are_not_its_own_is_refused(
    stem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / f"{stem}.rst").write_text(page_text(["HostileFind"], {"C-FIND Statuses": FIND_ROWS}))
    status, lines = generate(spec, tmp_path / "out", capsys)
    assert (status, lines) == (2, [f"servicegen: {spec / stem}.rst:1: {STEM_CASES[stem]}"])
    assert not (tmp_path / "out").exists()


def test_a_page_named_like_a_users_runtime_template_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The generator's own files come from the templates, so a ``--templates`` directory that adds
    ``helpers.py.j2`` reserves ``helpers.py``: no list of today's names is consulted."""
    spec, custom = tmp_path / "spec", tmp_path / "custom"
    spec.mkdir()
    custom.mkdir()
    (custom / "helpers.py.j2").write_text('"""Shared helpers."""\n')
    (spec / "helpers.rst").write_text(page_text(["HostileFind"], {"C-FIND Statuses": FIND_ROWS}))
    status, lines = generate(spec, tmp_path / "out", capsys, "--templates", str(custom))
    assert (status, lines) == (
        2,
        [
            f"servicegen: {spec / 'helpers.rst'}:1: its output helpers.py is also written by helpers.py.j2"
        ],
    )


def test_pages_whose_outputs_differ_only_in_case_or_folder_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    for name in ("Page.rst", "page.rst", "a/same.rst", "b/same.rst"):
        (spec / name).parent.mkdir(parents=True, exist_ok=True)
        (spec / name).write_text(page_text(["HostileFind"], {"C-FIND Statuses": FIND_ROWS}))
    status, lines = generate(spec, tmp_path / "out", capsys)
    assert (status, lines) == (
        2,
        [
            (
                f"servicegen: {spec / 'b/same.rst'}:1: its output same.py is also written by"
                f" {spec / 'a/same.rst'}"
            ),
            (
                f"servicegen: {spec / 'page.rst'}:1: its output page.py is also written by"
                f" {spec / 'Page.rst'} as Page.py, one file where case is ignored"
            ),
        ],
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("spec", "out", "message"),
    [
        ("pages", "pages/generated", "--out {out} is inside --spec {spec}"),
        ("pages", "pages/sub/..", "--out {out} is inside --spec {spec}"),
        ("generated/pages", "generated", "--spec {spec} is inside --out {out}"),
    ],
)
def test_output_and_pages_in_one_folder_are_refused_before_reading(
    spec: str, out: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / spec / "sub").mkdir(parents=True)
    (tmp_path / spec / "page.rst").write_bytes(b"\xff not even UTF-8: nothing is read")
    before = sorted(tmp_path.rglob("*"))
    spec_arg, out_arg = str(tmp_path / spec), str(tmp_path / out)
    for command in ("generate", "check"):
        capsys.readouterr()
        assert main([command, "--spec", spec_arg, "--out", out_arg]) == 2
        expected = message.format(spec=spec_arg, out=out_arg)
        assert capsys.readouterr().err == f"servicegen: {expected}; keep them apart\n"
    assert sorted(tmp_path.rglob("*")) == before


# Roles by meaning, on pynetdicom's 24 pages


NO_CATCH_ALL = {
    (stem, Dimse.N_ACTION)
    for stem in (
        "application_event",
        "media_creation",
        "print_management",
        "rt_machine",
        "storage_commitment",
        "storage_management",
        "ups",
    )
}
"""Services whose tables have no 0xC000 to 0xCFFF, 0xC000 or 0x0110: pynetdicom itself answers
a failed handler there with 0x0110 (Processing failure)."""
PENDING_SERVICES = (Dimse.C_FIND, Dimse.C_GET, Dimse.C_MOVE)
MEANINGS = (
    ("pending", 0xFF00, PENDING_SERVICES),
    ("cancel", 0xFE00, PENDING_SERVICES),
    ("no_such_instance", 0x0112, tuple(d for d in Dimse if d.value.startswith("N-"))),
    ("dataset_mismatch", 0xA900, (Dimse.C_STORE,)),
    ("", 0xB000, (Dimse.C_GET, Dimse.C_MOVE)),
    ("", 0xA801, (Dimse.C_MOVE,)),
    ("sub_operations_failed", 0xA702, (Dimse.C_MOVE,)),
)
"""(role, code, services): the codes sent where the page has them, beside success and failure."""
LEVEL_MEANINGS = (
    ("identifier_mismatch", 0xA900, (Dimse.C_FIND, Dimse.C_GET, Dimse.C_MOVE)),
    ("optional_keys", 0xFF01, (Dimse.C_FIND,)),
)
"""Codes sent besides where a SOP class of the service has query levels (``_levels``)."""
BULLET = re.compile(r"^    - (?:``\w+\.\w+`` \(0x([0-9A-F]{4})|0x([0-9A-F]{4}) \()", re.MULTILINE)
"""A code the handler's docstring says it sends: by enum member, or as a bare code."""


def catch_all(statuses: tuple[Status, ...]) -> int:
    """The failure a backend error deserves: the widest range of "Unable to process" codes
    (0xC000 to 0xCFFF), else 0xC000 alone, else 0x0110 (Processing failure)."""
    ranges = [s for s in statuses if s.is_range and 0xC000 <= s.first and s.last <= 0xCFFF]
    exact = {s.first for s in statuses if not s.is_range}
    if ranges:
        return max(ranges, key=lambda s: (s.last - s.first, -s.first)).first
    return 0xC000 if 0xC000 in exact else 0x0110


def test_roles_by_meaning_on_pynetdicoms_pages(
    pynetdicom_pages: Path, package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each generated handler sends success 0x0000, the catch-all failure, pending 0xFF00 and
    cancel 0xFE00 where the page has them, and its docstring names exactly what it sends."""
    spec = sdist.spec_copy(pynetdicom_pages, tmp_path / "spec")
    assert generate(spec, package, capsys)[0] == 0
    seen: dict[tuple[str, Dimse], int | None] = {}
    for path in sorted(spec.glob("*.rst")):
        page = read_page(path)
        module = load(package, page.stem) if page.status_tables else None
        for dimse in dict.fromkeys(t.dimse for t in page.status_tables):
            statuses = page.statuses(dimse)
            named = {s.first for s in statuses}  # a code's own row, or a range named by it
            roles = {k: int(v) for k, v in getattr(module, f"_{dimse.ident}_ROLES", {}).items()}
            handler = getattr(module, f"handle_{dimse.ident.lower()}")
            documented = [int(a or b, 16) for a, b in BULLET.findall(handler.__doc__)]
            seen[(page.stem, dimse)] = roles.get("failure")
            if dimse is Dimse.C_ECHO:
                assert (roles, documented) == ({}, [0x0000])
                continue
            assert roles.pop("success") == 0x0000
            assert roles.pop("failure") == catch_all(statuses)
            sent = {0x0000, catch_all(statuses)}
            models = MODELS if dimse is Dimse.C_FIND else RETRIEVE_MODELS
            levels = any(s.uid in models and dimse in s.dimse for s in page.sop_classes)
            for name, code, services in MEANINGS + (LEVEL_MEANINGS if levels else ()):
                if dimse in services and code in named:
                    sent.add(code)
                    if name:  # else pynetdicom sends it, because of what the handler yielded
                        assert roles.pop(name) == code
            assert roles == {}
            assert sorted(documented) == sorted(sent), (page.stem, dimse)
    assert len(seen) == 59
    assert seen[("storage_service_class", Dimse.C_STORE)] == 0xC000  # not 0xA700
    assert {key for key, failure in seen.items() if failure == 0x0110} >= NO_CATCH_ALL
    for stem, dimse in NO_CATCH_ALL:
        assert 0x0110 not in {s.first for s in read_page(spec / f"{stem}.rst").statuses(dimse)}


class _Failing:
    """A storage backend whose store raises, as a full disk or a lost database would."""

    def store(self, dataset: Dataset) -> None:
        raise OSError("disk full")


def test_a_failing_store_is_answered_with_the_catch_all_over_the_network(
    pynetdicom_pages: Path, package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pynetdicom's storage page lists 0xA700 to 0xA7FF (Out of resources) first among its
    failures; a backend error is none of that, and is answered 0xC000 (Cannot understand)."""
    spec = tmp_path / "spec"
    spec.mkdir()
    page = pynetdicom_pages / "storage_service_class.rst"
    (spec / page.name).write_bytes(page.read_bytes())
    assert generate(spec, package, capsys)[0] == 0
    module = load(package, "storage_service_class")
    scp = AE("HOSTILE")
    scp.add_supported_context(module.CTImageStorage)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=module.handlers(_Failing())
    )
    assert server is not None
    scu = AE("SCU")
    scu.add_requested_context(CTImageStorage, ImplicitVRLittleEndian)
    try:
        assoc = scu.associate("127.0.0.1", server.server_address[1])
        assert assoc.is_established
        try:
            dataset = Dataset()
            dataset.SOPClassUID = CTImageStorage
            dataset.SOPInstanceUID = generate_uid()
            dataset.PatientName = "Hostile^Review"
            dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
            dataset.file_meta = FileMetaDataset()
            dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
            status = assoc.send_c_store(dataset)
        finally:
            assoc.release()
        assert status.Status == 0xC000 == module.CStoreStatus.CANNOT_UNDERSTAND
    finally:
        scp.shutdown()
        scu.shutdown()
