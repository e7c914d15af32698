"""Engines and precisions: ONNX Runtime and OpenVINO built from the same .onnx file with
explicit threads, streams and CPUs, each reporting what it resolved; the worker's protocol on a
pipe of its own; a precision an engine or the CPU cannot run refused (on this machine, and on
captured trees with and without the bf16 flags, so both paths run everywhere); and the
accuracy check against f32 finding a model that was changed on purpose.
"""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import numaprobe
from numaprobe import cli, results
from numaprobe.errors import UsageError
from numaprobe.workload import driver, engines, models, worker
from numaprobe.workload.infer import run_infer, table
from numaprobe.workload.layout import Instance, Layout, combine, parse_layout

TREES = Path(__file__).parent / "data" / "sysfs"
BF16_UNITS = {"amx_bf16", "avx512_bf16"}


@pytest.fixture(scope="module")
def mlp():
    return models.resolve("mlp")


@pytest.fixture(scope="module")
def feeds(mlp):
    return models.make_inputs(models.inputs(mlp.path), {}, seed=0)


@pytest.fixture(scope="module")
def perturbed(mlp, tmp_path_factory):
    """The built-in mlp with one weight changed: the last layer's first bias + 0.5, so the
    first output moves by exactly 0.5 whatever the input."""
    m = onnx.load(mlp.path)
    last = [t for t in m.graph.initializer if t.name.endswith(".bias")][-1]
    b = numpy_helper.to_array(last).copy()
    b[0] += np.float32(0.5)
    last.CopyFrom(numpy_helper.from_array(b, last.name))
    path = tmp_path_factory.mktemp("perturbed") / "mlp-perturbed.onnx"
    onnx.save(m, path)
    return str(path)


def _on(layout: Layout, **fields) -> Layout:
    return replace(layout, instances=tuple(replace(i, **fields) for i in layout.instances))


# ------------------------------------------------------------------ the engines, in-process

def test_both_engines_build_run_and_resolve_what_was_asked(mlp, feeds, topo):
    # Not pinned: pinning would move this test process (ONNX Runtime pins its caller).
    cpus = topo.usable_cpus[:1]
    ort = engines.get("ort").build(engines.Request(mlp.path, cpus, threads=1, inter=1,
                                                   spin=False, pin=False))
    ov = engines.get("openvino").build(engines.Request(mlp.path, cpus, threads=1, streams=1,
                                                       pin=False))
    try:
        assert ort.resolved() == {"engine": "ort", "version": engines.get("ort").version(),
                                  "precision": "f32", "threads": 1, "inter": 1, "streams": None,
                                  "spin": False, "pin": False, "hint": None}
        r = ov.resolved()
        assert (r["engine"], r["precision"], r["threads"], r["streams"], r["pin"], r["hint"]) == (
            "openvino", "f32", 1, 1, False, "LATENCY")
        assert r["version"] and r["version"][0].isdigit()
        assert set(r) == set(engines.RESOLVED) - {"int8_layers"}  # that one for int8 only
        a, b = ort.run(feeds), ov.run(feeds)
        assert len(a) == len(b) == 1 and a[0].shape == b[0].shape == (1, 1024)
        # The same f32 model on two engines: the same answer, to rounding.
        same = engines.accuracy(a, b, ["y"])[0]
        assert same["name"] == "y" and same["cosine"] > 0.99999 and same["max_rel"] < 1e-3
    finally:
        ort.close()
        ov.close()


def test_openvino_keeps_one_request_in_flight_per_stream_and_counts_each(mlp, feeds, topo):
    cpus = topo.usable_cpus[:2]
    s = engines.get("openvino").build(engines.Request(mlp.path, cpus, threads=len(cpus),
                                                      streams=2, pin=False))
    try:
        r = s.resolved()
        assert (s.inflight, r["streams"], r["threads"], r["hint"]) == (2, 2, len(cpus),
                                                                       "THROUGHPUT")
        import time
        spans = []
        for k in range(8):
            t = time.monotonic_ns()
            s.submit(feeds, lambda end, t=t: spans.append((t, end)))
        s.wait()
        now = time.monotonic_ns()
        assert len(spans) == 8  # every completion counted, with its end
        assert all(t < end <= now for t, end in spans)
        # The second request was taken while the first ran (an inference of this model takes
        # milliseconds, a submission microseconds): two in flight at once.
        spans.sort()
        assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    finally:
        s.close()


def test_the_accuracy_check_finds_a_changed_model(mlp, perturbed, feeds, topo):
    ort = engines.get("ort")
    ref = ort.build(engines.Request(mlp.path, topo.usable_cpus[:1], threads=1, pin=False))
    bad = ort.build(engines.Request(perturbed, topo.usable_cpus[:1], threads=1, pin=False))
    try:
        want = ref.run(feeds)
        assert engines.accuracy(want, ref.run(feeds), ["y"]) == [
            {"name": "y", "max_abs": 0.0, "max_rel": 0.0, "cosine": 1.0}]
        found = engines.accuracy(want, bad.run(feeds), ["y"])[0]
    finally:
        ref.close()
        bad.close()
    assert found["max_abs"] == pytest.approx(0.5, rel=1e-3)
    assert found["max_rel"] == pytest.approx(0.5 / np.abs(want[0]).max(), rel=1e-3)
    assert found["cosine"] < 1.0
    with pytest.raises(ValueError, match="reference has 1 outputs, the run 2"):
        engines.accuracy(want, want * 2)


# ------------------------------------------------------------------- workers and the driver

def test_openvino_workers_stay_on_their_cpus_and_report_what_resolved(mlp, topo):
    layout = _on(parse_layout(f"{min(2, len(topo.usable_cpus))}x1", topo), engine="openvino")
    run = driver.run_layout(mlp.path, layout, duration=0.5, warmup=2)
    assert not run.partial and len(run.instances) == len(layout.instances)
    for i in run.instances:
        # The worker checked every thread's mask after the warm-up: a run at all means none
        # escaped its one CPU, OpenVINO's pinned stream threads included.
        assert i.count > 0 and i.accuracy is None  # f32 of the model itself: nothing to check
        assert {k: i.engine[k] for k in ("engine", "precision", "asked_precision", "threads",
                                         "streams", "pin", "hint")} == {
            "engine": "openvino", "precision": "f32", "asked_precision": "f32", "threads": 1,
            "streams": 1, "pin": True, "hint": "LATENCY"}
        assert i.engine["threads_created"] >= 1


def test_the_escaped_thread_check_names_the_thread_whatever_the_engine():
    threads = [{"tid": 7, "name": "python", "cpus": "1"},
               {"tid": 9, "name": "openvino_worker", "cpus": "0-3"}]
    assert worker._escaped(threads[:1], (0, 1)) is None
    assert worker._escaped(threads, (0, 1)) == (
        "thread 9 (openvino_worker) may run on CPUs 0-3, outside the instance's CPUs 0-1: the "
        "layout did not hold")


def test_the_accuracy_check_runs_in_the_worker_against_the_reference(mlp, perturbed, topo):
    """The perturbed model measured as if it were the precision run: the worker builds the
    reference at f32, then the measured model, and compares them on the same inputs."""
    layout = _on(parse_layout("1x1", topo), engine="openvino")
    run = driver.run_layout(perturbed, layout, duration=0.5, warmup=1, reference=mlp.path)
    acc = run.instances[0].accuracy
    assert acc["reference"] == "openvino f32" and acc["inputs"] == "generated, seed 0"
    (y,) = acc["outputs"]
    assert y["name"] == "y" and y["max_abs"] == pytest.approx(0.5, rel=1e-3) and y["cosine"] < 1
    unchecked = driver.run_layout(perturbed, layout, duration=0.5, warmup=1, reference=mlp.path,
                                  check_accuracy=False)
    assert unchecked.instances[0].accuracy is None


_CHATTY = 'import sys; print("an engine log line on stdout"); print("and one on stderr", file=sys.stderr)\n'


def test_what_a_worker_prints_does_not_break_the_protocol(tiny_model, topo, tmp_path,
                                                          monkeypatch):
    # Every worker interpreter prints to stdout as it starts (as OpenVINO's logs would): the
    # protocol has its own pipe, so that line goes to the log and the run goes on.
    (tmp_path / "sitecustomize.py").write_text(_CHATTY)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    run = driver.run_layout(tiny_model, parse_layout("1x1", topo), duration=0.5, warmup=1)
    assert not run.partial and run.instances[0].count > 0


# --------------------------------------------------------------------------------- precision

def test_ort_has_no_bf16_and_combinations_it_cannot_run_are_left_out(topo):
    two = [parse_layout("2x1", topo)]
    with pytest.raises(UsageError) as e:
        combine(two, ["ort"], ["bf16"])
    assert str(e.value) == ("onnxruntime's CPU provider runs f32 and int8 (a quantized copy); bf16 needs "
                            "--engines openvino")
    layouts, notes = combine(two, ["ort", "openvino"], ["f32", "bf16"])
    assert [l.name for l in layouts] == ["2x1 ort f32", "2x1 openvino f32", "2x1 openvino bf16"]
    assert [(i.engine, i.precision) for i in layouts[2].instances] == [("openvino", "bf16")] * 2
    assert notes == ["ort bf16 left out: onnxruntime's CPU provider runs f32 and int8 (a quantized copy); "
                     "bf16 needs --engines openvino"]
    only, notes = combine(two, ["ort"], ["f32"])  # one of each: the names stay as they were
    assert [l.name for l in only] == ["2x1"] and notes == []
    assert [l.name for l in combine(two, ["openvino"], ["f32", "f16"])[0]] == ["2x1 f32", "2x1 f16"]
    for names, match in [(["ort", "trt"], "unknown engine 'trt'; engines: ort, openvino"),
                         ([], "no engines given")]:
        with pytest.raises(UsageError, match=match):
            combine(two, names, ["f32"])
    with pytest.raises(UsageError, match="unknown precision 'fp8'; precisions: f32, bf16, f16, int8"):
        combine(two, ["openvino"], ["fp8"])


@pytest.mark.parametrize("tree, has", [("two-socket-smt", True), ("epyc-nps4", True),
                                       ("cxl-hmat", False), ("offline-cpus", False)])
def test_bf16_needs_its_units_on_captured_cpus(tree, has):
    t = numaprobe.read_topology(TREES / tree)
    assert bool(engines.cpu_flags(t) & BF16_UNITS) == has
    if has:
        engines.check_cpu("bf16", t)  # the CPU has AMX-BF16 or AVX512-BF16: it may run
    else:
        with pytest.raises(UsageError) as e:
            engines.check_cpu("bf16", t)
        assert str(e.value).startswith("bf16 needs AMX-BF16 (amx_bf16) or AVX512-BF16 "
                                       "(avx512_bf16); this CPU (")
        assert "has no amx_bf16 or avx512_bf16 flag" in str(e.value)
        assert "--allow-slow-precision" in str(e.value)
    engines.check_cpu("bf16", t, allow_slow=True)  # asked for: always allowed
    engines.check_cpu("f32", t)                    # f32 needs nothing


def test_bf16_on_this_cpu_runs_with_its_accuracy_or_is_refused_naming_the_flag(mlp, topo):
    layout = [parse_layout("1x1", topo)]
    run = dict(duration=0.5, rounds=1, warmup=1, topology=topo, progress=False,
               engines=["openvino"], precisions=["bf16"])
    if engines.cpu_flags(topo) & BF16_UNITS:
        doc = run_infer(mlp, layout, **run)
        assert doc["layouts"][0]["settings"][0]["precision"] == "bf16"
    else:
        with pytest.raises(UsageError, match=r"bf16 needs .* has no amx_bf16 or avx512_bf16 flag"):
            run_infer(mlp, layout, **run)
        doc = run_infer(mlp, layout, allow_slow_precision=True, **run)
    d = doc["layouts"][0]
    (acc,) = d["accuracy"]
    assert (acc["engine"], acc["precision"], acc["reference"]) == ("openvino", "bf16",
                                                                    "openvino f32")
    y = acc["outputs"][0]
    assert y["cosine"] > 0.99 and y["max_abs"] >= 0  # bf16 keeps about 3 significant digits
    ran = d["settings"][0]
    assert ran["asked_precision"] == "bf16" and ran["precision"] in ("bf16", "f32")
    said = [w for w in doc["warnings"] if "bf16 asked" in w]
    assert said == ([] if ran["precision"] == "bf16" else
                    ["1x1: bf16 asked, openvino ran f32: its figures are f32's"])
    text = table(doc)
    assert "ran: openvino " in text and "openvino bf16 against openvino f32" in text


def test_engines_side_by_side_in_one_document(tiny_model, topo):
    doc = run_infer(models.resolve(tiny_model), [parse_layout("1x1", topo)], duration=0.5,
                    rounds=1, warmup=1, topology=topo, progress=False,
                    engines=["ort", "openvino"])
    assert [d["layout"]["name"] for d in doc["layouts"]] == ["1x1 ort", "1x1 openvino"]
    assert "vs_first" not in doc["layouts"][0] and doc["layouts"][1]["vs_first"]
    ort, ov = (d["settings"] for d in doc["layouts"])
    assert [s["engine"] for s in ort + ov] == ["ort", "openvino"]
    assert doc["asked"]["engines"] == ["ort", "openvino"]
    assert all(d["accuracy"] == [] for d in doc["layouts"])  # f32 only: nothing to check
    text = table(doc)
    assert "ran: ort " in text and "1 intra-op thread, 1 inter-op, spinning, pinned, f32" in text
    assert "ran: openvino " in text and "1 stream x 1 thread (LATENCY hint), pinned, f32" in text
    warnings = doc.pop("warnings")  # as the CLI does: the document keeps them beside
    results.validate(json.loads(json.dumps(results.document("infer", doc, topo=topo,
                                                            warnings=warnings))))


def test_a_missing_openvino_names_its_extra(tiny_model, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    rc = cli.main(["infer", "--model", tiny_model, "--layouts", "1x1", "--engines", "openvino",
                   "--duration", "0.5", "--rounds", "1", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == ("numaprobe: this needs openvino, which is not "
                                       "installed: pip install 'numaprobe[openvino]'")


def test_the_cli_refuses_ort_bf16_in_one_line(tiny_model, capsys):
    rc = cli.main(["infer", "--model", tiny_model, "--layouts", "1x1", "--precision", "bf16",
                   "--duration", "0.5", "--rounds", "1", "-q"])
    assert rc == 2 and capsys.readouterr().err.strip() == (
        "numaprobe: onnxruntime's CPU provider runs f32 and int8 (a quantized copy); bf16 needs "
        "--engines openvino")


# ------------------------------------------------------------------------------ layout files

TWO_SOCKETS = numaprobe.read_topology(TREES / "two-socket-smt")


@pytest.mark.parametrize("item, where, allowed", [
    ({"cpus": "0", "engine": "tensorrt"}, "instances/0/engine",
     'must be one of ort, openvino, got "tensorrt"'),
    ({"cpus": "0", "engine": None}, "instances/0/engine", "must be one of ort, openvino, got null"),
    ({"cpus": "0", "precision": "fp8"}, "instances/0/precision",
     'must be one of f32, bf16, f16, int8, got "fp8"'),
    ({"cpus": "0", "precision": 16}, "instances/0/precision",
     "must be one of f32, bf16, f16, int8, got 16"),
    ({"cpus": "0", "engine": "ort", "precision": "bf16"}, "instances/0/precision",
     "onnxruntime's CPU provider runs f32 and int8 (a quantized copy); bf16 needs --engines openvino"),
    ({"cpus": "0-1", "engine": "ort", "streams": 2}, "instances/0/streams",
     "ONNX Runtime runs one request at a time per instance; 2 streams need engine openvino"),
    ({"cpus": "0", "streams": -1}, "instances/0/streams",
     "must be a whole number >= 0 (0: the engine's own), got -1"),
    ({"cpus": "0", "streams": True}, "instances/0/streams",
     "must be a whole number >= 0 (0: the engine's own), got true"),
    ({"cpus": "0", "engine": "openvino", "intra": None}, "instances/0/intra",
     "must be a whole number >= 0 (0: OpenVINO's default), got null"),
    ({"cpus": "0-1", "engine": "openvino", "intra": 1, "streams": 2}, "instances/0/streams",
     "2 streams need 2 threads or more; intra is 1"),
])
def test_layout_file_engine_fields_are_checked(tmp_path, item, where, allowed):
    f = tmp_path / "L.json"
    f.write_text(json.dumps({"instances": [item]}))
    with pytest.raises(UsageError) as e:
        parse_layout(str(f), TWO_SOCKETS)
    assert str(e.value) == f"layout file {f}: {where}: {allowed}"


def test_layout_file_engine_and_precision_are_kept_by_the_combinations(tmp_path):
    f = tmp_path / "mixed.toml"
    f.write_text('[[instances]]\ncpus = "0-1"\nengine = "openvino"\nprecision = "bf16"\n'
                 'streams = 2\n\n[[instances]]\ncpus = "2"\n')
    layout = parse_layout(str(f), TWO_SOCKETS)
    assert layout.instances == (
        Instance(cpus=(0, 1), policy=None, intra=2, engine="openvino", precision="bf16",
                 streams=2),
        Instance(cpus=(2,), policy=None, intra=1))
    assert layout.instances[1].to_dict()["engine"] == "ort"  # unset: the default
    layouts, notes = combine([layout], ["ort", "openvino"], ["f32"])
    assert [l.name for l in layouts] == ["mixed openvino+ort", "mixed openvino"]
    assert [[(i.engine, i.precision) for i in l.instances] for l in layouts] == [
        [("openvino", "bf16"), ("ort", "f32")], [("openvino", "bf16"), ("openvino", "f32")]]
    file_only = tmp_path / "ov.json"
    file_only.write_text(json.dumps({"instances": [{"cpus": "0", "engine": "openvino"}]}))
    once, _ = combine([parse_layout(str(file_only), TWO_SOCKETS)], ["ort", "openvino"], ["f32"])
    assert [l.name for l in once] == ["ov openvino"]  # its engine is its own: it runs once
