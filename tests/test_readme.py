"""The README's examples run as written (pyperf tests its doc examples the same way).

The rule, also stated in the README's "For contributors": every ```python block runs, and every
```sh / ```bash / ```console block runs unless the line before it is an HTML comment
``<!-- readme-test: not run: REASON -->`` (installs, the VM suite, runs that take minutes).
Blocks left out by that rule are not collected at all, so nothing here is ever skipped. Each
block runs in a subprocess, in an empty folder where ``tests`` links to this checkout's tests/
(what a block writes is thrown away), with the venv's ``bin/`` first on PATH so ``numaprobe``
and ``python`` are the ones under test.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NOT_RUN = re.compile(r"<!--\s*readme-test:\s*not run:\s*(?P<reason>\S.*?)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
SHELLS = {"sh", "bash", "shell", "console"}
HANG_GUARD_S = 300  # only so that a hung block fails instead of stopping the run


def blocks(text: str) -> list[dict]:
    """Every fenced block: its language, body, the line of its opening fence and the not-run
    reason of the comment right before it (None when there is none)."""
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.fullmatch(before.strip())
        out.append({"lang": m["lang"].lower(), "body": m["body"],
                    "line": text.count("\n", 0, m.start()) + 1,
                    "not_run": marker["reason"] if marker else None})
    return out


def shell_script(block: dict) -> str:
    """A console block's commands are its ``$ `` lines; other shell blocks are scripts."""
    if block["lang"] != "console":
        return block["body"]
    return "".join(line[2:] + "\n" for line in block["body"].splitlines() if line.startswith("$ "))


ALL = blocks(README.read_text())
PYTHON = [b for b in ALL if b["lang"] == "python"]
SHELL = [b for b in ALL if b["lang"] in SHELLS and b["not_run"] is None]


def _id(block: dict | None) -> str:
    return "none-found" if block is None else f"{block['lang']}-line{block['line']}"


def _found(block: dict | None, what: str) -> dict:
    """An empty parameter list would make pytest skip the test (and leave the README
    untested): the test runs once with None instead, and fails here."""
    assert block is not None, f"README.md has no {what} that this test runs"
    return block


def test_only_shell_blocks_may_be_left_out():
    """The Python examples are the library's documentation: all of them run."""
    marked = [f"line {b['line']} ({b['lang'] or 'no language'})" for b in ALL
              if b["not_run"] is not None and b["lang"] not in SHELLS]
    assert not marked, f"readme-test: not run is for shell blocks only, found on {marked}"


def test_the_rule_reads_the_readme_markers():
    """The parser itself: a marker excludes exactly the block after it; console prompts."""
    text = ("<!-- readme-test: not run: it installs -->\n```sh\npip install .\n```\n\n"
            "```sh\nnumaprobe --help\n```\n```python\nprint(1)\n```\n"
            "```console\n$ numaprobe --version\nnumaprobe 0.1.0\n```\n")
    got = blocks(text)
    assert [(b["lang"], b["not_run"]) for b in got] == [
        ("sh", "it installs"), ("sh", None), ("python", None), ("console", None)]
    assert shell_script(got[3]) == "numaprobe --version\n"


@pytest.fixture
def workdir(tmp_path):
    """An empty folder that sees the checkout's tests/, and an environment whose PATH starts
    with the venv under test (a block's ``numaprobe`` and ``python``)."""
    (tmp_path / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["NUMAPROBE_CACHE"] = str(tmp_path / "model-cache")  # built-in models stay in tmp
    env["MPLBACKEND"] = "Agg"
    env.pop("NUMAPROBE_SYSFS_ROOT", None)  # the blocks describe this machine
    return tmp_path, env


def _check(r: subprocess.CompletedProcess, block: dict) -> None:
    assert r.returncode == 0, (
        f"README.md line {block['line']} ({block['lang']} block) exited {r.returncode}\n"
        f"--- block\n{block['body']}--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}")


@pytest.mark.parametrize("block", PYTHON or [None], ids=_id)
def test_python_block_runs(block, workdir):
    block = _found(block, "```python block")
    cwd, env = workdir
    script = cwd / f"readme_line{block['line']}.py"
    script.write_text(block["body"])
    r = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=HANG_GUARD_S)
    _check(r, block)


@pytest.mark.parametrize("block", SHELL or [None], ids=_id)
def test_shell_block_runs(block, workdir):
    block = _found(block, "shell block")
    cwd, env = workdir
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", shell_script(block)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=HANG_GUARD_S)
    _check(r, block)
