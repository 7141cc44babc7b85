"""Every `make` target and `reprolab` command the README and docs/ show exists and parses:
each make line goes through `make -n` (nothing runs), each reprolab command through its own
`--help`. A renamed target or command fails here instead of in a reader's terminal."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# a command is read where a reader would copy it: a code span or a fenced line
SPANS = re.compile(r"`([^`\n]+)`")
FENCES = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
MAKE = re.compile(r"(?:^|[;&|]\s*|\$ )\s*((?:[A-Z_]+=\S+\s+)*make\s+[^#\n]*)")
REPROLAB = re.compile(r"(?:^|[;&|(]\s*|\$ )\s*(reprolab\s+[a-z][^#\n|;&)]*)")


def words_of(line: str) -> list[str]:
    """The shell words of a shown line; `...` placeholders and a continuation backslash go."""
    line = line.replace("...", "x").rstrip().removesuffix("\\").strip()
    try:
        return shlex.split(line)
    except ValueError:  # an unclosed quote in a shortened example
        return line.split()


def snippets(path: Path) -> list[str]:
    text = path.read_text()
    lines = [line for block in FENCES.findall(text) for line in block.splitlines()]
    prose = FENCES.sub("", text)
    return [*lines, *SPANS.findall(prose)]


def commands(pattern: re.Pattern) -> list[tuple[str, str]]:
    found = set()
    for path in DOCS:
        for snippet in snippets(path):
            for match in pattern.finditer(snippet.strip()):
                found.add((path.relative_to(REPO).as_posix(), match.group(1).strip()))
    return sorted(found)


MAKES = commands(MAKE)
REPROLABS = commands(REPROLAB)


def test_the_docs_show_commands_to_check():
    assert len(MAKES) >= 20 and len(REPROLABS) >= 20, (len(MAKES), len(REPROLABS))


@pytest.mark.parametrize(("doc", "line"), MAKES)
def test_a_make_line_names_a_target_that_parses(doc, line):
    words = [w for w in words_of(line) if w != "make"]
    words = [w for w in words if not w.startswith("-")]
    assigned = [w for w in words if "=" in w]
    targets = [w for w in words if "=" not in w and re.fullmatch(r"[a-z][\w-]*", w)]
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", *targets, *assigned],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "No rule to make target" not in done.stderr, f"{doc}: `{line}`: {done.stderr}"


@pytest.mark.parametrize(("doc", "line"), REPROLABS)
def test_a_reprolab_command_exists_with_its_subcommand(doc, line):
    from reprolab.cli import main

    words = words_of(line)[1:]
    path = []
    group = main
    for word in words:
        if not re.fullmatch(r"[a-z][\w-]*", word) or not hasattr(group, "commands"):
            break  # an option, an argument, or prose ("reprolab serve, batch 8")
        assert word in group.commands, f"{doc}: `{line}`: no command {word!r} in {path}"
        path.append(word)
        group = group.commands[word]
    done = CliRunner().invoke(main, [*path, "--help"])
    assert done.exit_code == 0, f"{doc}: `{line}`: {done.output}"
