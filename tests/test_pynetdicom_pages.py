"""pynetdicom 3.0.4's own service-class pages, downloaded at test time, as real-world input."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest
from pynetdicom import evt

from generator.cli import main
from generator.errors import SpecError
from generator.model import Scope
from generator.parser import read_page

# Facts about pynetdicom 3.0.4's docs/service_classes/: SOP class rows and status rows per page.
EXPECTED = {
    "application_event": (2, 2, 23),
    "basic_worklist_service_class": (1, 3, 13),
    "color_palette_service_class": (3, 9, 51),
    "defined_procedure_service_class": (3, 9, 51),
    "display_system_service_class": (1, 1, 13),
    "hanging_protocol_service_class": (3, 9, 51),
    "implant_template_service_class": (9, 9, 51),
    "index": (0, 0, 0),
    "instance_availability": (1, 1, 16),
    "media_creation": (1, 6, 47),
    "modality_performed_procedure_step": (3, 4, 57),
    "non_patient_service_class": (8, 3, 14),
    "print_management": (11, 9, 104),
    "protocol_approval_service_class": (3, 9, 61),
    "query_retrieve_service_class": (13, 9, 65),
    "relevant_patient_service_class": (3, 3, 14),
    "rt_machine": (2, 10, 90),
    "storage_commitment": (1, 2, 26),
    "storage_management": (1, 2, 27),
    "storage_service_class": (157, 3, 17),
    "substance_admin_service_class": (2, 3, 12),
    "ups": (5, 12, 109),
    "verification_service_class": (1, 1, 5),
    "inventory_service_class": (3, 9, 61),
}

# The inventory page's SOP Class cells, each mended to pydicom's keyword at the same width.
INVENTORY = "inventory_service_class.rst"
MENDS = {
    "| Inventory FIND    |": "| InventoryFind     |",
    "| Inventory MOVE    |": "| InventoryMove     |",
    "| Inventory GET     |": "| InventoryGet      |",
}


def mend(pages: Path, into: Path) -> Path:
    """A copy of ``pages`` in ``into`` with the inventory page's three keywords mended."""
    shutil.copytree(pages, into)
    page = into / INVENTORY
    text = page.read_text(encoding="utf-8")
    for old, new in MENDS.items():
        assert len(old) == len(new) and text.count(old) == 1
        text = text.replace(old, new)
    page.write_text(text, encoding="utf-8")
    return into


def test_every_mended_page_parses_with_exact_counts(pynetdicom_pages: Path, tmp_path: Path) -> None:
    pages = sorted(mend(pynetdicom_pages, tmp_path / "pages").glob("*.rst"))
    assert len(pages) == 24
    got = {}
    for path in pages:
        page = read_page(path)
        got[path.stem] = (
            len(page.sop_classes),
            len(page.status_tables),
            sum(len(t.statuses) for t in page.status_tables),
        )
    assert got == EXPECTED
    assert sum(sop for sop, _, _ in got.values()) == 237
    assert [s.keyword for s in read_page(tmp_path / "pages" / INVENTORY).sop_classes] == [
        "InventoryFind",
        "InventoryMove",
        "InventoryGet",
    ]


# Pages with a paragraph on pynetdicom's own statuses ("When pynetdicom is acting as a ... SCP").
PYNETDICOM_PARAGRAPHS = [
    "basic_worklist_service_class",
    "color_palette_service_class",
    "defined_procedure_service_class",
    "hanging_protocol_service_class",
    "implant_template_service_class",
    "inventory_service_class",
    "non_patient_service_class",
    "protocol_approval_service_class",
    "query_retrieve_service_class",
    "relevant_patient_service_class",
    "storage_service_class",
    "substance_admin_service_class",
]
# Introductions that name their chapter of PS3.4 as a title reference (`... <part04/...>`), not
# with :dcm:, so they hold the target as text rather than a link.
TITLE_REFERENCES = ["instance_availability", "media_creation", "modality_performed_procedure_step"]


def test_every_mended_page_keeps_its_prose(pynetdicom_pages: Path, tmp_path: Path) -> None:
    pages = {p.stem: read_page(p) for p in mend(pynetdicom_pages, tmp_path / "pages").glob("*.rst")}
    prose = {stem: page.prose for stem, page in pages.items()}
    # An introduction per page (the index's is its toctree, read as text) and the paragraphs
    # on pynetdicom's statuses: nothing else of the pages is prose.
    assert sum(len(blocks) for blocks in prose.values()) == 24 + 12
    statuses = [
        stem
        for stem, blocks in sorted(prose.items())
        for block in blocks
        if block.text.startswith("When pynetdicom is acting as")
    ]
    assert statuses == PYNETDICOM_PARAGRAPHS
    linked = sorted(stem for stem, page in pages.items() if page.links)
    assert len(linked) == 20 and sorted(set(pages) - set(linked)) == sorted(
        [*TITLE_REFERENCES, "index"]
    )
    for stem, page in pages.items():
        intro = page.prose[0]
        assert (intro.section, intro.item) == (page.title, False), stem
        assert intro.line == (5 if stem != "index" else 31), stem  # a directive's: its last line
        if stem in linked:
            assert [link.context for link in page.links] == [intro.text], stem
            assert intro.rst.count(f"<{page.links[0].url}>`__") == 1, stem


# What is wrong with the unmended inventory page: a line per row, with pynetdicom's keyword.
INVENTORY_PROBLEMS = [
    (
        line,
        (
            f"SOP class keyword 'Inventory {dimse}' is not a Python identifier"
            f" (pynetdicom's keyword for its UID is Inventory{dimse.title()})"
        ),
    )
    for line, dimse in ((17, "FIND"), (19, "MOVE"), (21, "GET"))
]


def test_the_inventory_page_names_no_keywords(pynetdicom_pages: Path) -> None:
    with pytest.raises(SpecError) as caught:
        read_page(pynetdicom_pages / INVENTORY)
    assert [(p.line, p.message) for p in caught.value.problems] == INVENTORY_PROBLEMS


def test_generate_refuses_the_inventory_page_with_a_line_per_row(
    pynetdicom_pages: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["generate", "--spec", str(pynetdicom_pages), "--out", str(out)]) == 2
    page = pynetdicom_pages / INVENTORY
    assert capsys.readouterr().err.splitlines() == [
        f"servicegen: {page}:{line}: {message}" for line, message in INVENTORY_PROBLEMS
    ]
    assert not out.exists()


def test_both_page_styles_give_services(pynetdicom_pages: Path) -> None:
    qr = read_page(pynetdicom_pages / "query_retrieve_service_class.rst")
    services = {s.keyword: [d.value for d in s.dimse] for s in qr.sop_classes}
    assert services["PatientRootQueryRetrieveInformationModelFind"] == ["C-FIND"]
    assert services["CompositeInstanceRootRetrieveMove"] == ["C-MOVE"]
    assert services["RepositoryQuery"] == ["C-FIND"]
    ups = read_page(pynetdicom_pages / "ups.rst")
    push = next(s for s in ups.sop_classes if s.keyword == "UnifiedProcedureStepPush")
    assert [d.value for d in push.dimse] == ["N-CREATE", "N-ACTION", "N-GET"]
    store = read_page(pynetdicom_pages / "storage_service_class.rst")
    assert {d.value for s in store.sop_classes for d in s.dimse} == {"C-STORE"}
    assert [t.scope for t in store.status_tables] == [
        Scope.GENERAL,
        Scope.SERVICE,
        Scope.IMPLEMENTATION,
    ]
    assert store.status_tables[1].statuses[0].first == 0xA700
    assert store.status_tables[1].statuses[0].last == 0xA7FF


def test_every_mended_page_generates_an_importable_module(
    pynetdicom_pages: Path, tmp_path: Path
) -> None:
    spec = mend(pynetdicom_pages, tmp_path / "spec")
    out = tmp_path / "pynd_generated"
    assert main(["generate", "--spec", str(spec), "--out", str(out)]) == 0
    pages = [read_page(p) for p in sorted(spec.glob("*.rst")) if p.stem != "index"]
    assert len(pages) == 23
    sys.path.insert(0, str(tmp_path))
    try:
        for page in pages:
            module = importlib.import_module(f"pynd_generated.{page.stem}")
            assert list(module.SOP_CLASSES) == [s.keyword for s in page.sop_classes]
            served = [h for h in module.handlers(object()) if h[0] is not evt.EVT_SOP_EXTENDED]
            assert len(served) == len(module.DIMSE_SERVICES)
            for table in page.status_tables:
                for status in table.statuses:
                    category, _ = module.STATUS_TABLES[table.dimse.value][status.first]
                    assert category == status.category.value
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("pynd_generated")]:
            del sys.modules[name]
