"""int8 and real inputs, and the CPU's units in view.

- int8: a quantized copy made once (onnxruntime.quantization), named by what made it and
  reused; run by both engines, each saying what it ran, measured against f32 on the same
  inputs; refused naming the flags on a captured CPU that has no integer dot products.
- ``--inputs FILE.npz``: real inputs fed to the workers and the accuracy check, every
  malformed file refused in one line that names what is wrong.
- The CPU's vector and matrix units read from cpuinfo (this machine and captured trees), and
  the hint a run gets when it leaves them idle: checked where the flags are present, and its
  absence where they are not, so both paths run on every CPU model.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

import numaprobe
from numaprobe import cli, results
from numaprobe.errors import UsageError
from numaprobe.topology import FEATURES, Topology
from numaprobe.workload import engines, models, quantize
from numaprobe.workload.infer import run_infer, table
from numaprobe.workload.layout import parse_layout

TREES = Path(__file__).parent / "data" / "sysfs"
IDLE = {u for units in engines.MATRIX.values() for u in units}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("int8-cache"))


# ------------------------------------------------------------------------------ the int8 copy

def test_the_int8_copy_is_made_once_and_named_by_what_made_it(tiny_model, cache):
    first = quantize.int8_copy(tiny_model, cache_dir=cache)
    again = quantize.int8_copy(tiny_model, cache_dir=cache)
    assert not first["cached"] and again["cached"] and again["path"] == first["path"]
    assert first["method"] == "static" and "8 generated inputs" in first["calibration"]
    ops = {n.op_type for n in onnx.load(first["path"]).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "MatMul"} <= ops  # QDQ around the MatMuls
    # Other calibration inputs, another method: other copies, the first left as it was.
    feeds = models.make_inputs(models.inputs(tiny_model), {}, seed=5)
    other = quantize.int8_copy(tiny_model, cache_dir=cache, samples=[feeds])
    dynamic = quantize.int8_copy(tiny_model, cache_dir=cache, method="dynamic")
    assert len({first["path"], other["path"], dynamic["path"]}) == 3
    assert other["calibration"] == "1 given input(s)"
    assert "MatMulInteger" in {n.op_type for n in onnx.load(dynamic["path"]).graph.node}
    assert not list(Path(cache).glob(".*.tmp"))  # nothing half-written left behind
    with pytest.raises(UsageError, match="unknown quantization 'fp4'; methods: static, dynamic"):
        quantize.int8_copy(tiny_model, cache_dir=cache, method="fp4")


def test_a_changed_model_gets_its_own_int8_copy(tiny_model, cache, tmp_path):
    m = onnx.load(tiny_model)
    w = onnx.numpy_helper.to_array(m.graph.initializer[0]).copy()
    w[0, 0] += 1
    m.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(w, m.graph.initializer[0].name))
    changed = tmp_path / "tiny.onnx"  # the same name, other weights
    onnx.save(m, changed)
    assert (quantize.int8_copy(str(changed), cache_dir=cache)["path"]
            != quantize.int8_copy(tiny_model, cache_dir=cache)["path"])


def test_int8_runs_on_both_engines_against_f32_and_says_what_ran(tiny_model, topo, cache,
                                                                   monkeypatch):
    monkeypatch.setenv("NUMAPROBE_CACHE", cache)
    doc = run_infer(models.resolve(tiny_model), [parse_layout("1x1", topo)], duration=0.3,
                    rounds=1, warmup=1, topology=topo, progress=False,
                    engines=["ort", "openvino"], precisions=["f32", "int8"])
    names = [d["layout"]["name"] for d in doc["layouts"]]
    assert names == ["1x1 ort f32", "1x1 ort int8", "1x1 openvino f32", "1x1 openvino int8"]
    assert doc["int8"]["method"] == "static" and doc["int8"]["file"].endswith(".onnx")
    for d in doc["layouts"]:
        (ran,) = d["settings"]
        assert ran["asked_precision"] == d["layout"]["name"].split()[-1]
        if ran["asked_precision"] == "f32":
            assert d["accuracy"] == [] and ran["precision"] == "f32"
            continue
        (acc,) = d["accuracy"]
        assert acc["reference"] == f"{ran['engine']} f32"
        assert acc["inputs"] == "generated, seed 0"
        # Two MatMuls of random weights in 8 bits: close, but not the same numbers.
        assert 0.99 < acc["outputs"][0]["cosine"] < 1 and acc["outputs"][0]["max_abs"] > 0
    ort8, ov8 = doc["layouts"][1]["settings"][0], doc["layouts"][3]["settings"][0]
    assert ort8["precision"] == "int8"
    # OpenVINO's runtime model says how many of its compute layers ran in u8/i8 (both here).
    assert ov8["int8_layers"] == "2 of 2 compute layers in int8" and ov8["precision"] == "int8"
    text = table(doc)
    assert "int8: a static quantized copy (MatMul, Gemm, Conv; the rest f32)" in text
    assert "ort int8 against ort f32 (inputs generated, seed 0)" in text
    warnings = doc.pop("warnings")
    results.validate(json.loads(json.dumps(results.document("infer", doc, topo=topo,
                                                            warnings=warnings))))


def test_int8_without_integer_dot_products_is_refused_naming_the_flags(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(TREES / "this-vm", tree)
    info = tree / "proc" / "cpuinfo"
    bare = {"avx2", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16"}
    info.write_text("\n".join(
        " ".join(w for w in line.split(" ") if w not in bare) if line.startswith("flags")
        else line for line in info.read_text().splitlines()) + "\n")
    t = numaprobe.read_topology(tree)
    assert "AVX2" not in t.settings.features
    with pytest.raises(UsageError) as e:
        engines.check_cpu("int8", t)
    assert str(e.value).startswith("int8 needs AMX-INT8 (amx_int8) or AVX512-VNNI "
                                   "(avx512_vnni) or AVX-VNNI (avx_vnni) or AVX2 (avx2)")
    assert "--allow-slow-precision" in str(e.value)
    engines.check_cpu("int8", t, allow_slow=True)
    engines.check_cpu("int8", numaprobe.read_topology(TREES / "this-vm"))  # AVX2 will do


# ------------------------------------------------------------------------------- real inputs

def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_real_inputs_are_fed_and_named(tiny_model, topo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NUMAPROBE_CACHE", str(tmp_path / "cache"))
    x = np.random.default_rng(7).standard_normal((3, 2, 256))  # 3 samples, batch 2, float64
    path = _npz(tmp_path / "real.npz", x=x)
    samples, dims = models.load_inputs(path, models.inputs(tiny_model))
    assert len(samples) == 3 and dims == {"batch": 2}
    assert samples[1]["x"].dtype == np.float32 and np.allclose(samples[1]["x"], x[1])
    out = tmp_path / "doc.json"
    rc = cli.main(["infer", "--model", tiny_model, "--layouts", "1x1", "--precision", "int8",
                   "--inputs", path, "--duration", "0.3", "--rounds", "1", "-q", "-o", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())["result"]
    (acc,) = doc["layouts"][0]["accuracy"]
    assert acc["inputs"] == "real.npz, sample 0"
    assert doc["int8"]["calibration"] == "3 given input(s)"
    assert doc["asked"]["dims"] == {"batch": 2} and doc["asked"]["inputs"] == path
    text = " ".join(capsys.readouterr().out.split())  # as wrapped at 79 columns
    assert "1 input from real.npz: x float32 [batch=2, 256]" in text


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.zeros((1, 256), np.float32)},
     "no array for input(s) x; array(s) y match no input; the model's inputs are x"),
    ({"x": np.zeros((1, 256), np.float32), "z": np.zeros(3)},
     "array(s) z match no input; the model's inputs are x"),
    ({"x": np.zeros((1, 256), np.int64)}, "array 'x' is int64, the input is float32"),
    ({"x": np.zeros((1, 255), np.float32)}, "array 'x' has 255 on axis 1, the input's is 256"),
    ({"x": np.zeros(256, np.float32)},
     "array 'x' has shape (256,); the input is [batch, 256], with an optional leading axis"),
])
def test_malformed_inputs_are_refused_saying_what_is_wrong(tiny_model, tmp_path, arrays,
                                                            message):
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UsageError) as e:
        models.load_inputs(path, models.inputs(tiny_model))
    assert str(e.value).startswith(f"--inputs {path}: ") and message in str(e.value)


def test_inputs_that_are_not_an_npz_or_clash_with_dim_are_refused(tiny_model, tmp_path,
                                                                   capsys):
    text = tmp_path / "notes.npz"
    text.write_text("not a zip")
    for path, said in ((str(text), "not an .npz file of arrays"),
                       (str(tmp_path / "missing.npz"), "no such file")):
        rc = cli.main(["infer", "--model", tiny_model, "--layouts", "1x1", "--inputs", path,
                       "--duration", "0.3", "--rounds", "1", "-q"])
        err = capsys.readouterr().err
        assert rc == 2 and said in err and "Traceback" not in err
    good = _npz(tmp_path / "b2.npz", x=np.zeros((2, 256), np.float32))
    rc = cli.main(["infer", "--model", tiny_model, "--layouts", "1x1", "--inputs", good,
                   "--dim", "batch=4", "--duration", "0.3", "--rounds", "1", "-q"])
    assert rc == 2 and capsys.readouterr().err.strip() == (
        f"numaprobe: --inputs {good} gives batch=2; --dim says batch=4")


# ----------------------------------------------------------------------------- the CPU's units

@pytest.mark.parametrize("tree, has", [
    ("two-socket-smt", {"AMX-BF16", "AMX-INT8", "AVX512-BF16", "AVX-VNNI"}),
    ("cxl-hmat", {"AVX512-VNNI", "AVX2", "FMA"}),
])
def test_units_are_read_from_cpuinfo_and_kept_in_documents(tree, has):
    t = numaprobe.read_topology(TREES / tree)
    assert has <= set(t.settings.features)
    assert f"  units: {', '.join(t.settings.features)}" in t.summary().splitlines()
    again = Topology.from_dict(t.to_dict())
    assert again.settings.features == t.settings.features
    assert results.fingerprint(t)["cpu_features"] == list(t.settings.features)
    names = [n for _, n in FEATURES]
    assert list(t.settings.features) == sorted(t.settings.features, key=names.index)


def test_a_run_that_leaves_matrix_units_idle_is_told_how_to_use_them():
    amx = numaprobe.read_topology(TREES / "two-socket-smt")
    hint = engines.idle_units_hint(amx, [("ort", "f32")])
    assert hint == ("AMX-BF16, AVX512-BF16, AVX512-FP16, AMX-INT8, AVX512-VNNI, AVX-VNNI "
                    "present; f32 on ort uses none of them; try `--engines ort,openvino "
                    "--precision f32,bf16,f16,int8`")
    # What ran is left out of the hint; a run that used them all gets none.
    assert engines.idle_units_hint(amx, [("openvino", "bf16"), ("openvino", "f16"),
                                         ("ort", "int8")]) is None
    vnni = numaprobe.read_topology(TREES / "cxl-hmat")  # VNNI only: int8, which ort runs
    assert engines.idle_units_hint(vnni, [], command="numaprobe infer ") == (
        "AVX512-VNNI present; f32 inference uses none of them; try `numaprobe infer "
        "--engines ort --precision f32,int8`")


def test_this_cpus_units_and_the_hint_agree_with_its_flags(topo):
    flags = set(topo.settings.cpu_flags)
    assert flags, "cpuinfo's flags were not read"
    assert set(topo.settings.features) == {n for f, n in FEATURES if f in flags}
    hint = engines.idle_units_hint(topo, [("ort", "f32")])
    if flags & IDLE:  # a CPU with VNNI, AVX512-BF16 or AMX: named, with what would use them
        assert hint and "f32 on ort uses none of them" in hint
        assert all(n in hint for n in engines.idle_units(topo, {"f32"})[0])
    else:             # none here: nothing to say
        assert hint is None
