"""The model zoo of ``numaprobe infer``: built-in generated models, files, package models, and
the inputs made for them.  Building the encoder (~90 MB) is the costly part: each builtin is
built once per module, into a temporary cache."""
import importlib.util
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from numaprobe.workload import models


# Small dims keep the run short; per builtin: (dims, expected output shape)
SMALL = {
    "encoder": ({"batch": 1, "seq": 16}, (1, 16, 384)),
    "mlp": ({"batch": 1}, (1, 1024)),
    "conv": ({"batch": 1}, (1, 256)),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def built(cache):
    """name -> ModelRef, each builtin generated once (seed 0)."""
    return {name: models.resolve(name, cache_dir=cache) for name in models.BUILTINS}


def _session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def test_builtins_listed():
    assert set(models.BUILTINS) == set(SMALL)
    for name, (description, builder) in models.BUILTINS.items():
        assert description and callable(builder), name


@pytest.mark.parametrize("name", sorted(SMALL))
def test_builtin_is_valid_and_runs(built, name):
    ref = built[name]
    assert ref.source == "builtin" and ref.name == name
    assert os.path.isfile(ref.path) and ref.bytes == os.path.getsize(ref.path)
    assert f"seed0-v{models.MODEL_VERSION}" in os.path.basename(ref.path)
    onnx.checker.check_model(ref.path, full_check=True)  # also runs shape inference

    dims, expected = SMALL[name]
    feeds = models.make_inputs(models.inputs(ref.path), dims)
    outputs = _session(ref.path).run(None, feeds)
    assert len(outputs) == 1
    assert outputs[0].shape == expected and outputs[0].dtype == np.float32
    assert np.isfinite(outputs[0]).all()
    assert outputs[0].std() > 0  # not degenerate


def test_encoder_signature_and_size(built):
    specs = models.inputs(built["encoder"].path)
    assert specs == [models.InputSpec("input_ids", "int64", ("batch", "seq")),
                     models.InputSpec("attention_mask", "int64", ("batch", "seq"))]
    d = models.describe(built["encoder"])
    assert 21e6 < d["params"] < 24e6  # MiniLM-L6: ~22.6 M
    assert 0 <= d["param_bytes"] - 4 * d["params"] < 1000  # float32, and a few int64 shapes
    assert d["bytes"] > d["param_bytes"]
    assert d["opsets"] == {"ai.onnx": models.OPSET}
    assert d["inputs"][0] == {"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]}
    assert d["outputs"] == [{"name": "last_hidden_state", "shape": ["batch", "seq", 384]}]
    ops = {n.op_type for n in onnx.load(built["encoder"].path).graph.node}
    assert {"Gather", "LayerNormalization", "MatMul", "Softmax", "Gelu"} <= ops


def test_encoder_attention_mask_masks(built):
    """Padding positions must not change what unpadded positions see."""
    sess = _session(built["encoder"].path)
    specs = models.inputs(built["encoder"].path)
    full = models.make_inputs(specs, {"seq": 8})
    padded = {"input_ids": np.concatenate([full["input_ids"], np.zeros((1, 4), np.int64)], 1),
              "attention_mask": np.concatenate([full["attention_mask"],
                                                np.zeros((1, 4), np.int64)], 1)}
    a = sess.run(None, full)[0]
    b = sess.run(None, padded)[0][:, :8]
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_same_seed_same_bytes(built):
    # Full-size mlp/encoder builds take seconds: the encoder's graph code runs at a small size.
    def small_encoder(seed):
        return models.build_encoder(seed, vocab=1000, layers=1).SerializeToString()
    assert small_encoder(0) == small_encoder(0) != small_encoder(1)
    with open(built["conv"].path, "rb") as f:
        assert f.read() == models.build_conv(0).SerializeToString()
    assert models.build_conv(1).SerializeToString() != models.build_conv(0).SerializeToString()


def test_resolve_caches(built, cache):
    ref = built["encoder"]
    before = os.stat(ref.path).st_mtime_ns
    again = models.resolve("encoder", cache_dir=cache)
    assert again == ref and os.stat(ref.path).st_mtime_ns == before
    assert sorted(os.listdir(cache)) == sorted(os.path.basename(r.path) for r in built.values())


def test_resolve_seed_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMAPROBE_CACHE", str(tmp_path))
    assert models.default_cache_dir() == tmp_path
    ref = models.resolve("conv", seed=7)
    assert os.path.dirname(ref.path) == str(tmp_path) and "seed7" in ref.path
    assert os.listdir(tmp_path) == [os.path.basename(ref.path)]  # no temp file left behind


def test_resolve_file(built, tmp_path):
    ref = models.resolve(built["conv"].path)
    assert ref.source == "file" and ref.path == built["conv"].path
    assert ref.bytes == built["conv"].bytes


def test_invalid_file(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"this is not a protobuf \x00\xff\xfe")
    with pytest.raises(ValueError, match=r"x\.onnx is not an ONNX model: "):
        models.resolve(str(bad))
    with pytest.raises(ValueError, match="no such model file"):
        models.resolve(str(tmp_path / "missing.onnx"))


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError) as e:
        models.resolve("resnet9000")
    for word in [*models.BUILTINS, "magika", ".onnx"]:
        assert word in str(e.value)
    with pytest.raises(ValueError, match="package models that numaprobe knows are magika"):
        models.resolve("package:resnet9000")


def test_missing_dynamic_dim():
    specs = [models.InputSpec("input_ids", "int64", ("batch", "seq"))]
    with pytest.raises(ValueError, match=r"input 'input_ids' has a dynamic dimension 'seq': "
                                         r"give it, e.g. --dim seq="):
        models.make_inputs(specs, {})
    with pytest.raises(ValueError, match="sq given but no input has them"):
        models.make_inputs(specs, {"seq": 4, "sq": 4})
    with pytest.raises(ValueError, match="positive integer"):
        models.make_inputs(specs, {"seq": 0})


def test_make_inputs_values():
    specs = [models.InputSpec("input_ids", "int64", ("batch", "seq")),
             models.InputSpec("attention_mask", "int64", ("batch", "seq")),
             models.InputSpec("token_type_ids", "int64", ("batch", "seq")),
             models.InputSpec("position_ids", "int64", ("batch", "seq")),
             models.InputSpec("bytes", "int32", ("unk__214", 2048)),   # magika's, tf2onnx-named
             models.InputSpec("pixels", "float16", ("x.dim0", 3, 4, 4)),
             models.InputSpec("flag", "bool", (2,))]
    a = models.make_inputs(specs, {"seq": 64, "batch": 2}, seed=5)
    assert {k: v.shape for k, v in a.items()} == {
        "input_ids": (2, 64), "attention_mask": (2, 64), "token_type_ids": (2, 64),
        "position_ids": (2, 64), "bytes": (2, 2048), "pixels": (2, 3, 4, 4), "flag": (2,)}
    ids = a["input_ids"]
    assert ids.dtype == np.int64 and 0 <= ids.min() < ids.max() < 1000
    assert (a["attention_mask"] == 1).all() and (a["token_type_ids"] == 0).all()
    assert (a["position_ids"][1] == np.arange(64)).all()
    assert a["bytes"].dtype == np.int32 and 0 <= a["bytes"].min() and a["bytes"].max() < 256
    assert a["pixels"].dtype == np.float16 and not a["flag"].any()
    b = models.make_inputs(specs, {"seq": 64, "batch": 2}, seed=5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = models.make_inputs(specs, {"seq": 64, "batch": 2}, seed=6)
    assert not np.array_equal(a["input_ids"], c["input_ids"])
    # batch defaults to 1; an anonymous leading dim follows it unless given by its own name
    d = models.make_inputs(specs, {"seq": 8, "unk__214": 3})
    assert d["input_ids"].shape == (1, 8) and d["bytes"].shape == (3, 2048)


def test_inputs_unnamed_dims_and_initializer_inputs(tmp_path):
    from onnx import TensorProto, helper, numpy_helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 2])  # old-style: also an input
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    w_init = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x, w], [y],
                              initializer=[w_init])
    path = tmp_path / "old.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    assert models.inputs(str(path)) == [models.InputSpec("x", "float32", ("x.dim0", 4))]
    ref = models.resolve(str(path))
    assert ref.name == "old" and models.describe(ref)["params"] == 8


def test_package_model_magika(tmp_path):
    if importlib.util.find_spec("magika") is None:
        pytest.skip("magika is not installed (pip install magika, or numaprobe[models])")
    ref = models.resolve("magika")
    assert ref.source == "package" and ref.path.endswith(".onnx") and ref.bytes > 100_000
    assert models.resolve("package:magika") == ref
    specs = models.inputs(ref.path)
    assert [s.name for s in specs] == ["bytes"] and specs[0].dtype == "int32"
    out = _session(ref.path).run(None, models.make_inputs(specs, {}))
    assert out[0].shape[0] == 1 and np.isfinite(out[0]).all()


def test_package_not_installed(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "magika" else real(name, *a))
    with pytest.raises(ValueError, match="pip install magika"):
        models.resolve("magika")


def _resolve_conv(args):
    cache_dir, seed = args
    return models.resolve("conv", cache_dir=cache_dir, seed=seed).path


def test_resolve_race(tmp_path):
    """Processes that generate the same builtin at once all get the same, complete file."""
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(4) as pool:
        paths = pool.map(_resolve_conv, [(str(tmp_path), 3)] * 4)
    assert len(set(paths)) == 1
    assert os.listdir(tmp_path) == [os.path.basename(paths[0])]
    with open(paths[0], "rb") as f:
        assert f.read() == models.build_conv(3).SerializeToString()


def _wheel(path, members, data):
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        for m in members:
            z.writestr(m, data)
        z.writestr("pkg/__init__.py", "")
    return str(path)


def test_a_wheel_is_opened_for_its_model(built, tmp_path, cache):
    data = open(built["mlp"].path, "rb").read()
    one = _wheel(tmp_path / "one-1.0-py3-none-any.whl", ["pkg/models/net.onnx"], data)
    ref = models.resolve(one, cache_dir=cache)
    assert ref.name == "net" and open(ref.path, "rb").read() == data  # not "Unable to parse"
    assert models.resolve(one, cache_dir=cache).path == ref.path  # extracted once
    two = _wheel(tmp_path / "two-1.0-py3-none-any.whl", ["pkg/a.onnx", "pkg/b.onnx"], data)
    with pytest.raises(ValueError, match=r"holds 2 .onnx files \(pkg/a.onnx, pkg/b.onnx\): "
                                         r"pick one with --model .*two-1.0-py3-none-any.whl#"):
        models.resolve(two, cache_dir=cache)
    assert models.resolve(f"{two}#pkg/b.onnx", cache_dir=cache).name == "b"
    with pytest.raises(ValueError, match="has no pkg/c.onnx; its .onnx files: pkg/a.onnx"):
        models.resolve(f"{two}#pkg/c.onnx", cache_dir=cache)
    (tmp_path / "bad.whl").write_text("not a zip")
    with pytest.raises(ValueError, match="cannot read the wheel"):
        models.resolve(str(tmp_path / "bad.whl"), cache_dir=cache)


def test_an_installed_package_that_ships_a_model_is_found(built, tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "shipsamodel"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "weights" / "m.onnx").write_bytes(open(built["mlp"].path, "rb").read())
    (tmp_path / "site" / "shipsnothing").mkdir()
    (tmp_path / "site" / "shipsnothing" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    ref = models.resolve("shipsamodel")
    assert ref.source == "package" and ref.path.endswith("weights/m.onnx")
    assert models.resolve("package:shipsamodel") == ref
    with pytest.raises(ValueError, match="the installed package shipsnothing holds no .onnx"):
        models.resolve("shipsnothing")
    with pytest.raises(ValueError, match="unknown model 'nosuchpackage'"):
        models.resolve("nosuchpackage")
