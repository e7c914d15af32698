"""numaprobe tune: the ladder's logic with a stand-in for the measurement (which candidate
is faster is given, so what is kept, skipped and measured again can be checked exactly), and
one real short ladder on this machine whose outputs (the document, the layout file, the
launcher lines) are checked for what they must hold, whatever the verdicts."""
import json

import pytest

from numaprobe import cli, results
from numaprobe.errors import UsageError
from numaprobe.workload import infer, models, tune


def _fake_doc(layouts, faster):
    """What run_infer returns, in the parts tune reads: each later layout against the first,
    'faster' with a 1.5x gain when ``faster(name)`` says so, else no change."""
    out = []
    for k, lay in enumerate(layouts):
        d = {"layout": {"name": lay.name}, "throughput": {"per_s": 100.0, "ci": [90, 110]},
             "latency": {"p50": {"ms": 10.0}}, "accuracy": []}
        if k:
            win = faster(lay.name.split("#")[0])
            d["vs_first"] = {"throughput_ratio": [1.5, 1.3, 1.7] if win else [1.0, 0.9, 1.1],
                             "verdict": "faster" if win else "no significant change"}
        out.append(d)
    return {"layouts": out}


def test_a_step_is_kept_only_when_faster_and_the_final_is_measured_again(topo, monkeypatch,
                                                                         tiny_model):
    calls = []

    def run_infer(model, layouts, **kw):
        calls.append([l.name for l in layouts])
        return _fake_doc(layouts, lambda name: name.endswith("+pinned") or name == "2x1")
    monkeypatch.setattr(infer, "run_infer", run_infer)
    doc = tune.tune(models.resolve(tiny_model), topo, rounds=6, duration=0.1, progress=False)
    steps = {s["lever"]: s for s in doc["steps"]}
    assert [s["lever"] for s in doc["steps"]] == list(tune.LEVERS)
    assert steps["threads"]["kept"] is None and steps["threads"]["verdict"] == (
        "no significant change")
    assert steps["pinning"]["kept"] == "naive+pinned"  # threads were not kept: on naive
    if len(topo.usable_cpus) == 2:
        assert steps["instances"]["tried"] == ["1x2", "2x1"]
        assert steps["instances"]["kept"] == "2x1"
    if len(topo.usable_mems) == 1:
        assert steps["memory"]["skipped"] == ("one NUMA node: memory binding cannot change "
                                              "placement")
    assert steps["engine"]["skipped"].startswith("one engine and precision allowed")
    # The last call measures the winner against naive, afresh.
    assert calls[-1][0] == "naive" and calls[-1][1].endswith("#final")
    assert doc["final"]["gain"] == pytest.approx(1.5)
    assert doc["step_totals"]["layout"] == pytest.approx(1.5 ** (2 if len(
        topo.usable_cpus) == 2 else 1))


def test_the_goal_and_the_rounds_are_checked(topo, tiny_model):
    ref = models.resolve(tiny_model)
    with pytest.raises(UsageError, match="unknown goal 'p99'; goals: throughput, latency"):
        tune.tune(ref, topo, goal="p99")
    with pytest.raises(UsageError, match="rounds must be a whole number >= 6"):
        tune.tune(ref, topo, rounds=3)
    with pytest.raises(UsageError, match="unknown lever 'batch'; levers: threads, pinning"):
        tune.tune(ref, topo, levers=["batch"])


def test_the_command_writes_the_ladder(tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(infer, "run_infer",
                        lambda model, layouts, **kw: _fake_doc(layouts, lambda n: n == "2x1"))
    out = tmp_path / "tune.json"
    assert cli.main(["tune", "--model", tiny_model, "--budget", "60", "-q", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("the ladder for tiny, goal throughput")
    assert "best layout, as a file for infer --instances:" in text
    results.validate(json.loads(out.read_text()))
    assert cli.main(["tune", "--model", tiny_model, "--goal", "p99"]) == 2
    assert "invalid choice: 'p99'" in capsys.readouterr().err


def test_a_real_short_ladder_gives_a_layout_file_and_launch_lines(tiny_model, topo, tmp_path):
    from numaprobe.workload.layout import parse_layout as parse
    doc = tune.tune(models.resolve(tiny_model), topo, rounds=6, duration=0.2, progress=False,
                    levers=("instances", "pinning"))  # in LEVERS' order, whatever is given
    r = doc
    assert [s["lever"] for s in r["steps"]] == ["pinning", "instances"]
    for s in r["steps"]:
        assert bool(s["skipped"]) != bool(s["tried"])  # a lever is tried or says why not
        if s["kept"]:
            assert s["verdict"] == "faster"
    # The best layout, as a file, is one that infer reads back.
    path = tmp_path / "best.json"
    path.write_text(json.dumps(r["best"]["layout_file"]))
    lay = parse(str(path), topo)
    assert len(lay.instances) == len(r["best"]["commands"])
    assert all("ort: intra_op_num_threads=" in c for c in r["best"]["commands"])
