"""A hostile output folder and a hostile cache (issue 10): what is already in ``generated/`` or
in the per-user cache arrives in pull requests or restored CI caches, so none of it may make
``generate`` touch anything outside the output, make ``check`` pass a tree that is not a fresh
generation, or crash either with a traceback.

Every test runs the real command (in-process ``main``, or ``python -m generator`` where a hang
or a fresh interpreter matters) on a seed page copied to a temporary folder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import py_compile
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from generator import finish, writer
from generator.cli import main

from .conftest import SEED, servicegen

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="links, FIFOs, dir_fd: Linux")

MODULE = "color_palette_service_class.py"
TAG = sys.implementation.cache_tag
MANIFEST_HEADER = "# Files written by servicegen generate; do not edit.\n"
LINK_REFUSED = "is a symbolic link; servicegen never writes through links: remove it"


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of the test's own, no ``CI`` (records on), no worker processes."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(writer.CACHE_ENV, str(cache))
    monkeypatch.setenv(finish.JOBS_ENV, "1")
    monkeypatch.delenv("CI", raising=False)
    return cache


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    folder = tmp_path / "spec"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    return folder


@pytest.fixture
def out(tmp_path: Path, spec: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A freshly generated output folder (``out`` is also the package's name)."""
    folder = tmp_path / "out"
    assert main(["generate", "--spec", str(spec), "--out", str(folder)]) == 0
    capsys.readouterr()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the output, with a file that must survive whatever the output holds."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim.txt").write_text("precious\n")
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """``servicegen ARGS`` in-process: exit status and stderr lines."""
    code = main(list(args))
    return code, capsys.readouterr().err.splitlines()


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every path below ``folder``, without following links: a file's bytes, a link's target."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[name] = path.read_bytes()
    return found


def manifest(out: Path, *lines: str) -> None:
    (out / writer.MANIFEST).write_text(MANIFEST_HEADER + "".join(f"{line}\n" for line in lines))


# Links in the output: generate refuses them, writes nothing, touches nothing outside.


@pytest.mark.parametrize("entry", ["through/victim.txt", "docs/through/victim.txt"])
def test_a_manifest_entry_through_a_linked_folder_is_refused(
    entry: str, out: Path, spec: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = out / entry.rpartition("/")[0]
    link.symlink_to(outside, target_is_directory=True)
    manifest(out, entry, MODULE)
    before = snapshot(out)
    code, err = run(capsys, "generate", "--spec", str(spec), "--out", str(out))
    assert (outside / "victim.txt").read_text() == "precious\n"
    assert (code, err) == (2, [f"servicegen: {link}: {LINK_REFUSED}"])
    assert snapshot(out) == before


def test_a_manifest_entry_naming_a_link_is_refused(
    out: Path, spec: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (out / "alias.txt").symlink_to(outside / "victim.txt")
    manifest(out, "alias.txt", MODULE)
    code, err = run(capsys, "generate", "--spec", str(spec), "--out", str(out))
    assert (code, err) == (2, [f"servicegen: {out / 'alias.txt'}: {LINK_REFUSED}"])
    assert (out / "alias.txt").is_symlink()
    assert (outside / "victim.txt").read_text() == "precious\n"


@pytest.mark.parametrize(
    "place", ["py.typed", MODULE, "docs", "docs/style.css", writer.MANIFEST, "dangling"]
)
def test_a_link_where_generate_writes_is_refused(
    place: str, out: Path, spec: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link to a file, to a folder, or to nothing, where a file or folder of the output goes:
    refused before anything is written, and nothing is written through it."""
    target = out / place
    if target.is_dir():
        shutil.rmtree(target)
        target.symlink_to(outside, target_is_directory=True)
    elif place == "dangling":
        target = out / MODULE
        target.unlink()
        target.symlink_to(outside / "created-through-the-link.py")
    else:
        target.unlink()
        target.symlink_to(outside / "victim.txt")
    (spec / SEED.name).write_text(SEED.read_text().replace("Out of resources", "Out of memory!!!"))
    before, before_outside = snapshot(out), snapshot(outside)
    code, err = run(capsys, "generate", "--spec", str(spec), "--out", str(out))
    assert (code, err) == (2, [f"servicegen: {target}: {LINK_REFUSED}"])
    assert snapshot(out) == before
    assert snapshot(outside) == before_outside


def test_a_fifo_or_folder_where_generate_writes_a_file_is_refused(
    out: Path, spec: Path, tmp_path: Path
) -> None:
    """Opening a FIFO to read it would block forever; a folder is not replaced either."""
    (out / "py.typed").unlink()
    os.mkfifo(out / "py.typed")
    result = servicegen("generate", "--spec", str(spec), "--out", str(out))
    assert result.returncode == 2
    assert result.stderr == (
        f"servicegen: {out / 'py.typed'}: is a special file where servicegen writes a file: "
        "remove it\n"
    )
    (out / "py.typed").unlink()
    (out / "py.typed").mkdir()
    (out / "py.typed" / "mine").write_text("mine")
    result = servicegen("generate", "--spec", str(spec), "--out", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"servicegen: {out / 'py.typed'}: is a folder where servicegen writes a file: remove it\n"
    )
    assert (out / "py.typed" / "mine").read_text() == "mine"


# The manifest: entries that leave the output are refused; junk is dropped and the run recovers.


@pytest.mark.parametrize("entry", ["../outside/victim.txt", "docs/../../outside/victim.txt", "/"])
def test_a_manifest_entry_leaving_the_output_is_refused(
    entry: str, out: Path, spec: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if entry == "/":
        entry = str(outside / "victim.txt")
    manifest(out, MODULE, entry)
    code, err = run(capsys, "generate", "--spec", str(spec), "--out", str(out))
    message = (
        f"servicegen: {out / writer.MANIFEST}:3: {entry!r} is outside the output folder; "
        "servicegen removes only files it wrote inside it"
    )
    assert (code, err) == (2, [message])
    assert (outside / "victim.txt").read_text() == "precious\n"


@pytest.mark.parametrize(
    "junk",
    [
        b"\xff\xfebad bytes\n",
        b"a\x00b\n",
        b"docs\n",
        b"docs/\n",
        b"./py.typed\n",
        b"docs//index.html\n",
    ],
)
def test_a_corrupt_manifest_is_dropped_and_the_run_recovers(
    junk: bytes, out: Path, spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lines servicegen cannot have written name nothing to remove: the run goes on, rewrites the
    manifest, and the next run and check are clean."""
    good = (out / writer.MANIFEST).read_bytes()
    (out / writer.MANIFEST).write_bytes(good + junk)
    code, err = run(capsys, "generate", "--spec", str(spec), "--out", str(out))
    assert (code, err) == (0, [])
    assert (out / writer.MANIFEST).read_bytes() == good
    assert (out / "docs" / "index.html").is_file()
    assert main(["generate", "--spec", str(spec), "--out", str(out)]) == 0
    assert "0 of" in capsys.readouterr().out
    assert run(capsys, "check", "--spec", str(spec), "--out", str(out)) == (0, [])


def test_a_manifest_that_is_a_folder_is_one_line(
    out: Path, spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (out / writer.MANIFEST).unlink()
    (out / writer.MANIFEST).mkdir()
    code, err = run(capsys, "generate", "--spec", str(spec), "--out", str(out))
    message = f"{out / writer.MANIFEST}: is a folder where servicegen writes a file: remove it"
    assert (code, err) == (2, [f"servicegen: {message}"])


# check: every path servicegen did not write, and bytecode not from the current source.


def tampered(source: str) -> str:
    changed = source.replace("0xC000", "0xC001", 1)
    assert changed != source
    return changed


def compile_tampered(out: Path, mode: py_compile.PycInvalidationMode, *, same_stat: bool) -> Path:
    """Bytecode of a tampered module where Python looks for the module's, the module restored;
    ``same_stat`` gives the source the tampered one's mtime, so a timestamp check passes."""
    module = out / MODULE
    genuine = module.read_bytes()
    module.write_text(tampered(genuine.decode()))
    status = module.stat()
    written = py_compile.compile(str(module), invalidation_mode=mode, doraise=True)
    assert written is not None
    pyc = Path(written)
    module.write_bytes(genuine)
    if same_stat:
        os.utime(module, ns=(status.st_atime_ns, status.st_mtime_ns))
    return pyc


def plant(what: str, out: Path, outside: Path) -> list[str]:
    """Put ``what`` into ``out``; the lines ``check`` must print for it."""
    unchecked = py_compile.PycInvalidationMode.UNCHECKED_HASH
    checked = py_compile.PycInvalidationMode.CHECKED_HASH
    pyc = f"__pycache__/color_palette_service_class.{TAG}.pyc"
    if what == "unchecked-hash pyc":
        compile_tampered(out, unchecked, same_stat=False)
        return [f"unverified bytecode: {pyc}"]
    if what == "checked-hash pyc":
        compile_tampered(out, checked, same_stat=False)
        return [f"unverified bytecode: {pyc}"]
    if what == "timestamp pyc":
        compile_tampered(out, py_compile.PycInvalidationMode.TIMESTAMP, same_stat=True)
        return [f"unverified bytecode: {pyc}"]
    if what == "another Python's pyc":  # its mtime and size match: that Python would load it
        planted = compile_tampered(out, py_compile.PycInvalidationMode.TIMESTAMP, same_stat=True)
        planted.rename(planted.with_name("color_palette_service_class.cpython-399.pyc"))
        return ["unverified bytecode: __pycache__/color_palette_service_class.cpython-399.pyc"]
    if what == "folder link":
        (out / "linked").symlink_to(outside, target_is_directory=True)
        return ["symbolic link: linked"]
    if what == "dangling link":
        (out / "docs" / "dangling.html").symlink_to(outside / "nothing")
        return ["symbolic link: docs/dangling.html"]
    if what == "link in place of a file":
        (out / "py.typed").unlink()
        (out / "py.typed").symlink_to(outside / "empty")
        (outside / "empty").write_text("")
        return ["symbolic link: py.typed"]
    if what == "linked __pycache__":
        (out / "__pycache__").symlink_to(outside, target_is_directory=True)
        return ["symbolic link: __pycache__"]
    if what == "empty folder":
        (out / "docs" / "empty").mkdir()
        return ["extra directory: docs/empty"]
    if what == "folder of files":
        (out / "junk").mkdir()
        for n in range(3):
            (out / "junk" / f"{n}.py").write_text("x = 1\n")
        return ["extra directory: junk"]
    if what == "bytecode of no docs module":  # docs/conf.py may have bytecode, nothing else
        (out / "docs" / "__pycache__").mkdir()
        (out / "docs" / "__pycache__" / f"index.{TAG}.pyc").write_bytes(b"")
        return [f"extra: docs/__pycache__/index.{TAG}.pyc"]
    if what == "bytecode of no module":
        (out / "__pycache__").mkdir()
        (out / "__pycache__" / f"gone.{TAG}.pyc").write_bytes(b"")
        return [f"extra: __pycache__/gone.{TAG}.pyc"]
    assert what == "fifo"
    os.mkfifo(out / "fifo")
    return ["special file: fifo"]


@pytest.mark.parametrize(
    "what",
    [
        "unchecked-hash pyc",
        "checked-hash pyc",
        "timestamp pyc",
        "another Python's pyc",
        "folder link",
        "dangling link",
        "link in place of a file",
        "linked __pycache__",
        "empty folder",
        "folder of files",
        "bytecode of no docs module",
        "bytecode of no module",
        "fifo",
    ],
)
def test_check_reports_what_servicegen_did_not_write(
    what: str, out: Path, spec: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "check", "--spec", str(spec), "--out", str(out)) == (0, [])  # recorded
    expected = plant(what, out, outside)
    code, err = run(capsys, "check", "--spec", str(spec), "--out", str(out))
    assert (code, err) == (1, [f"{out}: {line}" for line in expected])


def import_everything(out: Path, *flags: str) -> None:
    """Import every module of the generated package as a user would, writing bytecode."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    modules = [p.stem for p in out.glob("*.py") if p.stem != "__main__"]
    code = "import importlib\n" + "".join(
        f"importlib.import_module('out.{name}')\n" for name in modules
    )
    done = subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_check_accepts_genuine_bytecode_and_catches_a_swap(
    out: Path, spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytecode Python wrote on import (plain, -O, -OO) or a checked hash of the genuine module
    is the current source's; then one file swapped for a tampered module's is named."""
    for flags in ((), ("-O",), ("-OO",)):
        import_everything(out, *flags)
    cache = out / "__pycache__"
    assert {p.name for p in cache.iterdir()} >= {
        f"color_palette_service_class.{TAG}{opt}.pyc" for opt in ("", ".opt-1", ".opt-2")
    }
    py_compile.compile(
        str(out / "_runtime.py"),
        cfile=str(cache / f"_runtime.{TAG}.pyc"),
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    assert run(capsys, "check", "--spec", str(spec), "--out", str(out)) == (0, [])
    assert run(capsys, "check", "--spec", str(spec), "--out", str(out)) == (0, [])  # the record
    pyc = cache / f"color_palette_service_class.{TAG}.opt-1.pyc"
    evil = compile_tampered(out, py_compile.PycInvalidationMode.TIMESTAMP, same_stat=True)
    evil.rename(pyc)
    code, err = run(capsys, "check", "--spec", str(spec), "--out", str(out))
    assert (code, err) == (1, [f"{out}: unverified bytecode: __pycache__/{pyc.name}"])


def test_stale_bytecode_never_trips_check(
    out: Path, spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """generate removes the bytecode of a module it rewrites; bytecode a branch switch leaves
    (the source's mtime and size differ from those it records) is ignored by Python and check."""
    import_everything(out)
    pyc = out / "__pycache__" / f"color_palette_service_class.{TAG}.pyc"
    assert pyc.is_file()
    page = spec / SEED.name
    original = page.read_text()
    page.write_text(original.replace("Out of resources", "Out of memory!!!"))
    assert main(["generate", "--spec", str(spec), "--out", str(out)]) == 0
    assert not pyc.exists()
    assert run(capsys, "check", "--spec", str(spec), "--out", str(out)) == (0, [])
    import_everything(out)
    assert pyc.is_file()
    page.write_text(original)  # back on the first branch: files change, bytecode stays
    first = tmp_path / "first"
    assert main(["generate", "--spec", str(spec), "--out", str(first)]) == 0
    for path in first.rglob("*"):
        if path.is_file():
            shutil.copy(path, out / path.relative_to(first))
    os.utime(out / MODULE, (0, 0))
    capsys.readouterr()
    assert run(capsys, "check", "--spec", str(spec), "--out", str(out)) == (0, [])


# The result cache: a forged entry never reaches the output.


def entries(cache: Path) -> Iterator[tuple[Path, bytes]]:
    """Each result entry the cache holds (a file named by a 64-hex-digit key) and its text."""
    for path in cache.rglob("*"):
        if path.is_file() and len(path.name) == 64:
            yield path, path.read_bytes()


FORGERIES: dict[str, Callable[[str], str]] = {
    "other code": tampered,
    "another comment": lambda text: text.replace("# spec sha256:", "# spec sha-256:", 1),
    "a coding cookie": lambda text: "# -*- coding: utf-7 -*-\n" + text,
    "other html": lambda text: text.replace("Color Palette", "Colour Palette"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_result_entry_never_reaches_the_output(
    forgery: str,
    out: Path,
    spec: Path,
    environment: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An entry with the right key but other content is not used by generate (HTML, which
    could not be verified, is not cached at all), and check still names a tree tampered to
    match it."""
    target = out / ("docs/color_palette_service_class.html" if "html" in forgery else MODULE)
    genuine = target.read_text()
    forged = FORGERIES[forgery](genuine)
    assert forged != genuine
    hits = 0
    for path, text in entries(environment):
        if text == genuine.encode():
            path.write_bytes(forged.encode())
            hits += 1
    assert hits == (0 if "html" in forgery else 1)
    fresh = tmp_path / "fresh"
    assert main(["generate", "--spec", str(spec), "--out", str(fresh)]) == 0
    assert (fresh / target.relative_to(out)).read_text() == genuine
    target.write_text(forged)
    code, err = run(capsys, "check", "--spec", str(spec), "--out", str(out))
    assert (code, err) == (1, [f"{out}: stale or hand-edited: {target.relative_to(out)}"])


def test_pruning_deletes_only_the_caches_own_entries(
    spec: Path, environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SERVICEGEN_CACHE_DIR pointed at a folder of 4,010 files of the user's, some named as cache
    entries are, and enough runs to prune: none of them is deleted."""
    names = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(2000)]
    names += [f"notes-{n}.txt" for n in range(2000)]
    names += ["key", "CACHEDIR.TAG", f".{names[0]}.0123456789abcdef{writer.TEMP_SUFFIX}"]
    environment.mkdir()
    (environment / "results").mkdir()
    for n, name in enumerate(names):
        path = environment / ("results" if n % 2 else "") / name
        path.write_text(f"mine {n}\n")
        os.utime(path, (0, 0))
    for n in range(4010 - len(names)):
        (environment / f"photo-{n}.jpg").write_text("mine\n")
    before = snapshot(environment)
    assert len(before) == 4010
    monkeypatch.setattr(finish._ResultCache, "LIMIT", 3)
    page = spec / SEED.name
    original = page.read_text()
    for n in range(3):
        page.write_text(original.replace("Out of resources", f"Out of resource{n}"))
        assert main(["generate", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 0
    after = snapshot(environment)
    assert {name: after.get(name) for name in before} == before
    own = [p for p in (environment / writer.CACHE_NAME / "results").iterdir() if len(p.name) == 64]
    assert len(own) == 3


# Records: a record makes check faster, never makes it pass.


def records(cache: Path) -> Iterator[tuple[Path, dict[str, object]]]:
    """Each record the cache holds and its JSON."""
    for path in cache.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for text in (data, data.partition(b"\n")[2]):
                try:
                    record = json.loads(text)
                except ValueError:
                    continue
                if isinstance(record, dict) and "inputs" in record:
                    yield path, record


def user_key(cache: Path) -> bytes | None:
    """The key the cache marks records with, as someone who can read it would use it."""
    return next((path.read_bytes() for path in cache.rglob("key") if path.is_file()), None)


def forge_record(cache: Path, out: Path, *, key: bytes | None) -> int:
    """Make every record say ``out`` is as it now is, marked with ``key``; how many there were."""
    count = 0
    for path, record in records(cache):
        hashes = record.get("tree") or record.get("outputs")
        assert isinstance(hashes, dict)
        for name in hashes:
            if (out / name).is_file():
                hashes[name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
        payload = json.dumps(record, sort_keys=True).encode()
        mark = hmac.new(key or os.urandom(32), b"record\0" + payload, "sha256").hexdigest()
        path.write_bytes(payload if "outputs" in record else mark.encode() + b"\n" + payload)
        count += 1
    return count


@pytest.mark.parametrize("how", ["unmarked", "group-writable", "another user's"])
def test_a_forged_record_does_not_make_check_pass(
    how: str, out: Path, spec: Path, environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if how == "another user's" and os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    assert run(capsys, "check", "--spec", str(spec), "--out", str(out)) == (0, [])
    module = out / MODULE
    module.write_text(tampered(module.read_text()))
    key = None if how == "unmarked" else user_key(environment)
    assert forge_record(environment, out, key=key) == 1
    for path, _ in records(environment):
        if how == "group-writable":
            path.chmod(0o664)
        elif how == "another user's":
            os.chown(path, 4242, 4242)
    code, err = run(capsys, "check", "--spec", str(spec), "--out", str(out))
    assert (code, err) == (1, [f"{out}: stale or hand-edited: {MODULE}"])


def test_with_ci_set_check_reads_no_record(
    out: Path, spec: Path, environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In CI the cache may be restored from another run, key and all: even a record marked with
    the right key is not read, and none is written."""
    assert run(capsys, "check", "--spec", str(spec), "--out", str(out)) == (0, [])
    module = out / MODULE
    genuine = module.read_bytes()
    module.write_text(tampered(genuine.decode()))
    assert forge_record(environment, out, key=user_key(environment))
    env = {**os.environ, "CI": "true"}
    result = servicegen("check", "--spec", str(spec), "--out", str(out), env=env)
    assert (result.returncode, result.stderr) == (1, f"{out}: stale or hand-edited: {MODULE}\n")
    for path, _ in records(environment):
        path.unlink()
    module.write_bytes(genuine)
    assert servicegen("check", "--spec", str(spec), "--out", str(out), env=env).returncode == 0
    assert list(records(environment)) == []
