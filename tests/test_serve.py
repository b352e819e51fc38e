"""End-to-end tests of the generated handlers and ``python -m generated serve``.

Every test talks DICOM over 127.0.0.1 to a real pynetdicom (or DCMTK) peer on a free port; no
part of the network is mocked. Every server a test starts is shut down by a fixture.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    BasicFilmSession,
    ColorPaletteInformationModelFind,
    ColorPaletteInformationModelGet,
    ColorPaletteInformationModelMove,
    ColorPaletteStorage,
    CTImageStorage,
    DisplaySystem,
    StorageCommitmentPushModel,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from generated import _handlers
from generated import color_palette_service_class as page
from generated.backend import FolderBackend
from generated.server import Policy, serve

from .conftest import SEED, servicegen
from .peers import free_port, require_dcmtk, stop, wait_for_echo

REPO = Path(__file__).resolve().parents[1]
LABELS = ("ALPHA", "BETA", "GAMMA")
MODULE = "color_palette_service_class"


def palette(label: str, uid: str | None = None) -> Dataset:
    """A minimal Color Palette Storage instance with File Meta Information."""
    ds = Dataset()
    ds.SOPClassUID = ColorPaletteStorage
    ds.SOPInstanceUID = uid or generate_uid()
    ds.ContentLabel = label
    ds.ContentDescription = f"{label.title()} palette"
    ds.InstanceNumber = LABELS.index(label) + 1 if label in LABELS else 1
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def query(**keys: Any) -> Dataset:
    """A Color Palette identifier asking for SOPInstanceUID and ContentLabel."""
    ds = Dataset()
    ds.SOPInstanceUID = ""
    ds.ContentLabel = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def port_of(server: ThreadedAssociationServer) -> int:
    port: int = server.server_address[1]
    return port


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three Color Palette files written with pydicom."""
    path = tmp_path / "palettes"
    path.mkdir()
    for label in LABELS:
        palette(label).save_as(path / f"{label}.dcm", enforce_file_format=True)
    return path


@pytest.fixture
def uids(folder: Path) -> dict[str, str]:
    """ContentLabel -> SOPInstanceUID of the folder's instances."""
    found = (dcmread(path) for path in folder.iterdir())
    return {str(ds.ContentLabel): str(ds.SOPInstanceUID) for ds in found}


@pytest.fixture
def start() -> Iterator[Callable[..., ThreadedAssociationServer]]:
    """Start ``serve(MODULE, ...)`` on a free port; shut every AE started down afterwards."""
    servers: list[ThreadedAssociationServer] = []

    def start_server(folder: Path | None = None, **kwargs: Any) -> ThreadedAssociationServer:
        server = serve(MODULE, folder, port=0, block=False, **kwargs)
        servers.append(server)
        return server

    try:
        yield start_server
    finally:
        for server in servers:
            server.ae.shutdown()


class StoreSCP:
    """A pynetdicom storage SCP that keeps what it receives."""

    def __init__(self, *sop_classes: str) -> None:
        self.received: list[Dataset] = []
        self.ae = AE("STORE")
        self.ae.add_supported_context(Verification)
        for uid in sop_classes:
            self.ae.add_supported_context(uid)
        handlers: list[Any] = [(evt.EVT_C_STORE, self._store)]
        server = self.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        assert server is not None
        self.port = port_of(server)

    def _store(self, event: Event) -> int:
        self.received.append(event.dataset)
        return 0x0000


@pytest.fixture
def store_scp() -> Iterator[Callable[..., StoreSCP]]:
    scps: list[StoreSCP] = []

    def make(*sop_classes: str) -> StoreSCP:
        scp = StoreSCP(*sop_classes)
        scps.append(scp)
        return scp

    try:
        yield make
    finally:
        for scp in scps:
            scp.ae.shutdown()


class Peer:
    """A stock pynetdicom SCU association with the served module (released on close)."""

    def __init__(self, port: int, *contexts: str, get_storage: bool = False) -> None:
        self.received: list[Dataset] = []
        self.ae = AE("PEER")
        for uid in contexts:
            self.ae.add_requested_context(uid)
        roles: list[Any] = []
        if get_storage:
            self.ae.add_requested_context(ColorPaletteStorage)
            roles.append(build_role(ColorPaletteStorage, scp_role=True))
        handlers: list[Any] = [(evt.EVT_C_STORE, self._store)]
        self.assoc = self.ae.associate(
            "127.0.0.1", port, ae_title="SERVICEGEN", ext_neg=roles, evt_handlers=handlers
        )
        assert self.assoc.is_established

    def _store(self, event: Event) -> int:
        self.received.append(event.dataset)
        return 0x0000

    def find(self, identifier: Dataset) -> tuple[list[Dataset], int]:
        """The matches and the final status of a C-FIND."""
        responses = list(self.assoc.send_c_find(identifier, ColorPaletteInformationModelFind))
        for status, match in responses[:-1]:
            assert status.Status == page.CFindStatus.MATCHES_CONTINUING
            assert match is not None
        final, identifier_ = responses[-1]
        assert identifier_ is None
        return [match for _, match in responses[:-1] if match is not None], int(final.Status)

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()
        self.ae.shutdown()


@pytest.fixture
def connect() -> Iterator[Callable[..., Peer]]:
    peers: list[Peer] = []

    def make(port: int, *contexts: str, get_storage: bool = False) -> Peer:
        peer = Peer(port, *contexts, get_storage=get_storage)
        peers.append(peer)
        return peer

    try:
        yield make
    finally:
        for peer in peers:
            peer.close()


def labels(matches: list[Dataset]) -> list[str]:
    return sorted(str(match.ContentLabel) for match in matches)


# C-FIND


def test_c_find_universal(start: Any, connect: Any, folder: Path) -> None:
    peer = connect(port_of(start(folder)), ColorPaletteInformationModelFind)
    matches, final = peer.find(query())
    assert final == page.CFindStatus.SUCCESS
    assert labels(matches) == list(LABELS)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # pydicom frowns on "*" in CS
def test_c_find_wildcard(start: Any, connect: Any, folder: Path) -> None:
    peer = connect(port_of(start(folder)), ColorPaletteInformationModelFind)
    assert labels(peer.find(query(ContentLabel="*MMA"))[0]) == ["GAMMA"]
    assert labels(peer.find(query(ContentLabel="?E*"))[0]) == ["BETA"]
    matches, final = peer.find(query(ContentLabel="NONE*"))
    assert (matches, final) == ([], page.CFindStatus.SUCCESS)


def test_c_find_uid_list(start: Any, connect: Any, folder: Path, uids: dict[str, str]) -> None:
    peer = connect(port_of(start(folder)), ColorPaletteInformationModelFind)
    wanted = [uids["ALPHA"], uids["GAMMA"]]
    matches, final = peer.find(query(SOPInstanceUID=wanted))
    assert final == page.CFindStatus.SUCCESS
    assert sorted(str(match.SOPInstanceUID) for match in matches) == sorted(wanted)


def test_consecutive_finds_on_one_association_stay_apart(
    start: Any, connect: Any, folder: Path
) -> None:
    """Each query ends with exactly one final response, so the next one gets only its own."""
    peer = connect(port_of(start(folder)), ColorPaletteInformationModelFind)
    for label in LABELS * 2:
        matches, final = peer.find(query(ContentLabel=label))
        assert (labels(matches), final) == ([label], page.CFindStatus.SUCCESS)


class ListBackend:
    """An in-memory backend whose find/retrieve results are given, optionally slowed down."""

    def __init__(self, found: list[Any], delay: float = 0.0, fail: bool = False) -> None:
        self.found = found
        self.delay = delay
        self.fail = fail
        self.instances = [ds for ds in found if isinstance(ds, Dataset) and "SOPClassUID" in ds]

    def find(self, identifier: Dataset) -> Iterator[Any]:
        for item in self.found:
            if self.fail:
                raise RuntimeError("backend broke")
            time.sleep(self.delay)
            yield item

    def retrieve(self, identifier: Dataset) -> Iterator[Any]:
        if self.fail:
            raise RuntimeError("backend broke")
        return iter(self.found)

    def destination(self, ae_title: str) -> tuple[str, int] | None:
        return None


def test_c_find_skips_empty_and_non_datasets(start: Any, connect: Any) -> None:
    backend = ListBackend([Dataset(), palette("ALPHA"), "junk", palette("BETA")])
    peer = connect(port_of(start(backend=backend)), ColorPaletteInformationModelFind)
    matches, final = peer.find(query())
    assert (labels(matches), final) == (["ALPHA", "BETA"], page.CFindStatus.SUCCESS)


def test_c_find_cancel(start: Any, connect: Any) -> None:
    backend = ListBackend([palette("ALPHA") for _ in range(100)], delay=0.02)
    peer = connect(port_of(start(backend=backend)), ColorPaletteInformationModelFind)
    context_id = peer.assoc.accepted_contexts[0].context_id
    responses = peer.assoc.send_c_find(query(), ColorPaletteInformationModelFind, msg_id=7)
    statuses = []
    for status, _ in responses:
        statuses.append(int(status.Status))
        if len(statuses) == 2:
            peer.assoc.send_c_cancel(7, context_id)
    assert statuses[-1] == page.CFindStatus.PROCESSING_TERMINATED
    assert 2 <= len(statuses) - 1 < 100
    assert set(statuses[:-1]) == {page.CFindStatus.MATCHES_CONTINUING}
    # The association is still usable for the next query.
    backend.found, backend.delay = [palette("BETA")], 0.0
    matches, final = peer.find(query())
    assert (labels(matches), final) == (["BETA"], page.CFindStatus.SUCCESS)


def test_c_find_failing_backend(start: Any, connect: Any) -> None:
    backend = ListBackend([palette("ALPHA")], fail=True)
    peer = connect(port_of(start(backend=backend)), ColorPaletteInformationModelFind)
    for _ in range(2):  # the association survives the failure
        assert peer.find(query()) == ([], page.CFindStatus.UNABLE_TO_PROCESS)
    assert peer.assoc.is_established


# C-GET


def get(peer: Peer, identifier: Dataset) -> list[Dataset]:
    """The status datasets of a C-GET."""
    return [
        status for status, _ in peer.assoc.send_c_get(identifier, ColorPaletteInformationModelGet)
    ]


def test_c_get_one(start: Any, connect: Any, folder: Path, uids: dict[str, str]) -> None:
    peer = connect(port_of(start(folder)), ColorPaletteInformationModelGet, get_storage=True)
    statuses = get(peer, query(SOPInstanceUID=uids["BETA"]))
    final = statuses[-1]
    assert final.Status == page.CGetStatus.SUCCESS
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 0)
    assert [str(ds.SOPInstanceUID) for ds in peer.received] == [uids["BETA"]]
    assert peer.received[0].ContentLabel == "BETA"


def test_c_get_all(start: Any, connect: Any, folder: Path) -> None:
    peer = connect(port_of(start(folder)), ColorPaletteInformationModelGet, get_storage=True)
    statuses = get(peer, query())
    pending, final = statuses[:-1], statuses[-1]
    assert [ds.Status for ds in pending] == [page.CGetStatus.SUB_OPERATIONS_CONTINUING] * 3
    assert [ds.NumberOfRemainingSuboperations for ds in pending] == [2, 1, 0]
    assert final.Status == page.CGetStatus.SUCCESS
    assert final.NumberOfCompletedSuboperations == 3
    assert labels(peer.received) == list(LABELS)


def test_c_get_counts_exactly_what_it_sends(start: Any, connect: Any) -> None:
    """A lazy result with junk in it still announces the right number of sub-operations."""
    in_memory = palette("GAMMA")
    del in_memory.file_meta  # built in memory: the handler supplies a Transfer Syntax
    backend = ListBackend([palette("ALPHA"), Dataset(), None, in_memory])
    peer = connect(
        port_of(start(backend=backend)), ColorPaletteInformationModelGet, get_storage=True
    )
    statuses = get(peer, query())
    assert statuses[0].NumberOfRemainingSuboperations == 1
    final = statuses[-1]
    assert final.Status == page.CGetStatus.SUCCESS
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (2, 0)
    assert labels(peer.received) == ["ALPHA", "GAMMA"]


def test_c_get_failing_backend(start: Any, connect: Any) -> None:
    backend = ListBackend([palette("ALPHA")], fail=True)
    peer = connect(
        port_of(start(backend=backend)), ColorPaletteInformationModelGet, get_storage=True
    )
    statuses = get(peer, query())
    assert statuses[-1].Status == page.CGetStatus.UNABLE_TO_PROCESS
    assert peer.received == [] and peer.assoc.is_established


# C-MOVE


def move(peer: Peer, identifier: Dataset, destination: str) -> list[Dataset]:
    """The status datasets of a C-MOVE."""
    responses = peer.assoc.send_c_move(identifier, destination, ColorPaletteInformationModelMove)
    return [status for status, _ in responses]


def test_c_move_uid_list_to_pynetdicom(
    start: Any, connect: Any, store_scp: Any, folder: Path, uids: dict[str, str]
) -> None:
    scp = store_scp(ColorPaletteStorage)
    server = start(folder, destinations={"STORE": ("127.0.0.1", scp.port)})
    peer = connect(port_of(server), ColorPaletteInformationModelMove)
    wanted = [uids["ALPHA"], uids["GAMMA"]]
    statuses = move(peer, query(SOPInstanceUID=wanted), "STORE")
    final = statuses[-1]
    assert final.Status == page.CMoveStatus.SUCCESS
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (2, 0)
    assert sorted(str(ds.SOPInstanceUID) for ds in scp.received) == sorted(wanted)


def test_c_move_unknown_destination(start: Any, connect: Any, folder: Path) -> None:
    peer = connect(port_of(start(folder)), ColorPaletteInformationModelMove)
    statuses = move(peer, query(), "NOBODY")
    assert [ds.Status for ds in statuses] == [page.CMoveStatus.MOVE_DESTINATION_UNKNOWN]


def test_c_move_to_destination_without_the_storage_class(
    start: Any, connect: Any, store_scp: Any, folder: Path
) -> None:
    """A known destination that takes none of the instances fails them; it is not unknown."""
    scp = store_scp(CTImageStorage)
    server = start(folder, destinations={"STORE": ("127.0.0.1", scp.port)})
    peer = connect(port_of(server), ColorPaletteInformationModelMove)
    final = move(peer, query(), "STORE")[-1]
    assert final.Status != page.CMoveStatus.MOVE_DESTINATION_UNKNOWN
    assert final.Status == page.CMoveStatus.OUT_OF_RESOURCES_UNABLE_TO_PERFORM
    assert final.NumberOfFailedSuboperations == 3 and scp.received == []


def test_c_move_failing_backend(start: Any, connect: Any, store_scp: Any) -> None:
    scp = store_scp(ColorPaletteStorage)

    class Failing(ListBackend):
        def destination(self, ae_title: str) -> tuple[str, int] | None:
            return ("127.0.0.1", scp.port) if ae_title == "STORE" else None

    backend = Failing([palette("ALPHA")], fail=True)
    peer = connect(port_of(start(backend=backend)), ColorPaletteInformationModelMove)
    assert move(peer, query(), "STORE")[-1].Status == page.CMoveStatus.UNABLE_TO_PROCESS
    assert scp.received == [] and peer.assoc.is_established


DCMTK_CONFIG = """\
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = OppositeEndianExplicit
TransferSyntax3 = LittleEndianImplicit

[[PresentationContexts]]
[Palettes]
PresentationContext1 = VerificationSOPClass\\Uncompressed
PresentationContext2 = 1.2.840.10008.5.1.4.39.1\\Uncompressed

[[Profiles]]
[Palettes]
PresentationContexts = Palettes
"""


@pytest.fixture
def dcmtk_storescp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """DCMTK's storescp accepting Color Palette Storage; yields (port, output folder)."""
    binary = require_dcmtk("storescp")
    config = tmp_path / "storescp.cfg"
    config.write_text(DCMTK_CONFIG)
    output = tmp_path / "received"
    output.mkdir()
    port = free_port()
    command = [binary, "-od", str(output), "-xf", str(config), "Palettes", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_echo(port, process)
        yield port, output
    finally:
        stop(process)


def test_c_move_to_dcmtk_storescp(
    start: Any, connect: Any, folder: Path, uids: dict[str, str], dcmtk_storescp: Any
) -> None:
    port, output = dcmtk_storescp
    server = start(folder, destinations={"DCMTK": ("127.0.0.1", port)})
    peer = connect(port_of(server), ColorPaletteInformationModelMove)
    final = move(peer, query(), "DCMTK")[-1]
    assert final.Status == page.CMoveStatus.SUCCESS
    assert final.NumberOfCompletedSuboperations == 3
    arrived = {str(dcmread(path).SOPInstanceUID) for path in output.iterdir()}
    assert arrived == set(uids.values())


# A user's own AE


@pytest.fixture
def own_ae() -> Iterator[Callable[[Any], int]]:
    """Serve the page from a plain ``AE`` set up only with the module's public calls, as a user
    of the module would: ``configure(ae)`` and ``handlers(backend)``; returns the port."""
    aes: list[AE] = []

    def start_own(backend: Any) -> int:
        ae = page.configure(AE("MINE"))
        aes.append(ae)
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=page.handlers(backend))
        assert server is not None
        return port_of(server)

    try:
        yield start_own
    finally:
        for ae in aes:
            ae.shutdown()


def test_a_users_own_ae_serves_every_service_after_configure(
    own_ae: Any, connect: Any, store_scp: Any, folder: Path, uids: dict[str, str]
) -> None:
    """``configure`` gives the AE the page's contexts and C-GET's storage role; C-MOVE's
    handler proposes the moved instances' contexts itself, so the AE needs no requested ones."""
    scp = store_scp(ColorPaletteStorage)
    port = own_ae(FolderBackend(folder, {"STORE": ("127.0.0.1", scp.port)}))
    peer = connect(port, *page.SOP_CLASSES.values(), get_storage=True)
    assert labels(peer.find(query())[0]) == list(LABELS)
    final = get(peer, query(SOPInstanceUID=uids["BETA"]))[-1]
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, 1)
    assert [str(ds.ContentLabel) for ds in peer.received] == ["BETA"]
    final = move(peer, query(SOPInstanceUID=[uids["ALPHA"], uids["GAMMA"]]), "STORE")[-1]
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, 2)
    assert labels(scp.received) == ["ALPHA", "GAMMA"]


def test_a_users_own_ae_fails_sub_operations_to_a_destination_taking_none(
    own_ae: Any, connect: Any, store_scp: Any, folder: Path
) -> None:
    """Without the storage class at the destination, the move still associates (Verification
    is proposed with the instances' contexts) and fails each sub-operation: not 0xA801."""
    scp = store_scp(CTImageStorage)
    port = own_ae(FolderBackend(folder, {"STORE": ("127.0.0.1", scp.port)}))
    peer = connect(port, ColorPaletteInformationModelMove)
    final = move(peer, query(), "STORE")[-1]
    assert (final.Status, final.NumberOfFailedSuboperations) == (0xA702, 3)
    assert scp.received == []


def test_configure_adds_the_pages_contexts_and_cget_storage_roles() -> None:
    ae = page.configure(AE(), [ColorPaletteStorage, CTImageStorage])
    contexts = {str(cx.abstract_syntax): cx for cx in ae.supported_contexts}
    assert sorted(contexts) == sorted(
        [*page.SOP_CLASSES.values(), ColorPaletteStorage, CTImageStorage]
    )
    assert [
        (cx.scu_role, cx.scp_role)
        for cx in (contexts[ColorPaletteStorage], contexts[CTImageStorage])
    ] == [(True, True)] * 2
    assert (
        contexts[ColorPaletteInformationModelGet].scu_role,
        contexts[ColorPaletteInformationModelGet].scp_role,
    ) == (None, None)
    default = {str(cx.abstract_syntax) for cx in page.configure(AE()).supported_contexts}
    assert {ColorPaletteStorage, CTImageStorage} <= default
    assert len(default) == 3 + len(_handlers.STORAGE_SOP_CLASSES)


# Serving


def test_served_sockets_are_not_delayed_by_nagle(start: Any, connect: Any, folder: Path) -> None:
    """Stock pynetdicom never sets TCP_NODELAY, so a one-match C-FIND waits ~88 ms for Nagle and
    delayed ACK; the served SCP sets it on every accepted socket (the timing itself is measured
    in benchmarks/bench_latency.py, not here)."""
    server = start(folder)
    peer = connect(port_of(server), ColorPaletteInformationModelFind)
    matches, final = peer.find(query(ContentLabel="BETA"))
    assert (labels(matches), final) == (["BETA"], page.CFindStatus.SUCCESS)
    (assoc,) = server.active_associations
    sock = assoc.dul.socket.socket
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_cli_serves_logs_and_stops_on_sigterm(folder: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "generated", "serve", MODULE, str(folder), "--port", str(port)]
    command += ["--ae-title", "CLI", "--destination", "ELSEWHERE=127.0.0.1:104"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_echo(port, process, called="CLI")
        ae = AE("CLIPEER")
        ae.add_requested_context(ColorPaletteInformationModelFind)
        assoc = ae.associate("127.0.0.1", port, ae_title="CLI")
        responses = list(
            assoc.send_c_find(query(ContentLabel="ALPHA"), ColorPaletteInformationModelFind)
        )
        assoc.release()
        ae.shutdown()
        assert [int(status.Status) for status, _ in responses] == [0xFF00, 0x0000]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = process.stdout.read().decode() if process.stdout else ""
    request_lines = [line for line in log.splitlines() if "C-FIND from CLIPEER" in line]
    assert len(request_lines) == 1, log
    assert "Color Palette" in request_lines[0] and "127.0.0.1" in request_lines[0]


def test_cli_policy_called_ae_title_and_a_destinations_file(
    folder: Path, store_scp: Any, tmp_path: Path
) -> None:
    """By default a peer must call the AE by its title; ``--any-called-ae`` lifts that. C-MOVE
    destinations come from ``--destinations FILE`` as well as ``--destination``."""
    scp = store_scp(ColorPaletteStorage)
    listed = tmp_path / "destinations.txt"
    listed.write_text(f"# where C-MOVE may send\n\nSTORE = 127.0.0.1:{scp.port}  # a viewer\n")
    for extra, others_accepted in (((), False), (("--any-called-ae",), True)):
        port = free_port()
        command = [sys.executable, "-m", "generated", "serve", MODULE, str(folder)]
        command += ["--port", str(port), "--destinations", str(listed), *extra]
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            wait_for_echo(port, process)
            peer = AE("PEER")
            peer.add_requested_context(ColorPaletteInformationModelMove)
            other = peer.associate("127.0.0.1", port, ae_title="SOMEONE-ELSE")
            assert other.is_established is others_accepted
            if other.is_established:
                other.release()
            assoc = peer.associate("127.0.0.1", port, ae_title="SERVICEGEN")
            final = list(assoc.send_c_move(query(), "STORE", ColorPaletteInformationModelMove))[-1]
            assoc.release()
            peer.shutdown()
            assert (final[0].Status, final[0].NumberOfCompletedSuboperations) == (0x0000, 3)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert len(scp.received) == 6


def test_policy_limits_the_associations_at_once(start: Any, connect: Any, folder: Path) -> None:
    server = start(folder, policy=Policy(max_associations=1))
    connect(port_of(server), ColorPaletteInformationModelFind)
    second = AE("SECOND")
    second.add_requested_context(ColorPaletteInformationModelFind)
    try:
        assoc = second.associate("127.0.0.1", port_of(server), ae_title="SERVICEGEN")
        assert not assoc.is_established
    finally:
        second.shutdown()


def test_cli_help_shows_every_default() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "generated", "serve", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = " ".join(result.stdout.split())
    for default in ("127.0.0.1", "11112", "SERVICEGEN", "none"):
        assert f"(default: {default})" in text


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "generated", "serve", MODULE, str(tmp_path / "missing")]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "not a folder" in result.stderr
    command = [sys.executable, "-m", "generated", "serve", MODULE, str(tmp_path)]
    command += ["--destination", "NOPORT=host"]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "AE=HOST:PORT" in result.stderr


# N-services, bound directly to pynetdicom over the network

N_ROLES = _handlers.Roles(success=0x0000, failure=0x0110, no_such_instance=0x0112)


class Instances:
    """A dict of SOP instances implementing the N-service backend calls."""

    def __init__(self) -> None:
        self.items: dict[str, Dataset] = {}
        self.calls: list[tuple[Any, ...]] = []

    def n_get(self, class_uid: str, uid: str, tags: list[int]) -> Dataset | None:
        found = self.items.get(uid)
        if found is None:
            return None
        reply = Dataset()
        for tag in tags:
            if tag in found:
                reply.add(found[tag])
        return reply

    def n_set(self, class_uid: str, uid: str, modification: Dataset) -> Dataset | None:
        if uid not in self.items:
            return None
        self.items[uid].update(modification)
        return modification

    def n_action(self, class_uid: str, uid: str, action: int, info: Dataset | None) -> Any:
        if uid == "1.2.3.666":
            raise RuntimeError("printer on fire")
        self.calls.append(("action", uid, action, info))
        return Dataset() if uid in self.items else None

    def n_create(self, class_uid: str, uid: str | None, attributes: Dataset | None) -> Dataset:
        created = Dataset()
        created.SOPInstanceUID = uid or "1.2.3.4.5"
        if attributes is not None:
            created.update(attributes)
        self.items[str(created.SOPInstanceUID)] = created
        return created

    def n_delete(self, class_uid: str, uid: str) -> bool:
        return self.items.pop(uid, None) is not None

    def n_event_report(self, class_uid: str, uid: str, kind: int, info: Dataset | None) -> Any:
        self.calls.append(("event", uid, kind, info))
        return Dataset()


def test_n_service_handlers(connect: Any) -> None:
    backend = Instances()
    contexts = (DisplaySystem, BasicFilmSession, StorageCommitmentPushModel)
    ae = AE("NSCP")
    for uid in contexts:
        ae.add_supported_context(uid)
    bound: list[Any] = [
        (evt.EVT_N_GET, _handlers.n_get, [backend, N_ROLES]),
        (evt.EVT_N_SET, _handlers.n_set, [backend, N_ROLES]),
        (evt.EVT_N_ACTION, _handlers.n_action, [backend, N_ROLES]),
        (evt.EVT_N_CREATE, _handlers.n_create, [backend, N_ROLES]),
        (evt.EVT_N_DELETE, _handlers.n_delete, [backend, N_ROLES]),
        (evt.EVT_N_EVENT_REPORT, _handlers.n_event_report, [backend, N_ROLES]),
    ]
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=bound)
    assert server is not None
    try:
        assoc = connect(port_of(server), *contexts).assoc
        attributes = Dataset()
        attributes.NumberOfCopies = 2
        status, created = assoc.send_n_create(attributes, BasicFilmSession, None)
        assert status.Status == 0x0000 and created.NumberOfCopies == 2
        assert "1.2.3.4.5" in backend.items
        modification = Dataset()
        modification.NumberOfCopies = 3
        assert assoc.send_n_set(modification, BasicFilmSession, "1.2.3.4.5")[0].Status == 0
        status, reply = assoc.send_n_get([0x20000010], BasicFilmSession, "1.2.3.4.5")
        assert status.Status == 0 and reply.NumberOfCopies == 3
        assert assoc.send_n_get([0x20000010], BasicFilmSession, "9.9")[0].Status == 0x0112
        assert assoc.send_n_action(None, 1, BasicFilmSession, "1.2.3.4.5")[0].Status == 0
        assert backend.calls[-1] == ("action", "1.2.3.4.5", 1, None)
        assert assoc.send_n_action(None, 1, BasicFilmSession, "1.2.3.666")[0].Status == 0x0110
        info = Dataset()
        info.TransactionUID = "1.2.3.7"
        status, _ = assoc.send_n_event_report(
            info, 2, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1"
        )
        assert status.Status == 0 and backend.calls[-1][:3] == (
            "event",
            "1.2.840.10008.1.20.1.1",
            2,
        )
        assert assoc.send_n_delete(BasicFilmSession, "1.2.3.4.5").Status == 0
        assert assoc.send_n_delete(BasicFilmSession, "1.2.3.4.5").Status == 0x0112
    finally:
        ae.shutdown()


def test_roles_contract() -> None:
    roles = _handlers.Roles(
        success=page.CFindStatus.SUCCESS, failure=page.CFindStatus.UNABLE_TO_PROCESS
    )
    assert (roles.pending, roles.cancel, roles.no_such_instance) == (None, None, None)
    with pytest.raises(AttributeError):
        roles.success = 1  # type: ignore[misc]


def test_serving_two_pages_that_define_one_sop_class_is_refused(tmp_path: Path) -> None:
    """Every request for a SOP class two pages define would go to one of them: the command
    refuses with one line naming both, before it indexes the folder or listens."""
    spec = tmp_path / "spec"
    spec.mkdir()
    for name in ("first", "second"):
        shutil.copy(SEED, spec / f"{name}.rst")
    assert (
        servicegen("generate", "--spec", str(spec), "--out", str(tmp_path / "pkg")).returncode == 0
    )
    command = [sys.executable, "-m", "pkg", "serve", "first", "second", str(tmp_path / "missing")]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].endswith(
        "SOP class 1.2.840.10008.5.1.4.39.2 is defined by both first and second:"
        " serve one of them"
    )
