"""The fleet report: the outlier rule on literal fleets, the report on documents of several
hosts (one made to look misconfigured: the report must single it out and name the
difference), and the command line on a directory, its document against the schema."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from numaprobe import kinds, results
from numaprobe.errors import UsageError
from numaprobe.fleet import report as F

DATA = Path(__file__).parent / "data"
QUICK = json.loads((DATA / "documents" / "v1" / "quick.json").read_text())


@pytest.mark.parametrize("values, odd", [
    ({"a": 100, "b": 101, "c": 99, "d": 100, "e": 140}, ["e"]),
    ({"a": 100, "b": 101, "c": 99, "d": 100, "e": 60}, ["e"]),
    ({"a": 100, "b": 100, "c": 100, "d": 100.5}, []),       # the MAD floor: 1 % of 100
    ({"a": 100, "b": 100, "c": 100, "d": 104}, []),          # MAD 0: the floor, z 2.7
    ({"a": 100, "b": 100, "c": 100, "d": 106}, ["d"]),       # z 4.0: beyond 3.5
    ({"a": 100, "b": 300}, []),                              # two hosts: no majority
    ({"a": 10, "b": 12, "c": 14, "d": 16, "e": 18}, []),     # a spread, no odd one
])
def test_the_outlier_rule_on_literal_fleets(values, odd):
    assert F.outliers(values)["outliers"] == odd


def test_the_robust_z_is_the_textbook_one():
    got = F.outliers({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 100.0})
    assert got["median"] == 3.0 and got["mad"] == 1.0
    assert got["z"]["e"] == pytest.approx(0.6745 * 97) and got["outliers"] == ["e"]


def _fleet(tmp_path, n=5):
    """n copies of a recorded quick check as n hosts, a little apart; host3 has THP off and
    a DRAM latency 40 % higher, host4 another kernel and the same figures as the rest."""
    for k in range(n):
        d = copy.deepcopy(QUICK)
        d["machine"]["hostname"] = f"host{k}"
        d["noise"]["foreign_fraction"] = 0.01  # quiet runs (the recorded one was not)
        d["result"]["latency"]["cells"][0]["ns"]["median"] *= 1 + 0.01 * k
        if k == 3:
            d["result"]["latency"]["cells"][0]["ns"]["median"] *= 1.4
            d["machine"]["thp"] = "never"
        if k == 4:
            d["machine"]["kernel"] = "6.1.0-odd"
        (tmp_path / f"host{k}.json").write_text(json.dumps(d))
    return tmp_path


def test_the_report_singles_out_the_odd_host_and_names_the_difference(tmp_path):
    docs, skipped = F.load_dir(_fleet(tmp_path))
    r = F.fleet_report(docs, skipped)
    assert [h["host"] for h in r["hosts"]] == [f"host{k}" for k in range(5)]
    lat = next(f for f in r["figures"] if f["name"] == "latency node 0 -> node 0")
    (o,) = lat["outliers"]
    assert o["host"] == "host3" and o["worse"] and o["z"] > F.Z_OUT
    assert o["may_explain"] == ["THP: never (the fleet's majority: madvise)"]
    # every other figure agrees across the fleet: no outlier there
    assert all(not f["outliers"] for f in r["figures"] if f is not lat)
    # host4's kernel differs: flagged on that ground although its figures do not stand out
    kernel = next(s for s in r["settings"] if s["key"] == "kernel")
    assert kernel["differ"] == [{"host": "host4", "value": "6.1.0-odd"}]
    assert next(h for h in r["hosts"] if h["host"] == "host4")["differs"] == [
        "kernel: 6.1.0-odd (the fleet's majority: 6.18.44-fc-v1045)"]
    text = F.fleet_text({"result": r})
    assert "host3: latency node 0 -> node 0 254.2 ns against the fleet's median 179.8" in text
    assert "may explain it: THP: never" in text and "254.2!" in text


def test_an_outlier_whose_run_was_noisy_says_so(tmp_path):
    docs, _ = F.load_dir(_fleet(tmp_path))
    for _, d in docs:
        if d["machine"]["hostname"] == "host3":
            d["machine"]["thp"] = "madvise"        # no setting differs now
            d["noise"]["foreign_fraction"] = 0.31  # but other work took the CPUs
    r = F.fleet_report(docs)
    lat = next(f for f in r["figures"] if f["name"] == "latency node 0 -> node 0")
    (o,) = lat["outliers"]
    assert o["host"] == "host3" and o["may_explain"] == [
        "its run was noisy: other processes or the hypervisor took 31 % of its CPUs (more "
        "than 5 %)"]
    assert next(h for h in r["hosts"] if h["host"] == "host3")["differs"] == []


def test_a_tune_that_kept_nothing_still_gives_its_hosts_best_throughput(tmp_path):
    """fleet tune on a short budget often keeps no step (final is null): the host's best is
    the layout it started from, not a blank row."""
    base = results.load(DATA / "documents" / "v1" / "tune.json")
    docs = []
    for k, gain in enumerate((1.0, 1.0, 1.3)):
        d = copy.deepcopy(base)
        d["machine"]["hostname"] = f"host{k}"
        d["result"]["start"] = {"layout": "naive#current", "throughput": 50.0 + k}
        if gain > 1:
            d["result"]["final"] = {"gain": gain, "best": {"throughput": 65.0}}
        docs.append((f"host{k}.json", d))
    r = F.fleet_report(docs)
    best = next(f for f in r["figures"] if f["name"] == "best throughput")
    assert {h["host"]: h["figures"]["best throughput"] for h in r["hosts"]} == {
        "host0": 50.0, "host1": 51.0, "host2": 65.0}
    assert best["unit"] == "inferences/s" and "best/s" in F.fleet_text({"result": r})
    del docs[0][1]["result"]["start"]  # a document from before "start": its steps' best
    r = F.fleet_report(docs[:1])
    assert r["hosts"][0]["figures"]["best throughput"] == pytest.approx(47.209, abs=1e-3)


def test_the_command_reads_a_directory_and_writes_a_valid_fleet_document(tmp_path):
    (tmp_path / "docs").mkdir()
    d = _fleet(tmp_path / "docs")
    (d / "notes.json").write_text('{"not": "numaprobe"}')
    (d / "readme.txt").write_text("ignored: not *.json")
    out = tmp_path / "fleet.json"
    r = subprocess.run([sys.executable, "-m", "numaprobe", "fleet", "report", str(d), "-o",
                        str(out), "-q"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "fleet: 5 hosts" in r.stdout and "skipped notes.json" in r.stdout
    doc = results.load(out)
    results.validate(doc)
    assert doc["kind"] == "fleet" and len(doc["result"]["hosts"][0]["documents"]) == 1
    html = kinds.get("fleet").html(doc)
    assert "<table" in html and "host3" in html and "THP: never" in html
    (name, build), = kinds.get("fleet").plots(doc)
    assert name == "heatmap" and build() is not None
    header, rows = kinds.get("fleet").rows(doc)
    assert header[0] == "host" and len(rows) == 5
    # the report of a report is refused as a host's; a missing or empty directory too
    (d / "fleet.json").write_text(out.read_text())
    docs, skipped = F.load_dir(d)
    assert {"file": "fleet.json", "why": "a fleet report itself, not a host's"} in skipped
    for bad, match in ((tmp_path / "nope", "not a directory"), (tmp_path, "no numaprobe")):
        with pytest.raises(UsageError, match=match):
            F.load_dir(bad)
    r = subprocess.run([sys.executable, "-m", "numaprobe", "fleet", "report",
                        str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a directory" in r.stderr and "Traceback" not in r.stderr


def test_a_host_whose_cgroup_hides_cpus_is_flagged_from_its_captured_tree(tmp_path):
    """Three hosts as this machine reads itself, one through a captured tree whose cgroup
    limits its CPUs (NUMAPROBE_SYSFS_ROOT, as a misconfigured node would be)."""
    import os
    for k, root in enumerate([None, None, None, DATA / "sysfs" / "cgroup-limited"]):
        env = {**os.environ, **({"NUMAPROBE_SYSFS_ROOT": str(root)} if root else {})}
        r = subprocess.run([sys.executable, "-m", "numaprobe", "topology", "--json"],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        doc["machine"]["hostname"] = f"node{k}"
        (tmp_path / f"node{k}.json").write_text(json.dumps(doc))
    r = F.fleet_report(*F.load_dir(tmp_path))
    keys = {s["key"]: s for s in r["settings"]}
    assert "usable_cpus" in keys or "cgroup" in keys
    flagged = {d["host"] for s in r["settings"] for d in s["differ"]}
    assert "node3" in flagged and not flagged & {"node0", "node1", "node2"}
