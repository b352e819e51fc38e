"""The ``servicegen`` command: argument parsing, and errors turned into one line and an exit code.

Exit codes: 0 success; 1 ``check`` found drift; 2 bad input (a page, a template, the output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from generator import BUILTIN_TEMPLATES, writer
from generator.console import NORMAL, QUIET, VERBOSE, Console
from generator.errors import ServicegenError
from generator.findings import Severity
from generator.pages import page_paths

if TYPE_CHECKING:
    from generator.model import Page

# Each command imports the modules it needs when it runs, so ``check`` of an up-to-date tree
# (the pre-commit case) loads neither Jinja2, black, docutils nor pydicom.


class _Version(argparse.Action):
    """``--version``: the installed release, looked up only when asked for."""

    def __call__(self, top: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version("servicegen")
        except PackageNotFoundError:
            release = "unknown"
        print(f"{top.prog} {release}")
        top.exit()


def _path(text: str) -> Path:
    """A path argument; an empty one is refused, not read as ``Path("")``, the current folder."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path names no file; write '.' for this folder")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="servicegen",
        description="Generate pynetdicom service modules and docs from RST service-class pages.",
    )
    top.add_argument(
        "--version", action=_Version, nargs=0, help="show the installed release and exit"
    )
    _add_verbosity(top, "verbosity_top")
    sub = top.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="render spec pages into the output package and docs")
    chk = sub.add_parser("check", help="exit 1 if the output differs from a fresh generation")
    for command in (gen, chk):
        command.add_argument(
            "--spec", type=_path, default=Path("spec"), help="pages (default spec/)"
        )
        command.add_argument(
            "--out", type=_path, default=Path("generated"), help="output (default generated/)"
        )
        command.add_argument(
            "--templates", type=_path, help="directory whose templates override the built-in ones"
        )
    mdl = sub.add_parser("model", help="print a page's model as JSON")
    mdl.add_argument("page", type=_path)
    lnt = sub.add_parser("lint", help="report what in the pages is probably wrong")
    dif = sub.add_parser(
        "diff", help="semantic changelog, generated API included, of two versions; exit 1 if any"
    )
    for side in ("old", "new"):
        dif.add_argument(side, metavar=side.upper(), help="a page, a folder, or REV:path of one")
    dif.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    dif.add_argument(
        "--fail-on",
        choices=("any", "breaking"),
        default="any",
        help="exit 1 on any change (the default), or only on one that breaks importing code",
    )
    aud = sub.add_parser("audit", help="compare the pages with the installed pynetdicom")
    for command in (lnt, aud):
        _add_findings_options(command)
    for command in sub.choices.values():
        _add_verbosity(command, "verbosity")
    return top


def _add_verbosity(command: argparse.ArgumentParser, dest: str) -> None:
    """``-q``/``-v`` on ``command``, recorded in ``dest``: they are given on the top level and
    on every subcommand, so they work before or after the subcommand's name, and
    :func:`_verbosity` refuses both together wherever each was given."""
    for flags, const, text in (
        (("-q", "--quiet"), QUIET, "print only errors and findings"),
        (("-v", "--verbose"), VERBOSE, "also say what was read, written and found equal"),
    ):
        command.add_argument(
            *flags,
            dest=dest,
            action="append_const",
            const=const,
            default=argparse.SUPPRESS,
            help=text,
        )


def _verbosity(top: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    given = set(getattr(args, "verbosity_top", [])) | set(getattr(args, "verbosity", []))
    if len(given) > 1:
        top.error("-q/--quiet and -v/--verbose cannot be used together")
    return given.pop() if given else NORMAL


def _add_findings_options(command: argparse.ArgumentParser) -> None:
    """The options of a command that reports findings (``lint``, ``audit``); the last three
    override ``[tool.servicegen.<command>]`` of the closest ``pyproject.toml``."""
    command.add_argument(
        "--spec",
        type=_path,
        default=Path("spec"),
        metavar="PAGE|DIR",
        help="a page or a folder of pages (default spec/)",
    )
    command.add_argument("--format", choices=("text", "json"), default="text")
    for option, what in (("--select", "only these"), ("--ignore", "leave out these")):
        command.add_argument(
            option,
            type=lambda text: text.split(","),
            action="extend",
            metavar="CODES",
            help=f"{what} codes, comma-separated; a start of a code such as SG2 is every SG2xx",
        )
    command.add_argument(
        "--fail-on",
        choices=[severity.value for severity in Severity],
        help="exit 1 if a finding shown is at least this severe (default warning)",
    )


def load(spec: Path, console: Console) -> Iterator[Page]:
    """Every page under ``spec`` with tables, one at a time as ``parser.iter_pages`` reads them
    (so rendering overlaps reading); a page with none (an index) is skipped, with a note once
    every page was read well, so a failing run prints only its errors. Whether a page's file
    name can name its outputs, ``render`` decides, where the outputs are assigned."""
    from generator import parser

    if not spec.is_dir():
        raise ServicegenError(f"{spec}: no such spec directory")
    skipped = []
    for page in parser.iter_pages(spec):
        if not (page.sop_classes or page.status_tables):
            skipped.append(page.source)
            continue
        console.detail(
            f"{page.source}: {len(page.sop_classes)} SOP classes, "
            f"{len(page.status_tables)} status tables"
        )
        yield page
    for source in skipped:
        console.note(f"{source}: no SOP class or status table; skipped")


def _apart(spec: Path, out: Path) -> None:
    """Refuse an output folder inside the pages' folder, or the reverse: the generated
    ``docs/*.rst`` would be read as pages on the next run, or the pages taken for stray output."""
    spec_dir, out_dir = spec.resolve(), out.resolve()
    if out_dir.is_relative_to(spec_dir):
        raise ServicegenError(f"--out {out} is inside --spec {spec}; keep them apart")
    if spec_dir.is_relative_to(out_dir):
        raise ServicegenError(f"--spec {spec} is inside --out {out}; keep them apart")


def _templates(path: Path | None) -> Path | None:
    if path is not None and not path.is_dir():
        raise ServicegenError(f"{path}: no such templates directory")
    return path


def run(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    top = build_parser()
    args = top.parse_args(argv)
    console = console or Console()
    console.verbosity = _verbosity(top, args)
    if args.command == "model":
        from generator import parser

        model = parser.read_page(args.page).to_json()
        console.report(json.dumps(model, indent=2, ensure_ascii=False) + "\n", in_json=True)
        return 0
    if args.command in ("lint", "audit"):
        return _findings(args, console)
    if args.command == "diff":
        from generator import diff

        changes = diff.changelog(args.old, args.new)
        console.report(diff.report(changes, args.format), in_json=args.format == "json")
        return 1 if any(c.breaking or args.fail_on == "any" for c in changes) else 0
    _apart(args.spec, args.out)
    # Fingerprinted before reading, so a page edited meanwhile cannot be recorded as rendered.
    templates = [t for t in (_templates(args.templates), BUILTIN_TEMPLATES) if t]
    inputs = writer.fingerprint(args.spec, templates) if args.spec.is_dir() else None
    if args.command == "check" and inputs is not None and writer.is_current(args.out, inputs):
        console.detail(f"{args.out}: up to date with {args.spec}")
        return 0
    from generator import render

    count = len(page_paths(args.spec)) if args.spec.is_dir() else 0
    console.status(f"servicegen: reading and rendering {count} pages", count)
    outputs = render.render(load(args.spec, console), _templates(args.templates), count=count)
    if args.command == "check":
        drift = writer.compare(outputs, args.out, inputs=inputs)
        for line in drift.lines():
            console.problem(f"{args.out}: {line}")
        if not drift:
            console.detail(f"{args.out}: up to date with {args.spec}")
        return 1 if drift else 0
    # The manifest is servicegen's bookkeeping, not one of the files the user asked for.
    changed = [
        path for path in writer.write(outputs, args.out, inputs=inputs) if path != writer.MANIFEST
    ]
    removed = [path for path in changed if path not in outputs]
    for path in changed:
        console.detail(f"{args.out}: {'removed' if path in removed else 'changed'} {path}")
    summary = f"{args.out}: {len(changed) - len(removed)} of {len(outputs)} files changed"
    console.summary(summary + (f", {len(removed)} removed" if removed else ""))
    return 0


def _findings(args: argparse.Namespace, console: Console) -> int:
    """``lint`` or ``audit``: the findings the settings show, and 1 if one is severe enough."""
    from generator import audit, lint
    from generator.settings import settings

    chosen = settings(
        args.command, args.spec, select=args.select, ignore=args.ignore, fail_on=args.fail_on
    )
    if args.command == "lint":
        found, report = lint.lint(args.spec), lint.report
    else:
        found, report = audit.audit(args.spec), audit.report
    findings = chosen.shown(found)
    console.report(report(findings, args.format), in_json=args.format == "json")
    return 1 if chosen.fails(findings) else 0


def main(argv: Sequence[str] | None = None) -> int:
    console = Console()
    try:
        return run(argv, console)
    except ServicegenError as exc:
        for line in exc.lines():
            console.error(line)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``servicegen lint | head -1``): stdout goes nowhere from now on,
        # so the interpreter's last flush cannot fail with a traceback either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        console.error("output closed before it was all written (broken pipe)")
        return 2


if __name__ == "__main__":
    sys.exit(main())
