"""The README cannot drift from the code: its snippets and cheap commands are run here.

* Every ```python block that is followed by a ```text block is run; what it prints must be the
  text block, line for line (a line holding only "…" stands for lines left out).
* Every ``$ python -m ...`` line of a ```text block whose command is cheap (:data:`CHEAP`,
  each well under ten seconds) is run; each line shown under it must appear in what it prints,
  to the printed precision. A command annotated ``# exit status N`` must exit with ``N`` (its
  message may hold numbers measured on the spot, such as a rate, so only the exit status and
  the words before the first number of each line are compared).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

CHEAP = (
    "python -m diffusion theory",
    "python -m separable svm",
    "python -m diffusion walk --t-max 1e12",
)
"""Command prefixes run by the test (the others train networks or walk for minutes)."""


def _blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)]


def _python_examples() -> list[tuple[str, list[str]]]:
    blocks = _blocks(README.read_text())
    return [
        (body, expected.splitlines())
        for (lang, body), (next_lang, expected) in zip(blocks, blocks[1:], strict=False)
        if lang == "python" and next_lang == "text" and not expected.lstrip().startswith("$")
    ]


def _commands() -> list[tuple[str, list[str]]]:
    """``(command line, lines shown under it)`` for the cheap commands of the text blocks."""
    out = []
    for lang, body in _blocks(README.read_text()):
        if lang != "text":
            continue
        current: tuple[str, list[str]] | None = None
        for line in body.splitlines():
            if line.startswith("$ "):
                current = (line[2:], [])
                out.append(current)
            elif current is not None:
                current[1].append(line)
    return [(cmd, lines) for cmd, lines in out if cmd.startswith(CHEAP)]


def _matches(shown: list[str], printed: list[str]) -> None:
    """Lines ``shown`` appear in ``printed`` in order (``…`` lines skip any number)."""
    printed = [p.rstrip() for p in printed]
    i = 0
    for line in shown:
        line = line.rstrip()
        if line in ("…", "...") or not line:
            continue
        try:
            i = printed.index(line, i) + 1
        except ValueError:
            raise AssertionError(
                f"README line not printed:\n  {line}\nprinted:\n  " + "\n  ".join(printed)
            ) from None


def test_the_readme_has_examples_to_check():
    assert _python_examples(), "no python snippet with its output"
    assert len(_commands()) >= 4, "no cheap command examples found"


@pytest.mark.parametrize("code, expected", _python_examples(), ids=lambda v: str(len(v)))
def test_python_snippets_print_what_the_readme_shows(code, expected):
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert res.returncode == 0, res.stderr
    printed = res.stdout.splitlines()
    shown = [line for line in expected if line.strip()]
    if "…" in shown or "..." in shown:
        _matches(shown, printed)
    else:
        assert [p.rstrip() for p in printed] == [s.rstrip() for s in shown]


@pytest.mark.parametrize("command, shown", _commands(), ids=lambda v: str(v)[:60])
def test_cheap_commands_print_what_the_readme_shows(command, shown, tmp_path):
    cmd, _, comment = command.partition("#")
    argv = shlex.split(cmd)
    assert argv[:2] == ["python", "-m"]
    res = subprocess.run(
        [sys.executable, *argv[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    printed = (res.stdout + res.stderr).splitlines()
    status = re.search(r"exit status (\d+)", comment)
    if status:
        assert res.returncode == int(status.group(1)), res.stderr
        for line in shown:  # the words before the first measured number
            head = re.split(r"\d", line, maxsplit=1)[0].rstrip()
            assert any(p.startswith(head) for p in printed), (head, printed)
        return
    assert res.returncode == 0, res.stderr
    _matches(shown, printed)
