"""The command line in a subprocess: the quick check, topology (against numactl), clock, run,
and every bad input answered with one line and exit code 2."""
import argparse
import json
import re
import shutil
import subprocess
import sys

import pytest

import numaprobe


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "numaprobe", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_quick_check():
    r = cli()
    assert r.returncode == 0, r.stderr
    for text in ("node 0", "clock:", "idle latency", "read bandwidth", "copy_nt bandwidth",
                 "core-to-core", "noise:"):
        assert text in r.stdout
    r = cli("--json")
    env = json.loads(r.stdout)
    doc = env["result"]
    assert env["kind"] == "quick" and env["noise"]["foreign_fraction"] >= 0
    assert set(doc) >= {"topology", "clock", "latency", "bandwidth", "c2c"}
    assert set(doc["bandwidth"]) == {"read", "copy_nt"}
    assert doc["latency"]["cells"][0]["ns"]["median"] > 0
    if len(doc["topology"]["nodes"]) == 1:
        assert any("one NUMA node" in w for w in env["warnings"])


def test_topology_agrees_with_numactl(topo):
    if not shutil.which("numactl"):
        pytest.skip("numactl is not installed (apt-get install numactl)")
    hw = subprocess.run(["numactl", "--hardware"], capture_output=True, text=True).stdout
    doc = json.loads(cli("topology", "--json").stdout)["result"]
    nodes = {n["id"]: n for n in doc["nodes"]}
    m = re.search(r"available: (\d+) nodes \(([\d\-,]+)\)", hw)
    assert int(m.group(1)) == len(nodes)
    assert numaprobe.parse_list(m.group(2)) == tuple(sorted(nodes))
    for nid, n in nodes.items():
        cpus = re.search(rf"^node {nid} cpus:(.*)$", hw, re.M).group(1).split()
        assert [int(c) for c in cpus] == n["cpus"]
        size = int(re.search(rf"^node {nid} size: (\d+) MB", hw, re.M).group(1))
        assert size == n["memory_total"] // 2**20
    dist = [line.split()[1:] for line in hw.split("node distances:")[1].strip().splitlines()[1:]]
    assert [[int(x) for x in row] for row in dist] == [n["distances"] for n in nodes.values()]
    text = cli("topology").stdout
    assert "node 0: CPUs" in text and "allowed:" in text


def test_topology_capture(tmp_path):
    r = cli("topology", "--capture", str(tmp_path / "cap"))
    assert r.returncode == 0
    assert (tmp_path / "cap" / "expected.json").exists()
    captured = json.loads(cli("topology", "--json", "--root", str(tmp_path / "cap")).stdout)["result"]
    live = json.loads(cli("topology", "--json").stdout)["result"]
    for key in ("cpus", "caches", "allowed", "settings"):
        assert captured[key] == live[key], key
    assert [n["cpus"] for n in captured["nodes"]] == [n["cpus"] for n in live["nodes"]]
    again = cli("topology", "--capture", str(tmp_path / "cap"))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_clock():
    r = cli("clock", "--json")
    d = json.loads(r.stdout)["result"]
    assert d["agreement"] < 1e-3 and d["hz"] > 1e6
    assert "ticks/us" in cli("clock").stdout


def test_run_binds_the_child(topo):
    cpu = topo.usable_cpus[-1]
    r = cli("run", "--physcpubind", str(cpu), "--membind", "0", "--", sys.executable, "-c",
            "import os; print(sorted(os.sched_getaffinity(0))); "
            "print(open('/proc/self/numa_maps').readline())")
    assert r.returncode == 0, r.stderr
    assert f"[{cpu}]" in r.stdout and " bind:0 " in r.stdout
    r = cli("run", "-N", "0", "-i", "all", "--", "cat", "/proc/self/numa_maps")
    assert r.returncode == 0 and " interleave:0 " in r.stdout
    r = cli("run", "-p", "0", "--", "sh", "-c", "exit 3")
    assert r.returncode == 3  # the command's own exit code passes through


@pytest.mark.parametrize("args, match", [
    (["run", "--physcpubind", "4096", "--", "true"], r"CPU 4096 does not exist; CPUs: 0-"),
    (["run", "--membind", "9", "--", "true"], r"node 9 does not exist; nodes: 0"),
    (["run", "--cpunodebind", "9", "--", "true"], r"node 9 does not exist"),
    (["run", "--membind", "0-x", "--", "true"], r"cannot read '0-x'"),
    (["run", "--membind", "0", "--interleave", "0", "--", "true"], "give one of"),
    (["run", "--membind", "0"], "no command given"),
    (["clock", "--window", "0.0001"], "from 1 to 60000 ms"),
    (["bandwidth", "--peak", "--threads", "1"], "takes no --threads"),
    (["topology", "--root", "/nonexistent"], "not a Linux sysfs tree"),
    (["nosuchcommand"], "invalid choice"),
    (["run", "--bogus", "--", "true"], r"unrecognized arguments|see --help"),
])
def test_bad_input_one_line_exit_2(args, match):
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert re.search(match, r.stderr), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_non_linux_is_a_clear_import_error():
    code = ("import sys; sys.platform = 'darwin'\n"
            "try:\n    import numaprobe\nexcept ImportError as e:\n    print(e)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "numaprobe needs Linux" in r.stdout and "darwin" in r.stdout


def test_a_bug_is_a_traceback_not_bad_input(monkeypatch, capsys):
    """Only UsageError (and NotEnoughMemory) mean bad input: a plain ValueError, KeyError or
    MemoryError raised inside a subcommand is a bug and must not pass for exit code 2."""
    from numaprobe import cli as cli_mod
    from numaprobe.errors import NotEnoughMemory, UsageError

    def boom(exc):
        def run(args):
            raise exc
        return run
    for exc, code in ((ValueError("internal mix-up"), 70), (KeyError("cells"), 70),
                      (MemoryError(), 70), (UsageError("node 7 does not exist; nodes: 0"), 2),
                      (NotEnoughMemory("node 0 has 1 GiB free"), 2)):
        monkeypatch.setattr(cli_mod, "cmd_clock", boom(exc))
        assert cli_mod.main(["clock"]) == code, exc
        err = capsys.readouterr().err
        if code == 70:
            assert "Traceback" in err and "bug in numaprobe" in err and "please report" in err
        else:
            assert err.count("\n") == 1 and str(exc) in err and "Traceback" not in err


def test_report_does_not_hide_a_renderer_failure(tmp_path):
    """A document that passed validation but breaks a renderer is a bug to see, not raw JSON
    on the page (the report used to swallow KeyError and TypeError)."""
    from pathlib import Path

    from numaprobe import kinds, results
    from numaprobe.report import html as H
    doc = results.load(Path(__file__).parent / "data" / "documents" / "v1" / "latency.json")
    del doc["result"]["cells"][0]["cpu"]
    with pytest.raises(KeyError):
        kinds.get("latency").text(doc)
    with pytest.raises(KeyError):
        H.html_text([doc], plots_=False)


def test_a_missing_extra_names_its_pip_command(monkeypatch, capsys):
    """An optional dependency that is not installed is one line naming the extra; any other
    ImportError is a bug like any other exception."""
    from numaprobe import cli as cli_mod

    def needs(name):
        def run(args):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return run
    monkeypatch.setattr(cli_mod, "cmd_clock", needs("onnx"))
    assert cli_mod.main(["clock"]) == 2
    assert capsys.readouterr().err.strip() == ("numaprobe: this needs onnx, which is not "
                                               "installed: pip install 'numaprobe[infer]'")
    monkeypatch.setattr(cli_mod, "cmd_clock", needs("matplotlib.pyplot"))
    assert cli_mod.main(["clock"]) == 2 and "numaprobe[plot]" in capsys.readouterr().err
    monkeypatch.setattr(cli_mod, "cmd_clock", needs("numaprobe._nothing"))
    assert cli_mod.main(["clock"]) == 70 and "bug in numaprobe" in capsys.readouterr().err


def test_every_option_explains_itself_with_its_default():
    from numaprobe import cli as cli_module
    parser = cli_module.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == argparse.SUPPRESS
                      and getattr(a, "choices", None))
    for name, sp in [("numaprobe", parser), *subparsers.choices.items()]:
        text = sp.format_help()
        for action in sp._actions:
            if action.dest == "help" or not action.option_strings:
                continue
            assert action.help, f"{name} {action.option_strings[0]} has no help text"
            if action.default not in (None, False, argparse.SUPPRESS):
                assert "default" in sp._get_formatter()._get_help_string(action), (
                    f"{name} {action.option_strings[0]}: help does not show its default")
        assert "tlb-\n" not in text and not re.search(r"\w-\n", text), f"{name}: a word broken"


def test_run_exits_as_a_shell_does_when_the_command_cannot_run(tmp_path):
    r = cli("run", "--", "/nonexistent/cmd")
    assert r.returncode == 127 and "cannot run '/nonexistent/cmd'" in r.stderr
    script = tmp_path / "not-executable"
    script.write_text("echo hi\n")
    r = cli("run", "--", str(script))
    assert r.returncode == 126 and "Permission denied" in r.stderr


def test_output_options_before_the_subcommand_are_kept(tmp_path):
    out = tmp_path / "t.json"
    r = cli("-o", str(out), "--json", "topology")
    assert r.returncode == 0 and json.loads(r.stdout)["kind"] == "topology"
    assert json.loads(out.read_text())["kind"] == "topology"
    r = cli("clock", "-q", "-o", str(tmp_path / "c.json"))
    assert r.returncode == 0 and "wrote" not in r.stderr
