"""The facts of the conformance statement (PS3.2, its networking part) for the AE that
``python -m generated serve`` runs with every page of the package: a view model for
``conformance.rst.j2``, so the template holds no logic beyond loops.

Nothing here is written down a second time; each fact is read from where it is decided:

- SOP classes, and the codes each handler sends and when, from the pages' models and ``views``
  (``Role.label`` and ``Role.behaviour``, the two halves of the line each handler's docstring
  gives the code);
- the presentation contexts from the runtime's own ``_handlers.configure``, run for every page
  in the order ``server._build_ae`` runs it, on a stand-in AE that records what pynetdicom's
  would hold (``_ContextRecorder``; ``tests/test_conformance.py`` holds it to the real AE);
- the AE's title, limits, timeouts, maximum PDU size and implementation identity from the AE
  ``server._build_ae`` builds with ``server.serve``'s and ``server.Policy``'s defaults;
- transfer syntaxes from pynetdicom's ``ALL_TRANSFER_SYNTAXES`` (as ``configure`` gives them),
  their names from pydicom;
- query levels and keys from ``_levels.MODELS``, matching types from ``_matching``'s VR sets;
- which page answers a request by ``server._bound``'s rule (``_Owners``).

The statement must say what the relational-query negotiation of the hierarchical C-FIND models
is in one place: ``RELATIONAL``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.uid import UID

from generator.model import Dimse, Page, SOPClass
from generator.views import Service

VERIFICATION = "1.2.840.10008.1.1"
_Served = Sequence[tuple[Page, Sequence[Service]]]
"""The pages, each with its services (``views.service_view``), in the order ``serve`` gets them."""


@dataclass(frozen=True)
class Relational:
    """What the statement says of relational queries, in one place: the extended negotiation
    a hierarchical C-FIND model's presentation context accepts, and the sentence explaining
    it."""

    negotiation: str
    sentence: str


RELATIONAL = Relational(
    negotiation="SOP Class Extended Negotiation: relational queries",
    sentence=(
        "Relational queries are accepted for the hierarchical C-FIND information models ({models})"
        " through SOP Class Extended Negotiation (PS3.4 C.5.1.1): a peer that proposes them may"
        " query a level without the unique keys of the levels above it, and match keys of those"
        " levels; without them each level above the one queried needs its unique key, holding"
        " one value, and any other key of those levels is returned but not matched (0xFF01)."
    ),
)
ROLE_SELECTION = "SCP/SCU Role Selection"


@dataclass(frozen=True)
class SOPRow:
    """A row of the overview: a SOP class and whether the AE uses (SCU) or provides (SCP) it."""

    name: str
    """pydicom's name for the UID, else pynetdicom's keyword, else the page's keyword."""
    uid: str
    scu: str
    scp: str


@dataclass(frozen=True)
class Group:
    """A table of the overview: the SOP classes of one page, or of the AE itself."""

    title: str
    """Plain text: a page's title is the page's, untrusted, and escaped by the template."""
    rows: tuple[SOPRow, ...]


@dataclass(frozen=True)
class Context:
    """A presentation context the AE accepts (or, ``count`` > 1, a set of them alike)."""

    name: str
    uid: str
    transfer_syntaxes: str
    role: str
    negotiation: str
    count: int = 1


@dataclass(frozen=True)
class StatusLine:
    """A code a handler sends: which (``label``, RST), the page's description of it (``meaning``,
    the page's RST as the page docs show it), and when it is sent (``behaviour``)."""

    label: str
    meaning: str
    behaviour: str


@dataclass(frozen=True)
class Matched:
    """How C-FIND matches the Identifier of one SOP class: by the levels of a hierarchical
    model (``model`` its name, ``target`` its section), else per instance."""

    keyword: str
    model: str = ""
    target: str = ""


@dataclass(frozen=True)
class Handling:
    """One DIMSE service of one page: the SOP classes its handler answers and what it sends."""

    dimse: Dimse
    target: str
    """The RST target of its section (``conformance-<stem>-c-find``)."""
    handler: str
    """``<stem>.handle_c_find``."""
    page_link: str
    """The page's own statuses of this service: ``<stem>.html#c-find``."""
    sop_classes: tuple[SOPClass, ...]
    statuses: tuple[StatusLine, ...]
    unsent: tuple[str, ...]
    """The codes of the page's rows no outcome of the handler sends (pynetdicom's or the peer's)."""
    missing: tuple[str, ...]
    """Backend methods the service needs that ``FolderBackend`` lacks: with ``serve``, every
    request then meets the failure the handler sends when the backend raises."""
    matching: tuple[Matched, ...] = ()


@dataclass(frozen=True)
class Elsewhere:
    """A SOP class of a page whose ``dimse`` requests another page's handler answers, or none
    (``page`` empty: pynetdicom's own default handler)."""

    keyword: str
    dimse: Dimse
    page: str


@dataclass(frozen=True)
class PageSection:
    title: str
    stem: str
    target: str
    handlings: tuple[Handling, ...]
    elsewhere: tuple[Elsewhere, ...]


@dataclass(frozen=True)
class Key:
    """A key of a query level: its keyword, tag, VR, kind and the matching it supports."""

    keyword: str
    tag: str
    vr: str
    kind: str
    matching: str


@dataclass(frozen=True)
class LevelView:
    """A query level, shown once however many models share it (``_levels`` shares them)."""

    name: str
    target: str
    caption: str
    keys: tuple[Key, ...]
    any_attribute: bool
    """The lowest (IMAGE) level: any attribute of an instance is a key."""


@dataclass(frozen=True)
class ModelView:
    """A hierarchical information model some page's C-FIND SOP class uses."""

    name: str
    target: str
    keywords: tuple[str, ...]
    uid: str
    levels: tuple[LevelView, ...]


@dataclass(frozen=True)
class MatchingType:
    name: str
    vrs: str


@dataclass(frozen=True)
class Parameter:
    """A setting of ``serve``: what it is, how to set it, and its default."""

    name: str
    option: str
    default: str


@dataclass(frozen=True)
class Conformance:
    """Everything ``conformance.rst.j2`` shows."""

    command: str
    ae_title: str
    host: str
    port: int
    groups: tuple[Group, ...]
    contexts: tuple[Context, ...]
    transfer_syntaxes: tuple[tuple[str, str], ...]
    """(pydicom's name, UID) of every transfer syntax a context accepts, by UID."""
    storage_count: int
    """How many storage SOP classes the C-GET roles add (0 without a C-GET page)."""
    services: tuple[str, ...]
    """The DIMSE services some page's handler answers, in ``Dimse`` order."""
    backend_lacks: bool
    """Whether some handler needs a backend method ``FolderBackend`` does not have."""
    gets: bool
    moves: bool
    store_page: str
    """The first page with C-STORE, whose handler answers a C-STORE of a class no page lists
    (``server._bound``'s rule), or "" when no page has C-STORE."""
    application_context: str
    max_pdu: int
    implementation_uid: str
    implementation_version: str
    require_called_ae: bool
    max_associations: int
    timeouts: tuple[tuple[str, str, str], ...]
    """(what, option, default) of each timeout."""
    relational: str
    """``RELATIONAL.sentence`` for the models on the pages, or "" when none is."""
    models: tuple[ModelView, ...]
    levels: tuple[LevelView, ...]
    """The models' levels, each once, in the order the models first use them."""
    matching_types: tuple[MatchingType, ...]
    pages: tuple[PageSection, ...]
    move_contexts: str
    """What a C-MOVE sub-association proposes, from ``_handlers.storage_contexts``."""
    max_move_contexts: int
    parameters: tuple[Parameter, ...]
    versions: str


def _uid_key(uid: str) -> tuple[int, ...]:
    """Sort UIDs by their numeric components (``1.2.840.10008.1.2.4.50`` before ``…4.100``)."""
    return tuple(int(part) for part in uid.split(".") if part.isdigit())


def _pydicom_name(uid: str) -> str:
    name = UID(uid).name
    return "" if name == uid else name


def _pynetdicom_keywords() -> dict[str, str]:
    from pynetdicom import sop_class

    return {
        str(uid): keyword
        for keyword, uid in sorted(vars(sop_class).items())
        if isinstance(uid, sop_class.SOPClass)
    }


class _Recorded:
    """A supported presentation context as pynetdicom's ``AE`` keeps one."""

    def __init__(self, uid: str) -> None:
        self.abstract_syntax = UID(uid)
        self.transfer_syntax: list[str] = []
        self.scu_role: bool | None = None
        self.scp_role: bool | None = None


class _ContextRecorder:
    """Stands in for pynetdicom's ``AE`` in ``_handlers.configure``: it keeps the supported
    contexts as ``AE.add_supported_context`` does (an abstract syntax added again keeps its
    transfer syntaxes, gains the new ones and takes the new roles), without validating every
    transfer syntax UID of every storage class for every C-GET page (about 0.1 s a page)."""

    def __init__(self, contexts: Iterable[Any]) -> None:
        self._contexts: dict[str, _Recorded] = {}
        for context in contexts:
            self.add_supported_context(
                str(context.abstract_syntax),
                list(context.transfer_syntax),
                context.scu_role,
                context.scp_role,
            )

    @property
    def supported_contexts(self) -> list[_Recorded]:
        return sorted(self._contexts.values(), key=lambda context: context.abstract_syntax)

    def add_supported_context(
        self,
        abstract_syntax: str,
        transfer_syntax: Sequence[str] | str | None = None,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
    ) -> None:
        uid = str(abstract_syntax)
        syntaxes = [transfer_syntax] if isinstance(transfer_syntax, str) else transfer_syntax
        context = self._contexts.setdefault(uid, _Recorded(uid))
        for syntax in syntaxes or ():
            if str(syntax) not in context.transfer_syntax:
                context.transfer_syntax.append(str(syntax))
        context.scu_role = scu_role
        context.scp_role = scp_role


def supported_contexts(pages: _Served) -> list[Any]:
    """The presentation contexts the ``serve`` AE supports with ``pages`` in this order: the
    AE ``server._build_ae`` builds with no page (Verification), then each page's
    ``configure``, as ``_build_ae`` calls it, with pynetdicom's storage classes."""
    from pynetdicom import AE

    from generator.runtime import _handlers, server

    built = server._build_ae([], None, "SERVICEGEN", server.Policy())
    recorder = _ContextRecorder(built.supported_contexts)
    for page, services in pages:
        _handlers.configure(
            cast(AE, recorder),
            [sop.uid for sop in page.sop_classes],
            [service.dimse.value for service in services],
            _handlers.STORAGE_SOP_CLASSES,
        )
    return recorder.supported_contexts


class _Owners:
    """Which page's handler answers a request, as ``server._bound`` dispatches: per DIMSE
    service, the first page with the service that lists the SOP class, else the first page with
    the service at all, else none (pynetdicom's default handler). Indexed once, so asking costs
    a lookup whatever the number of pages."""

    def __init__(self, pages: _Served) -> None:
        self._first: dict[Dimse, Page] = {}
        self._by_uid: dict[tuple[Dimse, str], Page] = {}
        for page, services in pages:
            for service in services:
                self._first.setdefault(service.dimse, page)
                for sop in page.sop_classes:
                    self._by_uid.setdefault((service.dimse, sop.uid), page)

    def __call__(self, uid: str, dimse: Dimse) -> Page | None:
        return self._by_uid.get((dimse, uid), self._first.get(dimse))


def _matching(vr: str) -> str:
    """The matching types the runtime's ``_matching`` applies to a key of ``vr``."""
    from generator.runtime import _matching as rules

    if vr == "SQ":
        kinds = ["sequence"]
    elif vr == "UI":
        kinds = ["single value", "list of UID"]
    elif vr in rules.TEMPORAL_VRS:
        kinds = ["single value", "range"]
    elif vr in rules.WILDCARD_VRS:
        kinds = ["single value", "wild card"]
    else:
        kinds = ["single value"]
    text = ", ".join([*kinds, "universal"])
    return text[0].upper() + text[1:]


def matching_types() -> tuple[MatchingType, ...]:
    """PS3.4 C.2.2.2's matching types and the VRs the runtime's ``_matching`` applies each to."""
    from generator.runtime import _matching as rules

    def vrs(names: Iterable[str]) -> str:
        return ", ".join(sorted(names))

    return (
        MatchingType("Single Value", "every VR but SQ"),
        MatchingType("Universal", "every VR"),
        MatchingType("Wild Card", vrs(rules.WILDCARD_VRS)),
        MatchingType("Range", vrs(rules.TEMPORAL_VRS)),
        MatchingType("List of UID", "UI"),
        MatchingType("Sequence", "SQ"),
        MatchingType("Empty Value", "not supported"),
    )


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _key(tag: int, kind: str) -> Key:
    vr = dictionary_VR(tag)
    return Key(keyword_for_tag(tag), _tag_text(tag), vr, kind, _matching(vr))


def _model_views(pages: Sequence[Page]) -> tuple[ModelView, ...]:
    """The ``_levels.MODELS`` some page lists the C-FIND SOP class of, each level once."""
    from generator.runtime import _levels

    used = [
        (uid, model, keywords)
        for uid, model in _levels.MODELS.items()
        if (
            keywords := tuple(
                dict.fromkeys(
                    sop.keyword for page in pages for sop in page.sop_classes if sop.uid == uid
                )
            )
        )
    ]
    sharing: dict[Any, list[str]] = {}
    for _, model, _ in used:
        for level in model.levels:
            sharing.setdefault(level, []).append(model.name)
    levels: dict[Any, LevelView] = {}
    for _, model, _ in used:
        for position, level in enumerate(model.levels):
            if level in levels:
                continue
            keys = [_key(level.unique, "Unique")]
            keys += [_key(tag, "Stored") for tag in sorted(level.keys - {level.unique})]
            keys += [_key(tag, "Computed") for tag in sorted(level.computed)]
            levels[level] = LevelView(
                level.name,
                f"conformance-level-{len(levels) + 1}",
                f"{level.name} level: {', '.join(sharing[level])}",
                tuple(keys),
                position == len(model.levels) - 1 and level.name == "IMAGE",
            )
    return tuple(
        ModelView(
            model.name,
            "conformance-model-" + "-".join(model.name.lower().replace("/", " ").split()),
            keywords,
            uid,
            tuple(levels[level] for level in model.levels),
        )
        for uid, model, keywords in used
    )


class _AE:
    """What the AE ``serve`` builds accepts: its contexts by abstract syntax, and who answers
    and sends what, shared by the builders of the statement's sections."""

    def __init__(self, pages: _Served) -> None:
        from pynetdicom import ALL_TRANSFER_SYNTAXES

        from generator.runtime import _handlers, _levels

        self.pages = pages
        self.owner = _Owners(pages)
        self.contexts = {str(cx.abstract_syntax): cx for cx in supported_contexts(pages)}
        self.services = {service.dimse for _, services in pages for service in services}
        self.listed = {sop.uid for page, _ in pages for sop in page.sop_classes}
        self.stored = set(_handlers.STORAGE_SOP_CLASSES) | {
            sop.uid for page, _ in pages for sop in page.sop_classes if Dimse.C_STORE in sop.dimse
        }
        self.all_syntaxes = sorted(str(uid) for uid in ALL_TRANSFER_SYNTAXES)
        self.model_uids = set(_levels.MODELS)
        self.role_only = sorted(
            (uid for uid, cx in self.contexts.items() if cx.scp_role and uid not in self.listed),
            key=_uid_key,
        )

    def scu(self, uid: str) -> str:
        """Whether the AE sends instances of ``uid``: by C-GET over the peer's association (the
        context lets the peer take the SCP role), by C-MOVE over its own to a destination."""
        uses = []
        if self.contexts[uid].scp_role:
            uses.append("C-GET")
        if Dimse.C_MOVE in self.services and uid in self.stored:
            uses.append("C-MOVE")
        return f"Yes ({', '.join(uses)})" if uses else "No"

    def context(self, uid: str, name: str) -> Context:
        """The row of ``uid``'s presentation context, named ``name``."""
        cx = self.contexts[uid]
        syntaxes = sorted(map(str, cx.transfer_syntax))
        if syntaxes == self.all_syntaxes:
            offered = "All (Transfer Syntaxes table)"
        else:
            offered = ", ".join(_pydicom_name(ts) or ts for ts in sorted(syntaxes, key=_uid_key))
        role = "SCP, or SCU by SCP/SCU Role Selection" if cx.scp_role else "SCP"
        kinds = []
        if cx.scp_role or cx.scu_role:
            kinds.append(ROLE_SELECTION)
        if uid in self.model_uids:
            kinds.append(RELATIONAL.negotiation)
        return Context(name, uid, offered, role, "; ".join(kinds) or "None")


def _groups(ae: _AE) -> list[Group]:
    """The overview's tables: each page's SOP classes; Verification, unless a page lists it;
    the storage classes C-GET's roles add that no page lists."""
    groups = [
        Group(
            page.title,
            tuple(
                SOPRow(_pydicom_name(sop.uid) or sop.keyword, sop.uid, ae.scu(sop.uid), "Yes")
                for sop in page.sop_classes
            ),
        )
        for page, _ in ae.pages
        if page.sop_classes
    ]
    if VERIFICATION not in ae.listed:
        row = SOPRow(_pydicom_name(VERIFICATION), VERIFICATION, "No", "Yes")
        groups.append(Group("Verification, which serve adds", (row,)))
    if ae.role_only:
        keywords = _pynetdicom_keywords()
        scp = _yes(Dimse.C_STORE in ae.services).capitalize()
        rows = tuple(
            SOPRow(_pydicom_name(uid) or keywords.get(uid, uid), uid, ae.scu(uid), scp)
            for uid in ae.role_only
        )
        groups.append(Group("Storage SOP classes for C-GET", rows))
    return groups


_GROUP_AT = 5
"""How many SOP classes of one overview table, accepted alike, take one presentation context row
between them rather than one each."""


def _context_rows(ae: _AE, groups: Sequence[Group]) -> tuple[Context, ...]:
    """The presentation contexts, table by table of the overview: where ``_GROUP_AT`` or more
    of a table's classes are accepted alike, one row for them ("Each SOP class of the table
    …"), and a row for each other class (each class once)."""
    rows: list[Context] = []
    listed: set[str] = set()
    for group in groups:
        alike: dict[tuple[str, str, str], list[str]] = {}
        for sop in group.rows:
            row = ae.context(sop.uid, "")
            alike.setdefault((row.transfer_syntaxes, row.role, row.negotiation), []).append(sop.uid)
        most = max(alike.values(), key=len)
        grouped = len(most) >= _GROUP_AT
        for sop in group.rows:
            if not (grouped and sop.uid in most) and sop.uid not in listed:
                listed.add(sop.uid)
                rows.append(ae.context(sop.uid, sop.name))
        if grouped:
            every = "Each" if len(most) == len(group.rows) else "Each other"
            row = ae.context(most[0], f"{every} SOP class of the table {group.title}")
            rows.append(dataclasses.replace(row, uid="", count=len(most)))
    return tuple(rows)


def _handling(ae: _AE, page: Page, service: Service, models: Sequence[ModelView]) -> Handling:
    """What the statement says of one page's handler of one DIMSE service."""
    from generator.runtime import backend

    dimse = service.dimse
    answered = tuple(
        sop for sop in page.sop_classes if dimse in sop.dimse and ae.owner(sop.uid, dimse) is page
    )
    matching: tuple[Matched, ...] = ()
    if dimse is Dimse.C_FIND:
        by_uid = {model.uid: model for model in models}
        matching = tuple(
            (
                Matched(sop.keyword, by_uid[sop.uid].name, by_uid[sop.uid].target)
                if sop.uid in by_uid
                else Matched(sop.keyword)
            )
            for sop in answered
        )
    names = [method.signature.split("(")[0] for method in service.methods]
    return Handling(
        dimse=dimse,
        target=f"conformance-{page.stem}-{dimse.value.lower()}",
        handler=f"{page.stem}.{service.handler}",
        page_link=f"{page.stem}.html#{dimse.value.lower()}",
        sop_classes=answered,
        statuses=tuple(
            StatusLine(
                role.label,
                role.status.description_rst if role.status is not None else "",
                role.behaviour,
            )
            for role in service.sent
        ),
        unsent=tuple(_code(status.first, status.last) for status in service.unsent),
        missing=tuple(name for name in names if not hasattr(backend.FolderBackend, name)),
        matching=matching,
    )


def _section(
    ae: _AE, page: Page, services: Sequence[Service], models: Sequence[ModelView]
) -> PageSection:
    elsewhere = []
    for sop in page.sop_classes:
        for dimse in sop.dimse:
            owner = ae.owner(sop.uid, dimse)
            if owner is not page:
                elsewhere.append(Elsewhere(sop.keyword, dimse, owner.stem if owner else ""))
    return PageSection(
        page.title,
        page.stem,
        f"conformance-{page.stem}",
        tuple(_handling(ae, page, service, models) for service in services),
        tuple(elsewhere),
    )


def _parameters(
    ae_title: str, host: str, port: int, policy: Any, max_pdu: int
) -> tuple[Parameter, ...]:
    """``serve``'s settings, each with its option and default (``tests/test_conformance.py``
    holds them to ``python -m generated serve --help``)."""
    return (
        Parameter("Pages served", "PAGE", "every page of this statement"),
        Parameter("Folder of the archive", "FOLDER", "none: required"),
        Parameter("AE title", "--ae-title", ae_title),
        Parameter("Listening address", "--host", host),
        Parameter("Listening port", "--port", str(port)),
        Parameter(
            "Accept any called AE title", "--any-called-ae", _yes(not policy.require_called_ae)
        ),
        Parameter("Associations at once", "--max-associations", str(policy.max_associations)),
        *(
            Parameter(f"{what} timeout", option, default)
            for what, option, default in _timeouts(policy)
        ),
        Parameter("A C-MOVE destination (repeatable)", "--destination", "none"),
        Parameter("A file of C-MOVE destinations", "--destinations", "none"),
        Parameter("Maximum PDU size received", "", f"{max_pdu} bytes"),
    )


def _timeouts(policy: Any) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (what, f"--{name}-timeout", f"{getattr(policy, f'{name}_timeout'):g} s")
        for name, what in (
            ("acse", "Association negotiation (ACSE)"),
            ("dimse", "A DIMSE message"),
            ("network", "An idle connection"),
        )
    )


def conformance_view(contexts: Sequence[Mapping[str, Any]]) -> Conformance:
    """The statement's view of the pages' render contexts (``render.page_context``: ``page``
    and ``services``), in the order ``serve`` is given them (the index's, by file name)."""
    import pydicom
    import pynetdicom
    from pynetdicom._globals import APPLICATION_CONTEXT_NAME

    from generator.runtime import _handlers, server

    pages: _Served = [(c["page"], c["services"]) for c in contexts]
    signature = inspect.signature(server.serve).parameters
    ae_title = str(signature["ae_title"].default)
    host = str(signature["host"].default)
    port = int(signature["port"].default)
    policy = server.Policy()
    built = server._build_ae([], None, ae_title, policy)
    ae = _AE(pages)
    groups = _groups(ae)
    models = _model_views([page for page, _ in pages])
    sections = tuple(_section(ae, page, services, models) for page, services in pages)
    used = {str(ts) for cx in ae.contexts.values() for ts in cx.transfer_syntax}
    return Conformance(
        command=" ".join(
            ["python -m generated serve", *(page.stem for page, _ in pages), "FOLDER"]
        ),
        ae_title=ae_title,
        host=host,
        port=port,
        groups=tuple(groups),
        contexts=_context_rows(ae, groups),
        transfer_syntaxes=tuple(
            (_pydicom_name(uid) or "unknown to pydicom", uid) for uid in sorted(used, key=_uid_key)
        ),
        storage_count=len(ae.role_only),
        services=tuple(dimse.value for dimse in Dimse if dimse in ae.services),
        backend_lacks=any(h.missing for section in sections for h in section.handlings),
        gets=Dimse.C_GET in ae.services,
        moves=Dimse.C_MOVE in ae.services,
        store_page=next(
            (page.stem for page, svcs in pages if any(s.dimse is Dimse.C_STORE for s in svcs)), ""
        ),
        application_context=str(APPLICATION_CONTEXT_NAME),
        max_pdu=built.maximum_pdu_size,
        implementation_uid=str(built.implementation_class_uid),
        implementation_version=str(built.implementation_version_name or ""),
        require_called_ae=built.require_called_aet,
        max_associations=built.maximum_associations,
        timeouts=_timeouts(policy),
        relational=(
            RELATIONAL.sentence.format(models=", ".join(model.name for model in models))
            if models
            else ""
        ),
        models=models,
        levels=tuple(dict.fromkeys(level for model in models for level in model.levels)),
        matching_types=matching_types(),
        pages=sections,
        move_contexts=" and ".join(_pydicom_name(str(uid)) for uid in _handlers._UNCOMPRESSED),
        max_move_contexts=_handlers._MAX_REQUESTED_CONTEXTS,
        parameters=_parameters(ae_title, host, port, policy, built.maximum_pdu_size),
        versions=f"pynetdicom {pynetdicom.__version__} and pydicom {pydicom.__version__}",
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _code(first: int, last: int) -> str:
    return f"0x{first:04X}" if first == last else f"0x{first:04X}-0x{last:04X}"
