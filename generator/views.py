"""What the page template needs of a page: per DIMSE service its enum and table names, merged
rows, the codes its handler sends and the handler's shape (a view model per output, so the
templates hold no logic beyond loops)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generator.annex_c import annex_c_class
from generator.errors import Problem, SpecError
from generator.model import (
    Dimse,
    Page,
    Status,
    alias_faults,
    code_text,
    is_member_name,
    member_names,
)
from generator.runtime._levels import MODELS, RETRIEVE_MODELS


@dataclass(frozen=True)
class BackendMethod:
    signature: str
    doc: str


@dataclass(frozen=True)
class Role:
    """A code sent for one outcome: by the handler itself, or by pynetdicom because of what the
    handler yielded (a consequence)."""

    name: str
    code: int
    status: Status | None
    """The page's row for the code, or None when the page's tables lack it."""
    expression: str
    """The code in the generated module: ``CFindStatus.UNABLE_TO_PROCESS``, or ``0x0110``."""

    @property
    def summary(self) -> str:
        """The handler docstring's line for this code: which code, and when it is sent."""
        return f"{self.label}: {self.behaviour}"

    @property
    def label(self) -> str:
        """Which code: the member, its code or range and category, or a general code the
        page's tables lack (RST; the first half of ``summary``)."""
        if self.status is None:
            return f"0x{self.code:04X} ({_GENERAL[self.name][1]}, not in the page's tables)"
        category = self.status.category.value
        known = annex_c_class(self.code)
        if known is not None and known is not self.status.category:
            category += f" on the page, {known.value} in PS3.7 Annex C"
        codes = f"0x{self.status.first:04X}"
        if self.status.is_range:
            codes += f"-0x{self.status.last:04X}"
        return f"``{self.expression}`` ({codes}, {category})"

    @property
    def behaviour(self) -> str:
        """When the code is sent (the second half of ``summary``)."""
        return _ROLE_DOCS[self.name]


@dataclass(frozen=True)
class Service:
    """What the page template needs of one DIMSE service: names, merged rows, handler shape."""

    dimse: Dimse
    members: tuple[tuple[str, Status], ...]
    aliases: tuple[tuple[str, str], ...]
    """(old name, the member it stands for): the page's aliases of this service."""
    roles: Mapping[str, Role]
    """The ``_handlers.Roles`` fields: the codes the handler itself chooses."""
    consequences: Mapping[str, Role]
    """Codes pynetdicom sends because of what the handler yielded (0xB000, 0xA801)."""
    params: str
    returns: str
    methods: tuple[BackendMethod, ...]
    hierarchical: bool
    """Whether a SOP class of the service has query levels (the runtime's ``_levels``)."""

    @property
    def enum_name(self) -> str:
        return enum_name(self.dimse)

    @property
    def table_name(self) -> str:
        return f"{self.dimse.ident}_STATUSES"

    @property
    def handler(self) -> str:
        return f"handle_{self.dimse.ident.lower()}"

    @property
    def runtime(self) -> str:
        """The ``_handlers`` function the handler delegates to (``c_find``)."""
        return self.dimse.ident.lower()

    @property
    def uses_backend(self) -> bool:
        return "backend" in self.params

    @property
    def sent(self) -> tuple[Role, ...]:
        """Every code a request to this handler can be answered with because of it."""
        return (*self.roles.values(), *self.consequences.values())

    @property
    def unsent(self) -> tuple[Status, ...]:
        """The page's rows no outcome of the handler sends: pynetdicom's own or the peer's."""
        sent = {role.status for role in self.sent}
        return tuple(status for _, status in self.members if status not in sent)


_GENERAL = {"success": (0x0000, "Success"), "failure": (0x0110, "Processing failure")}
"""PS3.7's general codes for success and failure, which every handler must be able to send: sent
even where the page's tables lack a code of that meaning (pynetdicom itself answers a failed
N-service handler with 0x0110), and reported by ``lint`` (SG302)."""
_ROLE_DOCS = {
    "success": "sent when the request completes",
    "failure": "sent when the request cannot be processed or the backend raises",
    "pending": "sent per match or sub-operation",
    "cancel": "sent when the peer cancels",
    "warning": "sent by pynetdicom when a sub-operation fails",
    "unknown_destination": "sent by pynetdicom when the backend knows no such destination",
    "no_such_instance": "sent when the backend finds no such instance",
    "identifier_mismatch": (
        "sent, with no matches, when the Identifier does not fit the SOP class's query levels"
        " (no or an unknown QueryRetrieveLevel, a unique key missing above the level, a key"
        " below it)"
    ),
    "dataset_mismatch": (
        "sent, and nothing stored, when the data set is not the instance the request names (its"
        " SOP Class or Instance UID differs, or a Storage SOP Class instance lacks a Study or"
        " Series Instance UID)"
    ),
    "optional_keys": "sent per match instead when a requested key is not supported at the level",
    "sub_operations_failed": (
        "sent when the move destination's association goes away: the remaining sub-operations"
        " are counted failed and listed"
    ),
}
_UNABLE_TO_PROCESS = (0xC000, 0xCFFF)
"""PS3.7 Annex C's failure class "Unable to process": its widest range on a page, else its first
code alone, is the page's catch-all failure."""

_N_PARAMS = "event: Event, backend: Backend"
_N_RETURNS = "tuple[int, Dataset | None]"
_FIND = BackendMethod(
    "find(self, identifier: Dataset) -> Iterable[Dataset]",
    "Yield the matches for a C-FIND ``identifier``, each holding only the requested keys.",
)
_FIND_LEVELS = BackendMethod(
    "find(self, identifier: Dataset, query: Query | None = None) -> Iterable[Dataset]",
    "Yield the matches for a C-FIND ``identifier``, each holding only the requested keys:\n"
    "        one per entity at ``query``'s level for a hierarchical model (the handler has\n"
    "        checked the identifier against it), else (``query`` None) one per instance.",
)
_RETRIEVE = BackendMethod(
    "retrieve(self, identifier: Dataset) -> Sequence[Dataset]",
    "Return the instances a C-GET or C-MOVE ``identifier`` names.",
)
_SHAPES: dict[Dimse, tuple[str, str, tuple[BackendMethod, ...]]] = {
    Dimse.C_ECHO: ("event: Event", "int", ()),
    Dimse.C_STORE: (
        _N_PARAMS,
        "int",
        (BackendMethod("store(self, dataset: Dataset) -> None", "Keep a received instance."),),
    ),
    Dimse.C_FIND: (_N_PARAMS, "Iterator[tuple[int, Dataset | None]]", (_FIND,)),
    Dimse.C_GET: (_N_PARAMS, "Iterator[Any]", (_RETRIEVE,)),
    Dimse.C_MOVE: (
        _N_PARAMS,
        "Iterator[Any]",
        (
            _RETRIEVE,
            BackendMethod(
                "destination(self, ae_title: str) -> tuple[str, int] | None",
                "The (address, port) of move destination ``ae_title``, or None if unknown.",
            ),
        ),
    ),
    Dimse.N_EVENT_REPORT: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_event_report(self, class_uid: str, instance_uid: str, event_type: int, "
                "info: Dataset | None) -> Dataset | None",
                "Take an event report; None when there is no such instance.",
            ),
        ),
    ),
    Dimse.N_GET: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_get(self, class_uid: str, instance_uid: str, tags: list[int]) -> Dataset | None",
                "The requested attributes of an instance; None when there is no such instance.",
            ),
        ),
    ),
    Dimse.N_SET: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_set(self, class_uid: str, instance_uid: str, modification: Dataset) "
                "-> Dataset | None",
                "Apply a modification; the changed attributes, or None when there is no such "
                "instance.",
            ),
        ),
    ),
    Dimse.N_ACTION: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_action(self, class_uid: str, instance_uid: str, action_type: int, "
                "info: Dataset | None) -> Dataset | None",
                "Perform an action; its reply, or None when there is no such instance.",
            ),
        ),
    ),
    Dimse.N_CREATE: (
        _N_PARAMS,
        _N_RETURNS,
        (
            BackendMethod(
                "n_create(self, class_uid: str, instance_uid: str | None, "
                "attributes: Dataset | None) -> Dataset | None",
                "Create an instance; its attributes, or None when it cannot be created.",
            ),
        ),
    ),
    Dimse.N_DELETE: (
        _N_PARAMS,
        "int",
        (
            BackendMethod(
                "n_delete(self, class_uid: str, instance_uid: str) -> bool",
                "Delete an instance; False when there is no such instance.",
            ),
        ),
    ),
}


def enum_name(dimse: Dimse) -> str:
    """The name of ``dimse``'s status enum (``CFindStatus``)."""
    return "".join(part.capitalize() for part in dimse.value.split("-")) + "Status"


def _checked_members(page: Page, dimse: Dimse) -> tuple[tuple[str, Status], ...]:
    """``dimse``'s rows with their enum member names, each proven unique and usable here, so a
    broken invariant is an error naming the row, never a module that cannot be imported."""
    statuses = page.statuses(dimse)
    names = member_names(statuses)
    seen: dict[str, Status] = {}
    for status in statuses:
        name = names[status]
        if not is_member_name(name) or name in seen:
            raise SpecError(
                page.source,
                status.line,
                f"{dimse.value} status {code_text(status)} would be enum member {name!r}, "
                "which is not a unique Python name (a servicegen bug: please report it)",
            )
        seen[name] = status
    return tuple((names[status], status) for status in statuses)


def _checked_aliases(
    page: Page, dimse: Dimse, members: Sequence[tuple[str, Status]]
) -> tuple[tuple[str, str], ...]:
    """``dimse``'s aliases with the member each stands for (the first of its value, the one the
    enum keeps), refused as the parser refuses them: a page built by hand has not been read."""
    problems = [
        Problem(page.source, a.line, why) for a, why in alias_faults(page) if a.dimse is dimse
    ]
    if problems:
        raise SpecError.of(problems)
    canonical: dict[int, str] = {}
    for name, status in members:
        canonical.setdefault(status.first, name)
    return tuple((a.name, canonical[a.code]) for a in page.aliases if a.dimse is dimse)


def _catch_all(statuses: Sequence[Status]) -> Status | None:
    """The row a backend error is answered with: the widest range of "Unable to process" codes
    (the lowest first on a tie), else its first code alone, else 0x0110 (Processing failure).
    Chosen by code (PS3.7 Annex C's classes), never by the page's category column, and never a
    code of a specific meaning such as 0xA700 (Out of resources)."""
    first, last = _UNABLE_TO_PROCESS
    ranges = [s for s in statuses if s.is_range and first <= s.first and s.last <= last]
    if ranges:
        return max(ranges, key=lambda s: (s.last - s.first, -s.first))
    return _exact(statuses, first) or _exact(statuses, _GENERAL["failure"][0])


def _exact(statuses: Sequence[Status], code: int) -> Status | None:
    """The row of ``code``: its own, else a range named by it (whose member's value it is)."""
    return min((s for s in statuses if s.first == code), key=lambda s: s.is_range, default=None)


def service_view(page: Page, dimse: Dimse) -> Service:
    """Resolve one DIMSE service of ``page`` into names, roles and the handler's shape.

    Roles are chosen by what a code means, not by the order or category of the page's rows:
    success 0x0000; failure the catch-all (``_catch_all``); pending 0xFF00; cancel 0xFE00; no
    such instance 0x0112; for C-STORE data set mismatch 0xA900; for the hierarchical
    Query/Retrieve models (the runtime's ``_levels``) identifier mismatch 0xA900 and, for C-FIND,
    unsupported optional keys 0xFF01; for C-MOVE a destination gone mid-way 0xA702; and what
    pynetdicom sends because of the handler's yields, 0xB000 for C-GET and C-MOVE and 0xA801 for
    C-MOVE.
    """
    members = _checked_members(page, dimse)
    statuses = [status for _, status in members]
    names = {status: name for name, status in members}
    enum = enum_name(dimse)
    params, returns, methods = _SHAPES[dimse]

    def role(name: str, status: Status | None) -> Role | None:
        if status is not None:
            return Role(name, status.first, status, f"{enum}.{names[status]}")
        if name in _GENERAL:
            code = _GENERAL[name][0]
            return Role(name, code, None, f"0x{code:04X}")
        return None

    found: dict[str, Role | None] = {"success": role("success", _exact(statuses, 0x0000))}
    if "backend" in params:
        found["failure"] = role("failure", _catch_all(statuses))
    if dimse in (Dimse.C_FIND, Dimse.C_GET, Dimse.C_MOVE):
        found["pending"] = role("pending", _exact(statuses, 0xFF00))
        found["cancel"] = role("cancel", _exact(statuses, 0xFE00))
    if dimse is Dimse.C_STORE:
        found["dataset_mismatch"] = role("dataset_mismatch", _exact(statuses, 0xA900))
    if dimse.value.startswith("N-"):
        found["no_such_instance"] = role("no_such_instance", _exact(statuses, 0x0112))
    models = MODELS if dimse is Dimse.C_FIND else RETRIEVE_MODELS
    hierarchical = dimse in (Dimse.C_FIND, Dimse.C_GET, Dimse.C_MOVE) and any(
        sop.uid in models and dimse in sop.dimse for sop in page.sop_classes
    )
    if hierarchical and dimse is Dimse.C_FIND:
        methods = (_FIND_LEVELS,)
    if hierarchical:
        found["identifier_mismatch"] = role("identifier_mismatch", _exact(statuses, 0xA900))
        if dimse is Dimse.C_FIND:
            found["optional_keys"] = role("optional_keys", _exact(statuses, 0xFF01))
    if dimse is Dimse.C_MOVE:
        found["sub_operations_failed"] = role("sub_operations_failed", _exact(statuses, 0xA702))
    consequences: dict[str, Role | None] = {}
    if dimse in (Dimse.C_GET, Dimse.C_MOVE):
        consequences["warning"] = role("warning", _exact(statuses, 0xB000))
    if dimse is Dimse.C_MOVE:
        consequences["unknown_destination"] = role("unknown_destination", _exact(statuses, 0xA801))
    return Service(
        dimse=dimse,
        members=members,
        aliases=_checked_aliases(page, dimse, members),
        roles={name: r for name, r in found.items() if r is not None},
        consequences={name: r for name, r in consequences.items() if r is not None},
        params=params,
        returns=returns,
        methods=methods,
        hierarchical=hierarchical,
    )
