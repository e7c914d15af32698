"""Compute ceilings (numaprobe flops): every kernel this CPU has runs and is credited with the
operations it does (flops.c's own tests check the arithmetic against a scalar reference);
every kernel it lacks is refused naming the flag, so both paths are checked on every CPU
model the tests meet. Rates are not timed against goals here (bench/flops.py compares them
with a plain C reference); the sanity bounds below only catch an operation count that is
off by a factor."""
import json
import platform

import pytest

from numaprobe import _core, cli, probes, results
from numaprobe.errors import UsageError
from numaprobe.probes import _flops

X86 = platform.machine() == "x86_64"


@pytest.fixture(scope="module")
def flops(topo):
    return probes.flops(reps=3, pass_s=0.005, topology=topo, progress=False)


def _needs(kernel, flags):
    need = {"f32_scalar": {"fma"} if X86 else set(), "f32_avx2": {"avx2", "fma"},
            "f32_avx512": {"avx512f"}, "bf16_avx512": {"avx512_bf16"},
            "int8_avxvnni": {"avx_vnni"}, "int8_avx512": {"avx512_vnni"},
            "bf16_amx": {"amx_bf16"}, "int8_amx": {"amx_int8"}, "f32_neon": set(),
            "f32_sve": {"sve"}}[kernel]
    return need <= flags


def test_each_kernel_runs_where_the_cpu_has_it_and_is_refused_where_not(flops, topo):
    flags = set(topo.settings.cpu_flags)
    r = flops.to_dict()
    ran = {k["kernel"] for k in r["kernels"]}
    refused = {x["kernel"]: x["why"] for x in r["refused"]}
    assert "clock" in ran
    for k in _flops.KERNELS:
        if _flops.ARCH.get(k, platform.machine()) != platform.machine():
            assert k not in ran and k not in refused  # another architecture's: not asked
            continue
        if k == "clock":
            continue
        if k.endswith("_amx") and _needs(k, flags) and k in refused:
            assert "arch_prctl" in refused[k]  # the CPU has it; the kernel said no
            continue
        assert (k in ran) == _needs(k, flags), (k, refused.get(k))
        if k in refused:
            assert refused[k] == f"this CPU has no {_flops.NEEDS[k]}"


def test_rates_are_credited_with_the_operations_done(flops):
    r = flops.to_dict()
    clock = next(k for k in r["kernels"] if k["kernel"] == "clock")
    hz = clock["one_core"]["median"]
    assert 2e8 < hz < 1e10  # a core clock, not a count off by a factor
    for k in r["kernels"]:
        if k["kernel"] == "clock":
            continue
        # Units of one width retired per cycle: 1 to 4 for FMA and dot products, 1/16 for
        # an AMX tile multiply. A wrong operation count would land far outside.
        ipc = k["instructions_per_cycle"]
        assert (1 / 64 if k["kernel"].endswith("_amx") else 0.25) < ipc < 8, k
        if k["all_cores"]:
            assert k["all_cores"]["median"] > k["one_core"]["median"]  # more cores, more work
    assert r["cpus"] == sorted(r["cpus"])


def test_the_kernel_table_is_the_c_one():
    table = _core.fl_kernels()
    assert [k["name"] for k in table] == list(_flops.KERNELS)
    assert _core.fl_ops("f32_avx2", 10) == 10 * 12 * 16  # 12 FMAs of 8 lanes x 2
    assert _core.fl_ops("clock", 10) == 1000
    with pytest.raises(ValueError, match="unknown kernel 'x'; kernels: clock, f32_scalar"):
        _core.fl_supported("x")


def test_bad_kernels_and_counts_are_refused(topo, capsys):
    with pytest.raises(UsageError, match="unknown kernel 'f64'; kernels: clock"):
        probes.flops(["f64"], topology=topo)
    with pytest.raises(UsageError, match="reps must be a whole number from 1 to 1000"):
        probes.flops(["clock"], reps=0, topology=topo)
    assert cli.main(["flops", "--kernels", "f32_avx2,nope", "-q"]) == 2
    assert "unknown kernel 'nope'" in capsys.readouterr().err


def test_the_command_writes_a_valid_document(tmp_path, capsys):
    out = tmp_path / "flops.json"
    assert cli.main(["flops", "--kernels", "f32_scalar", "--reps", "2", "-q",
                     "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("core clock ") and " x the TSC (" in text
    doc = json.loads(out.read_text())
    results.validate(doc)
    names = [k["kernel"] for k in doc["result"]["kernels"]]
    assert names[0] == "clock"  # always measured: it makes the rates per cycle
    assert _flops.best_ceiling(doc["result"], "f32") is None or (
        _flops.best_ceiling(doc["result"], "f32")[0] == "f32_scalar")
