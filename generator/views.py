"""What the page template needs of a page: per DIMSE service its enum and table names, merged
rows, the codes its handler sends and the handler's shape (a view model per output, so the
templates hold no logic beyond loops)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generator.errors import SpecError
from generator.model import Category, Dimse, Page, Status, member_names


@dataclass(frozen=True)
class BackendMethod:
    signature: str
    doc: str


@dataclass(frozen=True)
class Service:
    """What the page template needs of one DIMSE service: names, merged rows, handler shape."""

    dimse: Dimse
    members: tuple[tuple[str, Status], ...]
    roles: Mapping[str, str]
    """The ``_handlers.Roles`` fields: the codes the handler itself chooses, by member name."""
    consequences: Mapping[str, str]
    """Codes pynetdicom sends because of what the handler yielded (0xB000, 0xA801)."""
    runtime: str
    params: str
    returns: str
    methods: tuple[BackendMethod, ...]

    @property
    def enum_name(self) -> str:
        return "".join(part.capitalize() for part in self.dimse.value.split("-")) + "Status"

    @property
    def table_name(self) -> str:
        return f"{self.dimse.ident}_STATUSES"

    @property
    def handler(self) -> str:
        return f"handle_{self.dimse.ident.lower()}"

    @property
    def uses_backend(self) -> bool:
        return "backend" in self.params

    @property
    def args(self) -> str:
        return "event, backend" if self.uses_backend else "event"

    @property
    def roles_by_member(self) -> dict[str, str]:
        outcomes = {**self.roles, **self.consequences}
        return {member: _ROLE_DOCS[role] for role, member in outcomes.items()}


_ROLE_DOCS = {
    "success": "sent when the request completes",
    "failure": "sent when the backend raises",
    "pending": "sent per match or sub-operation",
    "cancel": "sent when the peer cancels",
    "warning": "sent by pynetdicom when a sub-operation fails",
    "unknown_destination": "sent by pynetdicom when the backend knows no such destination",
    "no_such_instance": "sent when the backend finds no such instance",
}

_N_PARAMS = "event: Event, backend: Backend"
_N_RETURNS = "tuple[int, Dataset | None]"
_FIND = BackendMethod(
    "find(self, identifier: Dataset) -> Iterable[Dataset]",
    "Yield the matches for a C-FIND ``identifier``, each holding only the requested keys.",
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


def _pick(members: Sequence[tuple[str, Status]], category: Category, *preferred: int) -> str | None:
    """The member of ``category`` whose first code comes first in ``preferred``, else the first
    member of that category at all."""
    of_category = [(name, s) for name, s in members if s.category is category]
    for code in preferred:
        for name, status in of_category:
            if status.first == code:
                return name
    return of_category[0][0] if of_category else None


def _failure(members: Sequence[tuple[str, Status]]) -> str | None:
    """The catch-all failure: a range such as 0xC000 to 0xCFFF ("Unable to process") if the page
    has one, else 0x0110 (Processing failure), else the first failure in 0xCxxx, else any."""
    for name, status in members:
        if status.category is Category.FAILURE and status.is_range:
            return name
    failures = [(name, s) for name, s in members if s.category is Category.FAILURE]
    for name, status in failures:
        if status.first == 0x0110 or 0xC000 <= status.first <= 0xCFFF:
            return name
    return failures[0][0] if failures else None


def _exact(members: Sequence[tuple[str, Status]], code: int) -> str | None:
    return next((name for name, status in members if status.first == code), None)


def service_view(page: Page, dimse: Dimse) -> Service:
    """Resolve one DIMSE service of ``page`` into names, roles and the handler's shape."""
    statuses = page.statuses(dimse)
    names = member_names(statuses)
    members = tuple((names[s], s) for s in statuses)
    roles: dict[str, str | None] = {
        "success": _pick(members, Category.SUCCESS, 0x0000),
        "failure": _failure(members),
        "pending": _pick(members, Category.PENDING, 0xFF00),
        "cancel": _pick(members, Category.CANCEL, 0xFE00),
    }
    consequences: dict[str, str | None] = {}
    if dimse in (Dimse.C_GET, Dimse.C_MOVE):
        consequences["warning"] = _pick(members, Category.WARNING, 0xB000)
    if dimse is Dimse.C_MOVE:
        consequences["unknown_destination"] = _exact(members, 0xA801)
    if dimse.value.startswith("N-"):
        roles["no_such_instance"] = _exact(members, 0x0112)
    for role in ("success", "failure"):
        if roles[role] is None:
            line = next((t.line for t in page.status_tables if t.dimse is dimse), 1)
            raise SpecError(page.source, line, f"the {dimse.value} tables define no {role} status")
    params, returns, methods = _SHAPES[dimse]
    return Service(
        dimse=dimse,
        members=members,
        roles={role: member for role, member in roles.items() if member is not None},
        consequences={role: member for role, member in consequences.items() if member},
        runtime=dimse.ident.lower(),
        params=params,
        returns=returns,
        methods=methods,
    )
