"""The model's cost from its ONNX graph, checked against counts worked out by hand for the
built-in models (their shapes are in models.py) and for small graphs of each counted op."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from numaprobe import cli, results
from numaprobe.errors import UsageError
from numaprobe.workload import cost, models


def encoder_ops(seq, hidden=384, heads=12, inter=1536, layers=6):
    """MatMul operations of the built-in encoder by hand: Q, K, V and the output projection
    (4 x 2·s·h·h), the scores and the weighted values (2 x 2·H·s·s·d), the feed-forward
    block (2 x 2·s·h·I), per layer."""
    d = hidden // heads
    return layers * (4 * 2 * seq * hidden * hidden + 2 * 2 * heads * seq * seq * d
                     + 2 * 2 * seq * hidden * inter)


@pytest.mark.parametrize("seq", [128, 64])
def test_the_encoder_counted_as_by_hand(seq):
    c = cost.model_cost(models.resolve("encoder").path, {"seq": seq})
    t = c.by_type()
    assert t["MatMul"]["ops"] == encoder_ops(seq) and t["MatMul"]["nodes"] == 48
    assert t["Softmax"]["ops"] == 5 * 6 * 12 * seq * seq      # 5 per score, 6 layers
    assert t["Gelu"]["ops"] == 8 * 6 * seq * 1536
    assert t["LayerNormalization"]["ops"] == 8 * 13 * seq * 384
    # Weights read: all but the two embedding tables, of which only the rows gathered (and
    # the small constants, reshape targets and the scale, once per use: under 1 KiB more).
    stored = c.stored_weight_bytes
    tables = (30522 + 512) * 384 * 4
    extra = c.weight_bytes - (stored - tables + 2 * seq * 384 * 4)
    assert 0 <= extra < 1024
    assert c.measured_shapes == 2  # Range and the position Gather: they depend on a value


def test_the_mlp_and_the_conv_stack_counted_as_by_hand():
    mlp = cost.model_cost(models.resolve("mlp").path, {"batch": 2})
    widths = (1024, 4096, 4096, 4096, 1024)
    macs = sum(a * b for a, b in zip(widths, widths[1:]))
    assert mlp.by_type()["MatMul"]["ops"] == 2 * 2 * macs
    assert mlp.by_type()["Relu"]["ops"] == 2 * 3 * 4096 and mlp.measured_shapes == 0
    assert mlp.weight_bytes == mlp.stored_weight_bytes == 4 * (macs + sum(widths[1:]))
    conv = cost.model_cost(models.resolve("conv").path, {})
    size, chans, expect = 224, 3, 0
    for out, pool in models._CONV_LAYERS:
        expect += 2 * size * size * out * chans * 9 + size * size * out  # with its bias
        chans = out
        size //= 2 if pool else 1
    assert conv.by_type()["Conv"]["ops"] == expect


def _model(nodes, inputs, outputs, inits, path):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return str(path)


def test_gemm_grouped_conv_pooling_and_reductions(tmp_path):
    f = TensorProto.FLOAT
    w = numpy_helper.from_array(np.ones((8, 2, 3, 3), np.float32), "w")       # 4 groups
    g = numpy_helper.from_array(np.ones((64, 10), np.float32), "g")
    path = _model([
        helper.make_node("Conv", ["x", "w"], ["c"], group=4, pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("ReduceMean", ["p"], ["m"], axes=[1], keepdims=0),
        helper.make_node("Flatten", ["m"], ["fl"]),
        helper.make_node("Gemm", ["fl", "g", "bias"], ["y"]),
    ], [helper.make_tensor_value_info("x", f, ["batch", 8, 16, 16])],
        [helper.make_tensor_value_info("y", f, ["batch", 10])],
        [w, g, numpy_helper.from_array(np.zeros(10, np.float32), "bias")], tmp_path / "m.onnx")
    t = cost.model_cost(path, {"batch": 3}).by_type()
    assert t["Conv"]["ops"] == 2 * 3 * 8 * 16 * 16 * 2 * 9         # no bias given
    assert t["MaxPool"]["ops"] == 3 * 8 * 8 * 8 * 4                # kernel area per output
    assert t["ReduceMean"]["ops"] == 3 * 8 * 8 * 8                 # one per input element
    assert t["Gemm"]["ops"] == 2 * 3 * 64 * 10 + 3 * 10            # with its bias
    assert t["Flatten"]["ops"] == 0
    assert t["Conv"]["weight_bytes"] == 8 * 2 * 9 * 4
    assert t["Conv"]["activation_bytes"] == 4 * (3 * 8 * 16 * 16) * 2  # read x, write c


def test_a_missing_dimension_is_refused_naming_it(tmp_path):
    with pytest.raises(UsageError, match="dynamic dimension 'seq'"):
        cost.model_cost(models.resolve("encoder").path, {})


def test_the_cost_command_prints_and_saves_a_valid_document(tmp_path, capsys):
    out = tmp_path / "cost.json"
    assert cli.main(["cost", "--model", "mlp", "-o", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "83.9 M operations; weights read 160.1 MiB" in text
    doc = json.loads(out.read_text())
    results.validate(doc)
    assert doc["kind"] == "cost" and doc["result"]["inputs"] == {"x": [1, 1024]}
    assert list(doc["result"]["by_type"])[0] == "MatMul"
    assert cli.main(["cost", "--model", "mlp", "--dim", "seq=3", "-q"]) == 2
    assert "no input has them" in capsys.readouterr().err


def test_infer_reports_what_each_layout_achieved(tiny_model, topo):
    from numaprobe.workload.infer import run_infer, table
    from numaprobe.workload.layout import parse_layout
    doc = run_infer(models.resolve(tiny_model), [parse_layout("1x1", topo)], duration=0.3,
                    rounds=1, warmup=1, topology=topo, progress=False)
    ops = 2 * (256 * 512 + 512 * 64) + 512  # two MatMuls and a Relu, batch 1
    assert doc["cost"]["ops"] == ops
    d = doc["layouts"][0]
    assert d["achieved"]["ops_per_s"] == pytest.approx(ops * d["throughput"]["per_s"])
    assert "    work: " in table(doc) and " G operations/s, weights read " in table(doc)


def test_the_profiling_pass_says_where_the_time_goes_and_is_never_compared(tiny_model, topo):
    import glob
    import tempfile
    from numaprobe.workload.infer import run_infer, table
    from numaprobe.workload.layout import parse_layout
    before = set(glob.glob(f"{tempfile.gettempdir()}/numaprobe-profile-*"))
    doc = run_infer(models.resolve(tiny_model), [parse_layout("1x1", topo)], duration=0.5,
                    rounds=1, warmup=1, topology=topo, progress=False,
                    engines=["ort", "openvino"], profile=True)
    for d in doc["layouts"]:
        assert len(d["rounds"]) == 1  # the pass is not a round
        p = d["profile"]
        assert p["inferences"] > 0
        assert sum(k["share"] for k in p["kernels"].values()) == pytest.approx(1.0)
        # Whatever the engine calls its kernels (MatMul, FullyConnected), their arithmetic
        # is MatMul's, and the rate in it follows from the model's cost.
        mm = p["families"]["MatMul"]
        assert mm["share"] > 0.3 and mm["ops_per_s"] > 1e6
        assert "profile (" in table(doc) and "profiler on, not compared" in table(doc)
    assert set(glob.glob(f"{tempfile.gettempdir()}/numaprobe-profile-*")) == before
    warnings = doc.pop("warnings")
    results.validate(json.loads(json.dumps(results.document("infer", doc, topo=topo,
                                                            warnings=warnings))))


# ----------------------------------------------------------------------------- the roofline

CEILING = {"cpus": "0-1", "node": 0,
           "compute": {"kernel": "f32_avx2", "name": "AVX2 fp32", "ops_per_s": 100e9, "cores": 2},
           "memory": {"level": "node 0's DRAM", "bytes_per_s": 20e9, "threads": 2,
                      "why": "the weights (160 MiB) do not stay in cache: a chase over 160 MiB "
                             "costs 104 ns a load against 106 ns from DRAM"}}


@pytest.mark.parametrize("ops, weights, bound, words", [
    (68e9, 1e9, "compute", "compute-bound: 68 % of the AVX2 fp32 peak of CPUs 0-1 (68 of 100 "
                           "G op/s)"),
    (5e9, 18.2e9, "memory", "memory-bound: weights stream at 91 % of the read bandwidth of "
                            "node 0's DRAM from CPUs 0-1 (18.2 of 20 GB/s); the weights (160 "
                            "MiB) do not stay in cache: a chase"),
    (22e9, 1.8e9, "neither", "neither: 22 % of compute (AVX2 fp32), 9 % of bandwidth"),
])
def test_the_bound_is_named_from_the_shares_of_the_ceilings(ops, weights, bound, words):
    from numaprobe.workload import roofline
    d = {"layout": {"instances": [{}, {}]},  # two instances: each did half
         "achieved": {"ops_per_s": 2 * ops, "weight_bytes_per_s": 2 * weights}}
    v = roofline.verdict(d, CEILING)
    assert v["bound"] == bound and v["words"].startswith(words)
    assert v["compute_share"] == pytest.approx(ops / 100e9)


def test_the_ceilings_are_this_cpus_and_the_level_the_weights_fit(topo):
    from numaprobe import _core
    from numaprobe.probes import _latency
    from numaprobe.workload import roofline
    layout = {"instances": [{"cpus": "0", "nodes": "0", "policy": "bind"}]}
    cache = {}
    big = roofline.ceilings(layout, "f32", 1e12, topo, cache)  # 1 TB of weights: DRAM
    fastest = next(k for k in roofline.KERNELS_FOR["f32"] if _core.fl_supported(k) is None)
    assert big["compute"]["kernel"] == fastest and big["compute"]["ops_per_s"] > 1e8
    assert big["memory"]["level"] == "node 0's DRAM" and big["memory"]["bytes_per_s"] > 1e8
    assert big["memory"]["why"].startswith("the weights (931.3 GiB) do not stay in cache: ")
    assert big["memory"]["fit"]["ns"] is None  # far beyond the cache: not measured
    assert roofline.ceilings(layout, "f32", 1e12, topo, cache) is big  # measured once
    # 1 MB fits every cache a CPU of this project has (L2 0.5-2 MiB, L3 more): measured
    small = roofline.ceilings(layout, "int8", 1e6, topo, {})
    assert small["memory"]["level"] == "the last-level cache", small["memory"]["why"]
    fit = small["memory"]["fit"]
    assert fit["fits"] and fit["ns"] < _latency.FITS_AT * fit["dram_ns"]
    assert small["memory"]["why"].startswith("the weights (976.6 KiB) stay in cache: a chase "
                                             "over 976.5 KiB costs ")  # whole chain lines
    if all(_core.fl_supported(k) is not None for k in roofline.KERNELS_FOR["int8"]):
        assert small["compute_note"] == ("no int8 kernel runs on this CPU: the fp32 ceiling "
                                         "stands in")
    else:
        assert small["compute"]["kernel"].startswith("int8_")


def test_infer_profile_names_a_bound_for_every_layout(tiny_model, topo):
    from numaprobe.workload.infer import run_infer, table
    from numaprobe.workload.layout import parse_layout
    doc = run_infer(models.resolve(tiny_model), [parse_layout("1x1", topo)], duration=0.3,
                    rounds=1, warmup=1, topology=topo, progress=False, profile=True)
    (d,) = doc["layouts"]
    assert d["roofline"]["bound"] in ("compute", "memory", "neither")
    assert 0 < d["roofline"]["compute_share"] and 0 < d["roofline"]["memory_share"]
    assert "    bound: " in table(doc)
    from numaprobe.workload.infer import _plot_roofline
    fig = _plot_roofline({"machine": {}}, doc)
    (ax,) = fig.axes
    point = [line for line in ax.lines if line.get_label().startswith("1x1: ")]
    assert point and point[0].get_ydata()[0] == pytest.approx(d["achieved"]["ops_per_s"] / 1e9)


def test_counters_are_read_where_offered_and_named_where_not(tiny_model, topo):
    """The kernel's software events on every Linux; the hardware's where the machine offers
    them (bare metal), else the reason (most VMs: ENOENT), never a zero."""
    from numaprobe.workload.infer import run_infer, table
    from numaprobe.workload.layout import parse_layout
    from numaprobe.workload.telemetry import PERF_EVENTS
    doc = run_infer(models.resolve(tiny_model), [parse_layout("1x1", topo)], duration=0.3,
                    rounds=1, warmup=1, topology=topo, progress=False)
    c = doc["layouts"][0]["counters"]
    per, refused = c["per_inference"], c["refused"]
    for name in PERF_EVENTS:
        assert (name in per) != (name in refused), name  # counted, or said why not
    assert per.get("task_clock_ns", 1) > 0
    if "cycles" in per:
        assert per["cycles"] > 0 and per["ipc"] > 0
    else:
        assert refused["cycles"].startswith(("not offered", "not allowed", "no perf_event_open"))
        assert "counters per inference: hardware counters " in " ".join(table(doc).split())


def test_instances_sharing_a_last_level_cache_count_their_weights_together():
    from pathlib import Path
    import numaprobe
    from numaprobe.workload import roofline
    two = numaprobe.read_topology(Path(__file__).parent / "data" / "sysfs" / "two-socket-smt")
    lay = lambda *cpus: {"instances": [{"cpus": c} for c in cpus]}
    assert roofline._sharing(lay("0", "1", "8"), 0, two) == 2  # CPUs 0 and 1: socket 0's L3
    assert roofline._sharing(lay("0", "8"), 0, two) == 1
    assert roofline._sharing(lay("8-9", "10-11", "12"), 8, two) == 3
