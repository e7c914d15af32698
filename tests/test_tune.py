"""numaprobe tune: the ladder's logic with a stand-in for the measurement (which candidate
is faster is given, so what is kept, skipped and measured again can be checked exactly), and
one real short ladder on this machine whose outputs (the document, the layout file, the
launcher lines) are checked for what they must hold, whatever the verdicts."""
import json
import math

import pytest

from numaprobe import cli, results
from numaprobe.errors import UsageError
from numaprobe.workload import infer, models, tune


BASE = [100.0, 103.0, 98.0, 101.0, 99.0, 102.0]


def _fake_doc(layouts, faster, factor=None):
    """What run_infer returns, in the parts tune reads: each later layout against the first,
    'faster' with a 1.5x gain when ``faster(name)`` says so, else no change (``factor(name)``:
    another gain), with rounds that vary a little and differently for each layout."""
    out = []
    for k, lay in enumerate(layouts):
        name = lay.name.split("#")[0]
        g = 1.0 if k == 0 else (factor(lay.name) if factor else 1.5 if faster(name) else 1.0)
        jitter = [1 + 0.01 * ((k * 3 + j) % 5 - 2) for j in range(len(BASE))]
        rounds = [{"throughput": b * g * x, "p50_ms": 10.0 / g, "noise": 0.01}
                  for b, x in zip(BASE, jitter)]
        d = {"layout": {"name": lay.name, "instances": lay.to_dict()["instances"]},
             "throughput": {"per_s": 100.0 * g, "ci": [90, 110]},
             "latency": {"p50": {"ms": 10.0 / g}}, "accuracy": [], "rounds": rounds}
        if k:
            d["vs_first"] = {"throughput_ratio": [g, 0.87 * g, 1.13 * g] if g != 1 else
                             [1.0, 0.9, 1.1],
                             "verdict": "faster" if g > 1 else "no significant change",
                             "detail": "" if g > 1 else "could detect changes of 4.1 % or more"}
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
    with pytest.raises(UsageError, match="unknown lever 'turbo'; levers: threads, pinning"):
        tune.tune(ref, topo, levers=["turbo"])


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
    assert "unknown goal 'p99'; goals: throughput, latency, p99:Xms" in capsys.readouterr().err
    for bad in ("5x", "5s", "nan"):
        assert cli.main(["tune", "--model", tiny_model, "--budget", bad]) == 2
        assert "expected a time from 10 s to 24 h (600, 600s, 10m or 1h)" in (
            capsys.readouterr().err)
    assert cli.main(["tune", "--model", tiny_model, "--budget", "1m", "-q", "-o",
                     str(out)]) == 0
    assert json.loads(out.read_text())["result"]["asked"]["budget_s"] == 60


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


def test_the_final_splits_the_total_into_layout_engine_and_precision(topo, monkeypatch,
                                                                     tiny_model):
    """The best changed the division, the engine and the precision: the final runs naive,
    the best's layout on naive's engine and precision, then with its engine, then itself,
    and each part is the one against the one before, over the same rounds."""
    calls = []
    gains = {"#layout": 1.5, "#engine": 1.5 * 1.2, "#final": 1.5 * 1.2 * 2.0}

    def run_infer(model, layouts, **kw):
        calls.append([l.name for l in layouts])
        if layouts[-1].name.endswith("#final"):
            return _fake_doc(layouts, None, lambda n: gains["#" + n.rsplit("#", 1)[1]])
        return _fake_doc(layouts, lambda name: name.endswith("x1") or "openvino int8" in name)
    monkeypatch.setattr(infer, "run_infer", run_infer)
    monkeypatch.setattr(tune._engines, "check_cpu", lambda *a, **k: None)  # int8 anywhere
    doc = tune.tune(models.resolve(tiny_model), topo, rounds=6, duration=0.1, progress=False,
                    engines=("ort", "openvino"), precisions=("int8",),
                    levers=("instances", "engine"))
    assert calls[-1][0] == "naive"
    assert [n.rsplit("#", 1)[1] for n in calls[-1][1:]] == ["layout", "engine", "final"]
    parts = {t["part"]: t for t in doc["totals"]}
    assert list(parts) == ["layout", "engine", "precision"]
    assert parts["layout"]["gain"] == pytest.approx(1.5, rel=0.03)
    assert parts["engine"]["gain"] == pytest.approx(1.2, rel=0.03)
    assert parts["precision"]["gain"] == pytest.approx(2.0, rel=0.03)
    assert all(t["verdict"] == "faster" and t["ci"][0] < t["gain"] < t["ci"][1]
               for t in parts.values())
    text = tune.tune_text({"result": doc})
    assert "  of which layout: 1.5" in text and "  of which precision: 2.0" in text


def test_ctrl_c_writes_the_ladder_so_far(topo, monkeypatch, tiny_model):
    from numaprobe.workload import driver
    calls = []

    def run_infer(model, layouts, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return _fake_doc(layouts, lambda name: name.endswith("+pinned"))
    monkeypatch.setattr(infer, "run_infer", run_infer)
    with pytest.raises(driver.Interrupted) as got:
        tune.tune(models.resolve(tiny_model), topo, rounds=6, duration=0.1, progress=False)
    doc = got.value.document
    assert doc["partial"] is True and doc["error"].startswith("interrupted (Ctrl-C)")
    measured = [s for s in doc["steps"] if not s["skipped"]]
    assert len(measured) == 1 and doc["final"] is None


def test_a_step_names_what_it_could_detect_and_the_bottleneck_after_it(topo, monkeypatch,
                                                                      tiny_model):
    from numaprobe.workload import roofline
    from test_cost import CEILING

    def run_infer(model, layouts, **kw):
        doc = _fake_doc(layouts, lambda name: False)
        doc["cost"] = {"ops": 1e9, "weight_bytes": 1e8}
        for d in doc["layouts"]:
            d["achieved"] = {"ops_per_s": 80e9, "weight_bytes_per_s": 1e9}
        return doc
    monkeypatch.setattr(infer, "run_infer", run_infer)
    monkeypatch.setattr(roofline, "ceilings", lambda *a, **k: CEILING)
    doc = tune.tune(models.resolve(tiny_model), topo, rounds=6, duration=0.1, progress=False,
                    levers=("pinning",))
    (step,) = doc["steps"]
    assert step["kept"] is None and step["detail"] == "could detect changes of 4.1 % or more"
    assert step["bottleneck"].startswith("compute-bound: 80 % of the AVX2 fp32 peak")
    text = tune.tune_text({"result": doc})
    assert "could detect changes of 4.1 % or more" in text and "now compute-bound" in text


def test_the_waterfall_rises_by_the_proven_gains_and_is_drawn(topo, monkeypatch, tiny_model):
    monkeypatch.setattr(infer, "run_infer", lambda model, layouts, **kw: _fake_doc(
        layouts, lambda name: name.endswith("+pinned") or name == "2x1"))
    doc = tune.tune(models.resolve(tiny_model), topo, rounds=6, duration=0.1, progress=False,
                    levers=("threads", "pinning", "instances"))
    bars = tune.waterfall(doc)
    assert bars[0] == {"label": "start", "value": 100.0, "base": 0.0, "kind": "start"}
    by = {b["label"]: b for b in bars}
    assert by["threads"]["kind"] == "not kept" and by["threads"]["value"] == 100.0
    assert by["pinning"]["kind"] == "kept" and by["pinning"]["value"] == pytest.approx(150.0)
    assert by["pinning"]["base"] == pytest.approx(100.0)
    assert bars[-2]["label"] == "final: naive" and bars[-1]["label"] == "final: best"
    full = results.document("tune", doc, topo=topo)
    from numaprobe import kinds
    figs = {name: build() for name, build in kinds.get("tune").plots(full)}
    assert figs["waterfall"] is not None
    html = tune._html_tune(full)
    assert "<table" in html and "bottleneck after" in html and "final, measured again" in html


@pytest.mark.parametrize("text, goal", [
    ("throughput", tune.Goal("throughput", "closed", "throughput", True)),
    ("latency", tune.Goal("latency", "single", "p50_ms", False)),
    ("p99:50ms", tune.Goal("p99:50ms", "single", "p99_ms", False, 50.0)),
    ("P99:7.5", tune.Goal("p99:7.5ms", "single", "p99_ms", False, 7.5)),
    ("rate:p99:50ms", tune.Goal("rate:p99:50ms", "poisson", "rate", True, 50.0)),
])
def test_goals_in_shell_safe_words(text, goal):
    assert tune.parse_goal(text) == goal


@pytest.mark.parametrize("bad", ["p99", "p99:", "p99:0ms", "p99:-5ms", "p99:fastms", "p50:3ms",
                                 "p99:infms", "rate:50ms", "rate:p99:", "rate:p50:5ms"])
def test_a_goal_that_is_not_one_is_refused_naming_the_goals(bad):
    with pytest.raises(UsageError, match="goals: throughput, latency, p99:Xms"):
        tune.parse_goal(bad)


def test_the_p99_goal_compares_p99_over_rounds_and_reports_the_bound(topo, monkeypatch,
                                                                     tiny_model):
    """p99:Xms runs one request at a time and keeps a step that lowers the p99 over the
    rounds (not run_infer's p50 verdict); the document says whether the best meets X."""
    modes = []

    def run_infer(model, layouts, **kw):
        modes.append(kw["mode"])
        doc = _fake_doc(layouts, lambda name: False)
        for lay, d in zip(layouts, doc["layouts"]):
            fast = lay.name.split("#")[0].endswith("+pinned")
            for k, r in enumerate(d["rounds"]):  # p99 20 ms, pinned 12 ms; jitter by round
                r["p99_ms"] = (12.0 if fast else 20.0) * r["throughput"] / 100
            d["latency"]["p99"] = {"ms": 12.0 if fast else 20.0}
        return doc
    monkeypatch.setattr(infer, "run_infer", run_infer)
    doc = tune.tune(models.resolve(tiny_model), topo, goal="p99:15ms", rounds=6, duration=0.1,
                    progress=False, levers=("threads", "pinning"))
    assert set(modes) == {"single"}
    steps = {s["lever"]: s for s in doc["steps"]}
    assert steps["threads"]["kept"] is None  # its p50 and p99 did not move
    assert steps["pinning"]["kept"] == "naive+pinned" and steps["pinning"]["verdict"] == "faster"
    assert steps["pinning"]["gain"] == pytest.approx(20 / 12, rel=0.02)
    assert doc["goal"] == "p99:15ms" and doc["final"]["gain"] == pytest.approx(20 / 12, rel=0.02)
    assert doc["bound"] == {"ms": 15.0, "p99_ms": 12.0, "met": True}
    text = tune.tune_text({"result": doc})
    assert "the bound p99 <= 15 ms: met (p99 12 ms)" in text and "now p99 12 ms" in text
    assert tune.waterfall(doc)[0]["value"] == 20.0
    results.validate(json.loads(json.dumps(results.document("tune", doc, topo=topo))))


def test_sustainable_rate_interpolates_and_says_when_it_is_censored():
    rates = [45.0, 75.0, 105.0, 135.0]
    got, note = tune.sustainable(rates, [36.4, 80.0, 200.0, 900.0], 50.0)
    t = (math.log(50) - math.log(36.4)) / (math.log(80) - math.log(36.4))
    assert got == pytest.approx(45 + 30 * t) and note is None
    assert tune.sustainable(rates, [1, 2, 3, 4], 50.0) == (
        135.0, "every offered rate met the bound: the limit is above the highest")
    got, note = tune.sustainable(rates, [100.0, 200, 300, 400], 50.0)
    assert got == pytest.approx(22.5) and note.startswith("no offered rate met the bound")
    # a round without a p99 at a rate (no inference finished) counts as not meeting it
    assert tune.sustainable(rates, [10.0, None, 20, 30], 50.0) == (45.0, None)


def test_the_rate_goal_finds_the_highest_rate_under_the_bound_for_each_layout(
        topo, monkeypatch, tiny_model):
    """rate:p99:50ms: a pilot round in a closed loop gives the capacity; every layout is then
    offered the same Poisson rates, and each round's figure is the highest rate under the
    bound. Queueing stands in for the measurement: p99 = 20 ms / (1 - load), the pinned
    layout with 1.5 x the capacity."""
    calls = []

    def run_infer(model, layouts, mode, rate=None, **kw):
        calls.append((mode, rate, kw["rounds"]))
        cap = lambda lay: 150.0 if lay.name.split("#")[0].endswith("+pinned") else 100.0
        doc = _fake_doc(layouts, lambda name: False)
        for lay, d in zip(layouts, doc["layouts"]):
            d["throughput"]["per_s"] = cap(lay)
            for k, r in enumerate(d["rounds"]):
                load = (rate or 0) / cap(lay) * (1 + 0.01 * ((k * 5 + len(lay.name)) % 3 - 1))
                r["p99_ms"] = 20.0 / (1 - load) if load < 1 else 1e4
        return doc
    monkeypatch.setattr(infer, "run_infer", run_infer)
    doc = tune.tune(models.resolve(tiny_model), topo, goal="rate:p99:50ms", rounds=6,
                    duration=0.1, progress=False, levers=("pinning",))
    pilot = [c for c in calls if c[0] == "closed"]
    offered = sorted({c[1] for c in calls if c[0] == "poisson"})
    assert pilot and all(c[2] == 1 for c in pilot)
    assert offered == pytest.approx([f * 150.0 for f in tune.RATE_FRACTIONS])
    (step,) = doc["steps"]
    # 50 ms at load 0.6: 60/s and 90/s, as interpolation on the grid finds them (within 5 %)
    assert step["kept"] == "naive+pinned" and step["verdict"] == "faster"
    assert step["gain"] == pytest.approx(1.5, rel=0.05)
    assert doc["start"]["rate"] == pytest.approx(60.0, rel=0.06)
    assert doc["final"]["best"]["rate"] == pytest.approx(90.0, rel=0.06)
    text = tune.tune_text({"result": doc})
    assert "rate: the highest Poisson arrival rate whose p99 stays within 50ms" in text
    assert doc["bound"] is None
    results.validate(json.loads(json.dumps(results.document("tune", doc, topo=topo))))


def test_the_batch_lever_compares_samples_per_second_and_says_when_it_cannot_matter(
        topo, tiny_model):
    """A real step: the tiny model at batch 1 against batch 8 in the same rounds. Whatever
    the verdict, the step's gain is the ratio of samples per second (an inference of batch 8
    is 8 samples), which for this model is far above the ratio of inferences."""
    ref = models.resolve(tiny_model)
    doc = tune.tune(ref, topo, rounds=6, duration=0.3, progress=False, levers=("batch",),
                    batches=[1, 8])
    (step,) = doc["steps"]
    assert step["tried"] == ["naive+batch8"]
    assert step["gain"] > 2  # 8 samples per call cost far less than 8 calls
    if step["kept"]:
        assert doc["best"]["layout_file"]["instances"][0]["batch"] == 8
        assert "batch 8 samples per call" in doc["best"]["commands"][0]
        assert doc["final"]["best"]["batch"] == 8
        assert doc["final"]["best"]["throughput"] > 2 * doc["final"]["naive"]["throughput"]
    skip = lambda **kw: tune.tune(ref, topo, rounds=6, duration=0.1, progress=False,
                                  levers=("batch",), **kw)["steps"][0]["skipped"]
    assert skip() == "no batch sizes to try: give --batch, e.g. --batch 4,16"
    assert skip(batches=[4], goal="latency").startswith("a batch of B makes each request wait")
    with pytest.raises(UsageError, match="batch sizes are whole numbers >= 1, got 0"):
        skip(batches=[0])


def test_a_layouts_batch_is_checked_and_runs_as_its_own(tiny_model, topo, tmp_path):
    from numaprobe.workload.layout import parse_layout as parse
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"instances": [{"cpus": "0", "batch": 0}]}))
    with pytest.raises(UsageError, match=r"instances/0/batch: .*a whole number >= 1"):
        parse(str(bad), topo)
    if len(topo.usable_cpus) >= 2:
        mixed = tmp_path / "mixed.json"
        mixed.write_text(json.dumps({"instances": [{"cpus": "0", "batch": 2},
                                                   {"cpus": "1", "batch": 4}]}))
        with pytest.raises(UsageError, match="share a batch size"):
            infer.run_infer(models.resolve(tiny_model), [parse(str(mixed), topo)],
                            duration=0.1, rounds=1, topology=topo, progress=False)
    four = tmp_path / "four.json"
    four.write_text(json.dumps({"name": "b4", "instances": [{"cpus": "0", "intra": 1,
                                                              "batch": 4}]}))
    one = parse("1x1", topo)
    doc = infer.run_infer(models.resolve(tiny_model), [one, parse(str(four), topo)],
                          duration=0.2, rounds=2, topology=topo, progress=False)
    a, b = doc["layouts"]
    assert (a["batch"], b["batch"]) == (1, 4)
    assert b["throughput"]["samples_per_s"] == pytest.approx(4 * b["throughput"]["per_s"])
    assert all(r["samples"] == pytest.approx(4 * r["throughput"]) for r in b["rounds"])
    assert b["vs_first"]["figure"] == "samples" and "samples_ratio" in b["vs_first"]
    assert doc["cost_by_batch"]["4"]["ops"] == pytest.approx(4 * doc["cost"]["ops"], rel=0.01)
    assert any("batches differ" in w for w in doc["warnings"])


def test_a_layout_batch_equal_to_the_runs_own_is_counted_once(topo, tiny_model, tmp_path,
                                                              monkeypatch):
    from numaprobe.workload.layout import parse_layout as parse
    counted, real = [], infer._cost
    monkeypatch.setattr(infer, "_cost", lambda ref, dims: counted.append(dict(dims or {}))
                        or real(ref, dims))
    four = tmp_path / "four.json"
    four.write_text(json.dumps({"instances": [{"cpus": "0", "intra": 1, "batch": 4}]}))
    doc = infer.run_infer(models.resolve(tiny_model), [parse(str(four), topo)],
                          dims={"batch": 4}, duration=0.1, rounds=1, topology=topo,
                          progress=False)
    assert [d.get("batch") for d in counted] == [4]
    assert doc["cost_by_batch"]["4"] == doc["cost"]


def test_the_precision_lever_on_this_cpu_bf16_where_it_has_the_units_a_refusal_where_not(
        topo, tiny_model):
    """--allow-precision bf16 --engines ort,openvino: on a CPU with AMX-BF16 or AVX512-BF16
    the engine lever tries OpenVINO bf16 at the best layout and records its accuracy against
    f32; on one without either, the tune refuses before it starts, naming the units."""
    from numaprobe.workload import engines
    ref = models.resolve(tiny_model)
    run = lambda: tune.tune(ref, topo, rounds=6, duration=0.2, progress=False,
                            levers=("engine",), engines=["ort", "openvino"],
                            precisions=["bf16"])
    if (engines.cpu_flags(topo) or set()) & {"amx_bf16", "avx512_bf16"}:
        (step,) = run()["steps"]
        assert "naive openvino bf16" in step["tried"] and step["verdict"]
        if step["kept"] == "naive openvino bf16":
            assert step["best"]["throughput"] > 0
    else:
        with pytest.raises(UsageError, match=r"bf16 needs .*AMX-BF16.*; this CPU .*has no "):
            run()
