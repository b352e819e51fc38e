"""What pynetdicom alone costs for the benchmark's requests: bench_archive.py's floor column.

A pynetdicom SCP that does no archive work while it is timed. The first request of each kind
(the benchmark's untimed warm-up) is answered by the generated package's own ``FolderBackend``
and its answer kept in memory: the C-FIND response Identifiers, or the C-MOVE's instances, read
whole. Every later request yields those same objects from memory, so what is left of a figure
is pynetdicom's association, its per-message encoding and its reactors (and the client's own
cost), with the tuning the generated server applies too (pynetdicom's debug logging work off,
TCP_NODELAY and TCP_QUICKACK on each accepted connection, TCP_NODELAY and the response race
closed on the C-MOVE sub-association).
Where the served archive's figure is close to this one, the rest of its gap to DCMTK's
``dcmqrscp`` is pynetdicom's, not the archive's.

Run by bench_archive.py, from the folder holding the generated package::

    python pynetdicom_floor.py PACKAGE ARCHIVE --port N --ae-title T --destination T=HOST:PORT
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("package", help="the generated package's import name (in the cwd)")
    parser.add_argument("archive", help="the archive folder")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ae-title", required=True)
    parser.add_argument("--destination", required=True, help="TITLE=HOST:PORT")
    args = parser.parse_args()
    sys.path.insert(0, ".")
    backend_module = importlib.import_module(f"{args.package}.backend")
    handlers = importlib.import_module(f"{args.package}._handlers")
    levels = importlib.import_module(f"{args.package}._levels")
    server = importlib.import_module(f"{args.package}.server")
    address = args.destination.partition("=")[2]
    host, _, port = address.rpartition(":")
    model = levels.MODELS[StudyRootQueryRetrieveInformationModelFind]
    archive: list[Any] = []  # the backend, opened by the first request: start-up is pynetdicom's
    found: dict[str, list[Dataset]] = {}
    moved: dict[str, list[Dataset]] = {}

    def backend() -> Any:
        if not archive:
            archive.append(backend_module.FolderBackend(args.archive))
        return archive[0]

    def key(identifier: Dataset) -> str:
        return repr(sorted((int(tag), str(element.value)) for tag, element in identifier.items()))

    def on_find(event: Event) -> Iterator[tuple[int, Dataset | None]]:
        identifier = event.identifier
        request = key(identifier)  # before the backend reads it: reading converts raw values
        answers = found.get(request)
        if answers is None:
            answers = []
            for match in backend().find(identifier, levels.query(model, identifier)):
                match.RetrieveAETitle = args.ae_title
                answers.append(match)
            found[request] = answers
        for answer in answers:
            yield 0xFF00, answer

    def on_move(event: Event) -> Iterator[Any]:
        identifier = event.identifier
        request = key(identifier)
        instances = moved.get(request)
        if instances is None:
            instances = list(backend().retrieve(identifier))
            moved[request] = instances
        destination = handlers._Destination()
        yield host, int(port), {
            "contexts": handlers.storage_contexts(instances),
            "evt_handlers": destination.handlers(),
        }
        yield len(instances)
        for instance in instances:
            yield 0xFF00, instance

    server._configure_logging()  # serve's own pynetdicom and pydicom settings
    ae = AE(args.ae_title)
    for sop_class in (
        Verification,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
    ):
        ae.add_supported_context(sop_class)
    ae.start_server(
        ("127.0.0.1", args.port),
        block=True,
        evt_handlers=[
            (evt.EVT_C_FIND, on_find),
            (evt.EVT_C_MOVE, on_move),
            (evt.EVT_CONN_OPEN, server._low_latency),
        ],
    )


if __name__ == "__main__":
    main()
