"""C-FIND latency and throughput: a stock pynetdicom SCP against the served generated module.

Both SCPs answer from the same FolderBackend data, so the difference is the handler and the
transport settings (the served one sets TCP_NODELAY and TCP_QUICKACK). The client is always a
stock pynetdicom SCU over 127.0.0.1. Run from the repository root::

    python benchmarks/bench_latency.py [--rounds 200] [--instances 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ColorPaletteInformationModelFind,
    ColorPaletteStorage,
)
from pynetdicom.transport import ThreadedAssociationServer

from generated.backend import FolderBackend
from generated.server import serve

MODULE = "color_palette_service_class"


def palette(index: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = ColorPaletteStorage
    ds.SOPInstanceUID = generate_uid()
    ds.ContentLabel = f"PALETTE{index:05d}"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def backend_with(count: int, folder: str) -> FolderBackend:
    """A FolderBackend over an empty folder, filled in memory."""
    backend = FolderBackend(folder)
    for index in range(count):
        backend.store(palette(index))
    return backend


def stock_scp(backend: FolderBackend) -> ThreadedAssociationServer:
    """The textbook pynetdicom C-FIND SCP: yield Pending per match, no socket tuning."""

    def handle_find(event: Event) -> Iterator[tuple[int, Dataset]]:
        for match in backend.find(event.identifier):
            yield 0xFF00, match

    ae = AE("STOCK")
    ae.add_supported_context(ColorPaletteInformationModelFind)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, handle_find)]
    )
    assert server is not None
    return server


def generated_scp(backend: FolderBackend) -> ThreadedAssociationServer:
    return serve(MODULE, None, port=0, block=False, backend=backend)


def query(label: str) -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = ""
    ds.ContentLabel = label
    return ds


def with_association(server: ThreadedAssociationServer, work: Callable[[Any], float]) -> float:
    ae = AE("BENCH")
    ae.add_requested_context(ColorPaletteInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.server_address[1], ae_title="SERVICEGEN")
    assert assoc.is_established
    try:
        return work(assoc)
    finally:
        assoc.release()
        ae.shutdown()


def find(assoc: Any, identifier: Dataset) -> int:
    """Run one C-FIND; return the number of matches (and check it ended in Success)."""
    responses = list(assoc.send_c_find(identifier, ColorPaletteInformationModelFind))
    assert responses[-1][0].Status == 0x0000, responses[-1][0]
    return len(responses) - 1


def median_round_trip(server: ThreadedAssociationServer, rounds: int) -> float:
    def work(assoc: Any) -> float:
        times = []
        for _ in range(rounds + 10):
            began = time.perf_counter()
            assert find(assoc, query("PALETTE00001")) == 1
            times.append(time.perf_counter() - began)
        return statistics.median(times[10:])

    return with_association(server, work)


def matches_per_second(server: ThreadedAssociationServer, expected: int) -> float:
    def work(assoc: Any) -> float:
        began = time.perf_counter()
        assert find(assoc, query("")) == expected
        return expected / (time.perf_counter() - began)

    return with_association(server, work)


def measure(make: Callable[[FolderBackend], ThreadedAssociationServer], args: Any) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        small = make(backend_with(3, folder))
        try:
            latency = median_round_trip(small, args.rounds)
        finally:
            small.ae.shutdown()
        big = make(backend_with(args.instances, folder))
        try:
            rate = matches_per_second(big, args.instances)
        finally:
            big.ae.shutdown()
    return [latency, rate]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=200, help="C-FINDs timed for the median")
    parser.add_argument("--instances", type=int, default=10_000, help="instances for throughput")
    args = parser.parse_args()
    stock_latency, stock_rate = measure(stock_scp, args)
    ours_latency, ours_rate = measure(generated_scp, args)
    print(f"one-match C-FIND, median round trip over {args.rounds} requests:")
    print(f"  stock pynetdicom SCP   {stock_latency * 1000:8.2f} ms")
    print(f"  served generated SCP   {ours_latency * 1000:8.2f} ms")
    print(f"  stock / generated      {stock_latency / ours_latency:8.1f}x faster")
    print(f"universal C-FIND over {args.instances} in-memory instances:")
    print(f"  stock pynetdicom SCP   {stock_rate:8.0f} matches/s")
    print(f"  served generated SCP   {ours_rate:8.0f} matches/s")
    print(f"  generated / stock      {ours_rate / stock_rate:8.2f}x")


if __name__ == "__main__":
    main()
