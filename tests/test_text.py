"""The text a person reads: units on every column, plain grammar, the figures named, the
same memory figure everywhere (issue: what a new user trips over)."""
import copy
import json
import re
from pathlib import Path

import pytest

import numaprobe
from numaprobe import clock, kinds, results, topology

DATA = Path(__file__).parent / "data"
DOCS = sorted((DATA / "documents" / "v1").glob("*.json"))


def _text(path_or_doc):
    doc = results.load(path_or_doc) if isinstance(path_or_doc, Path) else path_or_doc
    return kinds.get(doc["kind"]).text(doc)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.stem)
def test_no_placeholder_plurals_or_broken_grammar(path):
    text = _text(path)
    assert "(s)" not in text, text
    assert not re.search(r"\b1 (CPUs|cores|packages|nodes|rounds|instances|pairs|threads)\b", text)
    assert not re.search(r"\bCPUs \d+\b(?![-,\d]| and)", text), text  # "CPUs 0": one CPU
    assert not re.search(r"\ba (infer|[aeiou]\w*) document", text)
    assert "xauto" not in text


def test_topology_prints_distances_as_numactl_does_and_the_smt_siblings():
    t = topology.read(DATA / "sysfs" / "two-socket-smt")
    text = t.summary()
    assert "  node   0   1\n    0:  10  21\n    1:  21  10" in text
    assert "SMT siblings (CPUs that share a core): 0,16  1,17" in text
    one = topology.read(DATA / "sysfs" / "epyc-nps4").summary()
    assert "SMT: none (one CPU per core)" in one


def test_one_memory_figure_for_the_topology_and_an_allocation(topo):
    node = topo.usable_mems[0]
    line = next(x for x in topo.summary().splitlines() if x.startswith(f"  node {node}:"))
    shown = float(re.search(r"([\d.]+) GiB available", line).group(1))
    with pytest.raises(MemoryError) as refused:
        numaprobe.alloc(1 << 48, node=node)
    said = float(re.search(r"has ([\d.]+) GiB available", str(refused.value)).group(1))
    assert abs(shown - said) <= max(0.5, 0.05 * said)  # the same figure, read moments apart


def test_the_clock_names_its_figures():
    doc = results.load(DATA / "documents" / "v1" / "clock.json")
    text = _text(doc)
    assert "overhead of one serialised read" in text and "0.0000 %" not in text
    tiny = copy.deepcopy(doc)
    tiny["result"]["agreement"] = 1e-9
    assert "differ by < 0.0001 %" in _text(tiny)
    assert "one serialised read costs" in clock.summary_line(doc["result"])


def test_every_column_has_a_unit():
    loaded = _text(DATA / "documents" / "v1" / "loaded-latency.json")
    assert "delay spins" in loaded and "spin-loop iterations" in loaded
    cmp = _text(DATA / "documents" / "v1" / "compare.json")
    assert re.search(r"figure\s+unit\s+A\s+B", cmp) and " GB/s " in cmp


def test_inference_tables_name_the_model_and_what_the_ratio_is():
    doc = results.load(DATA / "documents" / "v1" / "infer.json")
    text = _text(doc)
    assert "42.0 M parameters (168 MB); 1 input generated: x float32 [batch=1, 1024]" in " ".join(
        text.split())
    single = copy.deepcopy(doc)
    single["result"]["asked"]["mode"] = "single"
    header = next(x for x in _text(single).splitlines() if x.startswith("layout"))
    assert header.endswith("p50 vs first")
    header, rows = results.rows(doc)
    assert {"model", "vs_first_ratio", "vs_first_verdict"} <= set(header)
    assert rows[1][header.index("vs_first_verdict")] == "faster"


def test_warnings_do_not_break_hyphenated_words(tmp_path, capsys):
    from numaprobe import cli
    doc = results.load(DATA / "documents" / "v1" / "c2c.json")
    doc["warnings"] = ["x " * 30 + "core-to-core " * 8]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    assert cli.main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "core-to-core" in out and not re.search(r"\w-\n", out), out


def test_a_number_keeps_its_unit_when_a_warning_wraps():
    from numaprobe.cli import _fill
    text = _fill("x " * 33 + "a spread (CV 7.7 % over 6 samples, limit 5 %), 20 ns apart")
    assert "7.7 %" in text and "20 ns" in text and not re.search(r"\d\n", text), text
