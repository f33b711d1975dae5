"""Every command in README.md and docs/*.md parses and names real apps, the README's make
targets exist; the cheap commands run."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import shutil
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import pytest

from preprocessing.synthetic_endoscopy import write_synthetic_kvasir

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCUMENTS = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
}
APP = re.compile(r"python -m apps\.(\w+)(.*)")
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
# Apps run for real, with the flags that make them quick; the rest need real data or
# minutes of training (EndoVAE's apps run end to end in test_endovae_apps.py), so are only parsed.
RUNNABLE = {"prepare_kvasir": ["--workers", "1"], "make_figures": []}


@dataclass
class Command:
    document: str  # README.md or docs/<page>.md
    line: int
    app: str
    argv: list[str]
    synopsis: list[list[str]]  # optional groups, "[--flag A|B]" -> [["--flag", "A|B"]]

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: python -m apps.{self.app} {shlex.join(self.argv)}"


def loop_values(block: str) -> dict[str, list[str]]:
    """The variables of `for VAR in A B; do` loops in a code block."""
    return {m[1]: m[2].split() for m in re.finditer(r"\bfor (\w+) in ([^;]+); do", block)}


def parse_command(document: str, line: int, text: str, variables: dict[str, str]) -> Command:
    text = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m[1], m[0]), text)
    app, rest = APP.search(text).groups()
    synopsis = [group.split() for group in re.findall(r"\[([^\]]*)\]", rest)]
    argv = shlex.split(re.sub(r"\[[^\]]*\]", " ", rest), comments=True)
    return Command(document, line, app, argv, synopsis)


def document_commands(document: str, text: str) -> list[Command]:
    """`python -m apps.*` commands of a document's bash blocks and inline code, in order."""
    found = []
    for block in BASH_BLOCK.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        loops = loop_values(block[1])
        lines = block[1].split("\n")
        for offset, line in enumerate(lines):
            if not APP.search(line):
                continue
            end = offset
            while lines[end].endswith("\\"):
                end += 1
            text_line = " ".join(part.rstrip("\\") for part in lines[offset : end + 1])
            used = [name for name in loops if f"${name}" in text_line]
            for values in product(*(loops[name] for name in used)):
                variables = dict(zip(used, values, strict=True))
                found.append(parse_command(document, first_line + offset, text_line, variables))
    for inline in re.finditer(r"`(python -m apps\.\w+[^`]*)`", text):
        line = text.count("\n", 0, inline.start()) + 1
        found.append(parse_command(document, line, inline[1], {}))
    return sorted(found, key=lambda c: c.line)


def readme_commands() -> list[Command]:
    """The commands of README.md, then of each docs page."""
    return [c for name, text in DOCUMENTS.items() for c in document_commands(name, text)]


COMMANDS = readme_commands()


def app_parser(app: str) -> argparse.ArgumentParser:
    assert (ROOT / "apps" / f"{app}.py").is_file(), f"no app apps/{app}.py"
    return importlib.import_module(f"apps.{app}").parser()


def parse(command: Command, argv: list[str]) -> argparse.Namespace:
    try:
        return app_parser(command.app).parse_args(argv)
    except SystemExit:
        pytest.fail(f"{command}: the app does not accept {shlex.join(argv)}")


def variants(command: Command) -> list[list[str]]:
    """The command line, plus one line per alternative of each optional group."""
    lines = [command.argv]
    for flag, *value in command.synopsis:
        alternatives = value[0].split("|") if value else [None]
        for alternative in alternatives:
            placeholder = alternative is not None and alternative.isupper()  # N, DIR
            extra = [] if alternative is None else ["1" if placeholder else alternative]
            lines.append([*command.argv, flag, *extra])
    return lines


def test_the_readme_has_app_commands():
    in_readme = {c.app for c in COMMANDS if c.document == "README.md"}
    assert in_readme >= {*RUNNABLE, "train_classifier", "train_pixelda", "train_endovae"}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.document}:{c.line}-{c.app}")
def test_readme_command_parses(command: Command):
    for argv in variants(command):
        parse(command, argv)


def test_readme_make_targets_exist():
    blocks = "\n".join(b[1] for b in BASH_BLOCK.finditer(README))
    named = set(re.findall(r"^make ([\w-]+)", blocks, re.MULTILINE))
    named |= set(re.findall(r"`make ([\w-]+)`", README))
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    assert named >= {"demo", "test"}
    assert named <= targets, f"README names make targets the Makefile lacks: {named - targets}"


def local_path(path: Path, cwd: Path) -> Path:
    """A README path moved under `cwd`, absolute ones too."""
    return cwd / path.relative_to(path.anchor) if path.is_absolute() else cwd / path


def test_cheap_readme_commands_run_on_tiny_data(tmp_path, monkeypatch):
    """The README's data preparation and figure commands, in order, on tiny data.

    Paths move under tmp_path and a --data-dir is filled with synthetic frames; make_figures
    redraws the last folder prepared here (the README's run folders need real training).
    A command that differs from one already run only in its paths is not run again.
    """
    monkeypatch.chdir(tmp_path)
    done, prepared = [], []
    for command in COMMANDS:
        if command.app not in RUNNABLE or command.synopsis:
            continue
        args = parse(command, [*command.argv, *RUNNABLE[command.app]])
        settings = (command.app, {k: v for k, v in vars(args).items() if not isinstance(v, Path)})
        if settings in done:
            continue
        if command.app == "prepare_kvasir":
            if args.data_dir is None or ".." in args.data_dir.parts:
                continue  # a Kaggle download, or data outside the repository
            args.data_dir = local_path(args.data_dir, tmp_path)
            args.out = local_path(args.out, tmp_path)
            if not args.data_dir.exists():
                write_synthetic_kvasir(args.data_dir, 4, size=(160, 128))
            prepared.append(args.out)
        elif not prepared:
            continue  # nothing prepared yet to redraw
        else:
            args.run = prepared[-1]
            shutil.rmtree(args.run / "figures")
        importlib.import_module(f"apps.{command.app}").main(args)
        assert list((prepared[-1] / "figures").glob("*.png")), command
        done.append(settings)
    assert {app for app, _ in done} == set(RUNNABLE)
