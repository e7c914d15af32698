"""numaprobe.report: figures (PNG + SVG) and the self-contained HTML report, drawn from real
result documents that the CLI writes here with tiny sizes; the page is rendered in headless
Chromium (Debian package ``chromium``) and read back.

matplotlib and Chromium are required where CI runs (.ci/run installs both); elsewhere a test
that needs one skips, saying which, and NUMAPROBE_FAIL_ON_SKIP=1 turns that skip into a failure.
"""
import html
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from numaprobe.report import html_report, plot_files

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# kind -> the CLI arguments that make a small document of that kind (fast on 2 CPUs)
COMMANDS = {
    "quick": ["-q"],
    "topology": ["topology"],
    "latency": ["latency", "--size", "8M", "--samples", "2", "-q"],
    "latency-sweep": ["latency", "--sweep", "--size", "2M", "--samples", "1", "-q"],
    "bandwidth": ["bandwidth", "--size", "4M", "--reps", "3", "-q"],
    "bandwidth-threads": ["bandwidth", "--threads-sweep", "--size", "4M", "--reps", "3", "-q"],
    "loaded-latency": ["loaded-latency", "--size", "8M", "--samples", "1", "-q"],
    "c2c": ["c2c", "--rounds", "2000", "--samples", "2", "-q"],
    "infer": ["infer", "--layouts", "naive,2x1", "--duration", "1", "--rounds", "3", "--warmup",
              "2", "-q"],
    "sweep": ["sweep", "--duration", "1", "--rounds", "2", "--warmup", "2", "-q"],
}
FIGURES = {
    "latency": ["matrix"], "bandwidth": ["matrix"], "c2c": ["matrix"],
    "latency-sweep": ["curve"], "loaded-latency": ["curve"], "bandwidth-threads": ["scaling"],
    "infer": ["latency-cdf", "throughput"], "sweep": ["latency-cdf", "throughput", "scaling"],
    "topology": [],
}
KINDS = list(COMMANDS)


def _need_matplotlib():
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install "
                        "'numaprobe[plot]' (CI installs it with the test extra)")


@pytest.fixture(scope="module")
def docs(tmp_path_factory, tiny_model):
    """Every kind's document, written by the CLI; the runs go side by side (the slow ones,
    infer and sweep, mostly wait for worker start-up), so this takes as long as the slowest."""
    out = tmp_path_factory.mktemp("docs")
    procs = {}
    for kind in sorted(KINDS, key=lambda k: k not in ("infer", "sweep")):
        args = list(COMMANDS[kind])
        if kind in ("infer", "sweep"):
            args[1:1] = ["--model", tiny_model]
        path = out / f"{kind}.json"
        procs[kind] = (path, subprocess.Popen(
            [sys.executable, "-m", "numaprobe", *args, "-o", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    result = {}
    for kind, (path, p) in procs.items():
        _, err = p.communicate(timeout=300)
        result[kind] = json.loads(path.read_text()) if p.returncode == 0 else (
            f"numaprobe {' '.join(COMMANDS[kind])} failed ({p.returncode}): {err.strip()}")
    return result


def _doc(docs, kind) -> dict:
    d = docs[kind]
    if isinstance(d, str):
        pytest.fail(d)
    assert d["kind"] == kind
    return d


def _expected(doc) -> list[str]:
    if doc["kind"] == "quick":
        r = doc["result"]
        names = ["latency-matrix"] + [f"bandwidth-{k}-matrix" for k in r["bandwidth"]]
        return names + (["c2c-matrix"] if r["c2c"] else [])
    return FIGURES[doc["kind"]]


@pytest.mark.parametrize("kind", KINDS)
def test_plot_files(docs, kind, tmp_path):
    _need_matplotlib()
    doc = _doc(docs, kind)
    paths = plot_files(doc, tmp_path / "plots")
    want = sorted(f"{kind}-{f}.{ext}" for f in _expected(doc) for ext in ("png", "svg"))
    assert sorted(p.name for p in paths) == want
    for p in paths:
        data = p.read_bytes()
        if p.suffix == ".png":
            assert data.startswith(PNG_MAGIC), p
            assert len(data) > 5000, f"{p.name}: {len(data)} bytes"
        else:
            text = data.decode()
            assert "<svg" in text and text.rstrip().endswith("</svg>"), p
            assert "<dc:date>" not in text, f"{p.name} carries a date"


def test_plots_are_deterministic(docs, tmp_path):
    _need_matplotlib()
    doc = _doc(docs, "latency-sweep")
    a = {p.name: p.read_bytes() for p in plot_files(doc, tmp_path / "a")}
    b = {p.name: p.read_bytes() for p in plot_files(doc, tmp_path / "b")}
    assert a == b


def test_percentiles_only_without_raw_latencies(docs, tmp_path):
    """Past RAW_LIMIT inferences a layout keeps no per-inference latencies: its CDF is drawn
    from the percentiles alone, and the page still has its table."""
    _need_matplotlib()
    doc = json.loads(json.dumps(_doc(docs, "sweep")))
    for d in doc["result"]["layouts"]:
        d.pop("latency_ms", None)
    paths = plot_files(doc, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"sweep-{f}.{x}" for f in FIGURES["sweep"] for x in ("png", "svg"))
    assert all(p.stat().st_size > 5000 for p in paths if p.suffix == ".png")
    text = _visible_text(html_report([doc], tmp_path / "r.html").read_text())
    for d in doc["result"]["layouts"]:
        assert f"{d['latency']['p50']['ms']:.2f}" in text


def test_missing_matplotlib_is_one_clear_error(docs, monkeypatch, tmp_path):
    doc = _doc(docs, "latency")
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    hint = "plots need matplotlib: pip install 'numaprobe[plot]'"
    with pytest.raises(ImportError, match=re.escape(hint)):
        plot_files(doc, tmp_path)
    with pytest.raises(ImportError, match="numaprobe\\[plot\\]"):
        html_report([doc], tmp_path / "r.html")
    # the tables alone need no matplotlib
    page = html_report([doc], tmp_path / "tables.html", plots=False).read_text()
    assert f"{doc['result']['cells'][0]['ns']['median']:.1f}" in page


def test_text_is_escaped(docs, tmp_path):
    doc = json.loads(json.dumps(_doc(docs, "latency")))
    doc["warnings"].append("<script>alert('x')</script> & <b>bold</b>")
    doc["machine"]["cpu_model"] = "Evil <CPU> & \"co\""
    page = html_report([doc], tmp_path / "r.html", plots=False).read_text()
    assert "<script" not in page and "<b>bold</b>" not in page and "<CPU>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page


def _key_figures(doc) -> list[str]:
    """Numbers and words the page must show for the document, formatted as in its tables."""
    kind, r = doc["kind"], doc["result"]
    if kind == "quick":
        cell = r["latency"]["cells"][0]
        return [f"{cell['ns']['median']:.1f} [", "quick check"] + [
            f"{m['cells'][0]['gbs']['median']:.1f}" for m in r["bandwidth"].values()]
    if kind == "latency":
        c = r["cells"][0]
        return [f"{c['ns']['median']:.1f} [{r['distances'][0][0]}]", "idle latency, ns per load"]
    if kind == "bandwidth":
        return [f"{r['cells'][0]['gbs']['median']:.1f}", f"{r['kernel']} bandwidth, GB/s"]
    if kind == "c2c":
        return [f"median {r['summary']['median']:.1f} ns"]
    if kind == "latency-sweep":
        return [f"{lv['ns']:.2f}" for lv in r["levels"]] + ["levels found"]
    if kind == "loaded-latency":
        return [f"{p['latency_ns']['median']:.1f}" for p in r["points"]]
    if kind == "bandwidth-threads":
        return [f"{u['gbs']['median']:.1f}" for u in r["runs"]]
    if kind in ("infer", "sweep"):
        out = []
        for d in r["layouts"]:
            t = d["throughput"]
            out += [d["layout"]["name"], f"{t['per_s']:.1f}", f"[{t['ci'][0]:.1f},{t['ci'][1]:.1f}]",
                    f"{d['latency']['p50']['ms']:.2f}", *d["diagnoses"]]
            if d.get("vs_first"):
                out.append(d["vs_first"]["verdict"])
        if kind == "sweep":
            out += [f"best for throughput: {r['sweep']['best_throughput']}"]
        return out
    if kind == "topology":
        return [f"node {n['id']}" for n in r["nodes"]]
    return []


def _visible_text(page: str) -> str:
    """The page's words as a reader sees them: tags dropped, entities decoded, spaces joined."""
    page = re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", page)))


@pytest.fixture(scope="module")
def report(docs, tmp_path_factory):
    _need_matplotlib()
    good = [docs[k] for k in KINDS if not isinstance(docs[k], str)]
    assert good, "no document could be made"
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert html_report(good, path) == path
    return path, good


def test_html_report_is_self_contained(report):
    path, good = report
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for m in re.finditer(r"https?://", page):
        before = page[max(0, m.start() - 20):m.start()]
        assert re.search(r'xmlns(:\w+)?="$', before), \
            f"external reference: {page[m.start() - 60:m.end() + 60]!r}"
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page)
    assert not re.search(r'\b(src|href)="(?!#|data:)', page), "a reference outside the page"
    # each document's figures are inline SVG (ids prefixed per figure: no collisions)
    n_figs = sum(len(_expected(d)) for d in good)
    assert page.count("<svg") == n_figs
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "duplicate ids in the page"


@pytest.mark.parametrize("kind", KINDS)
def test_html_report_shows_key_figures(report, docs, kind):
    path, _ = report
    doc = _doc(docs, kind)
    text = _visible_text(path.read_text())
    assert f"({kind})" in text
    assert doc["created"] in text
    assert doc["machine"]["cpu_model"] in text
    for w in doc["warnings"]:
        assert w in text
    for fig in _key_figures(doc):
        assert fig in text, f"{kind}: {fig!r} not on the page"


def _chromium():
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; CI installs it)")
    return exe


def _run_chromium(args, timeout=120):
    return subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--mute-audio", "--no-first-run", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, HOME=os.environ.get("HOME", "/tmp")))


def test_chromium_renders_the_report(report, tmp_path):
    _chromium()
    import numpy as np
    from matplotlib import image
    path, _ = report
    shot = tmp_path / "shot.png"
    p = _run_chromium([f"--screenshot={shot}", "--window-size=1200,2000", path.as_uri()])
    assert shot.exists(), f"no screenshot: {p.stderr[-2000:]}"
    assert shot.read_bytes().startswith(PNG_MAGIC)
    px = image.imread(shot)
    assert px.shape[:2] == (2000, 1200)
    colours = np.unique(px.reshape(-1, px.shape[2]), axis=0)
    assert len(colours) > 10, f"a blank page: {len(colours)} colour(s)"
    # the top of the page is not one flat colour either: the title and tables are drawn
    assert len(np.unique(px[:600].reshape(-1, px.shape[2]), axis=0)) > 10


def test_chromium_page_text_has_the_figures(report, docs):
    path, good = report
    p = _run_chromium(["--dump-dom", path.as_uri()])
    assert p.returncode == 0, p.stderr[-2000:]
    text = _visible_text(p.stdout)
    assert "numaprobe report" in text
    for doc in good:
        for fig in _key_figures(doc):
            assert fig in text, f"{doc['kind']}: {fig!r} not in the rendered page"
