"""What a new user of `plot` and `report` tripped over (issue #13, items 7 and 8): figures of
two documents in one folder overwrote each other, a comparison had no picture, the latency
CDF hid the tail, the HTML repeated the machine for every document and named none of them,
and its command lines could not be run again.

Drawn from the stored documents in tests/data/documents/v1 (no measuring), and from copies
of them changed where a test needs another shape.
"""
import copy
import html
import re
import shlex
from pathlib import Path

import pytest

from numaprobe import kinds, results
from numaprobe.cli import build_parser
from numaprobe.errors import UsageError
from numaprobe.report import html_report, plot_files

V1 = Path(__file__).parent / "data" / "documents" / "v1"


def _load(name: str) -> dict:
    return results.load(V1 / f"{name}.json")


def _need_matplotlib():
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install "
                        "'numaprobe[plot]' (CI installs it with the test extra)")


def _figure(doc: dict, name: str):
    """The matplotlib figure the document's kind draws under that name."""
    import matplotlib
    from numaprobe.report import plots
    with matplotlib.rc_context(plots._RC):
        build = dict(kinds.get(doc["kind"]).plots(doc))[name]
        fig = build()
    fig.canvas.draw()
    return fig


# ------------------------------------------------------------------------------- plots

def test_two_infer_documents_in_one_folder_keep_their_figures(tmp_path):
    _need_matplotlib()
    a = _load("infer")
    b = copy.deepcopy(a)
    del b["result"]["layouts"][1]  # another run: one layout only, so other pictures
    out = tmp_path / "plots"
    pa = plot_files(a, out, name="a")
    pb = plot_files(b, out, name="b")
    want = {f"{stem}-infer-{fig}.{ext}" for stem in "ab" for fig in ("latency-cdf", "throughput")
            for ext in ("png", "svg")}
    assert {p.name for p in pa + pb} == want
    assert sorted(p.name for p in out.iterdir()) == sorted(want)
    # a's files are still a's pictures after b's were written beside them
    alone = {p.name: p.read_bytes() for p in plot_files(a, tmp_path / "alone", name="a")}
    assert {p.name: p.read_bytes() for p in pa} == alone
    assert ((out / "a-infer-throughput.svg").read_bytes()
            != (out / "b-infer-throughput.svg").read_bytes())


def test_without_a_name_the_files_are_named_as_before(tmp_path):
    _need_matplotlib()
    paths = plot_files(_load("infer"), tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"infer-{f}.{x}" for f in ("latency-cdf", "throughput") for x in ("png", "svg"))


@pytest.mark.parametrize("bad", ["", "a/b", ".."])
def test_a_name_that_is_not_a_file_name_is_refused(bad, tmp_path):
    with pytest.raises(UsageError, match="plot name must be"):
        plot_files(_load("infer"), tmp_path, name=bad)
    assert not any(tmp_path.iterdir())


def _rich_compare() -> dict:
    """The stored comparison with a figure of each verdict (and one without an interval)."""
    doc = _load("compare")
    f0 = doc["result"]["comparisons"][0]["figures"][0]
    doc["result"]["comparisons"][0]["figures"] = [
        dict(f0, figure=name, ratio=ratio, ci=ci, verdict=verdict)
        for name, ratio, ci, verdict in [
            ("read bandwidth node 0 -> node 1", 1.12, [1.05, 1.20], "faster"),
            ("read bandwidth node 1 -> node 0", 0.80, [0.70, 0.93], "slower"),
            ("read bandwidth node 1 -> node 1", 0.99, [0.95, 1.03], "no significant change"),
            ("read bandwidth node 0 -> node 0", 0.90, None, "not established")]]
    return doc


def test_a_comparison_plots_its_ratios_with_their_intervals(tmp_path):
    _need_matplotlib()
    doc = _rich_compare()
    paths = plot_files(doc, tmp_path)
    assert sorted(p.name for p in paths) == ["compare-forest.png", "compare-forest.svg"]
    figs = doc["result"]["comparisons"][0]["figures"]
    fig = _figure(doc, "forest")
    ax, twin = fig.axes
    assert ax.get_xscale() == "log"
    # one row per compared figure, top to bottom in the document's order
    assert [t.get_text() for t in ax.get_yticklabels()] == [f["figure"] for f in figs]
    lines = [(list(map(float, ln.get_xdata())), list(map(float, ln.get_ydata())))
             for ln in ax.get_lines()]
    assert any(x == [1.0, 1.0] for x, _ in lines), "no line at a ratio of 1"
    for row, f in enumerate(figs):
        if f["ci"]:
            assert (f["ci"], [row, row]) in lines, f"{f['figure']}: its interval is not drawn"
        assert ([f["ratio"]], [row]) in lines, f"{f['figure']}: its ratio is not drawn"
    # the verdict is written at the right of its row, in its own colour
    right = twin.get_yticklabels()
    for label, f in zip(right, figs):
        assert label.get_text().endswith(f["verdict"])
    assert len({label.get_color() for label in right}) == len(figs)


def test_the_latency_plot_reads_the_tail(tmp_path):
    """y is the fraction of inferences slower than x (1 - F) on a log scale, ticked at p50,
    p90, p99 and p99.9, and the tail of 10 000 latencies is drawn point by point, down to
    the slowest inference."""
    _need_matplotlib()
    doc = _load("infer")
    n = 10_000
    lay = doc["result"]["layouts"][0]
    lay["latency_ms"] = [10.0 + 0.001 * i for i in range(n)]
    ax = _figure(doc, "latency-cdf").axes[0]
    assert ax.get_yscale() == "log"
    assert [float(t) for t in ax.get_yticks()] == pytest.approx([0.5, 0.1, 0.01, 0.001])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [s.split()[0] for s in labels] == ["p50", "p90", "p99", "p99.9"]
    assert "slower" in ax.get_ylabel()
    lo, hi = ax.get_ylim()
    assert lo < 1 / n and hi >= 1
    curve = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) > 100)
    y = [float(v) for v in curve.get_ydata()]
    assert max(y) == 1.0 and min(y) == pytest.approx(1 / n)
    assert sum(v <= 0.01 for v in y) >= 50, "the slowest 1 % is drawn with too few points"
    # the dots sit at 1 - q: p99 where 1 % are slower
    p99 = lay["latency"]["p99"]["ms"]
    assert any(list(ln.get_xdata()) == [p99] and list(ln.get_ydata()) == pytest.approx([0.01])
               for ln in ax.get_lines())


@pytest.mark.parametrize("kind", ["infer", "sweep"])
def test_the_latency_legend_covers_no_line(kind):
    _need_matplotlib()
    fig = _figure(_load(kind), "latency-cdf")
    ax = fig.axes[0]
    legend, box = ax.get_legend(), ax.get_window_extent()
    assert legend is not None
    assert legend.get_window_extent().x0 >= box.x1, "the legend sits on the curves"


# -------------------------------------------------------------------------------- HTML

def _page(docs, tmp_path, names=None) -> str:
    named = {"names": names} if names is not None else {}
    return html_report(docs, tmp_path / "r.html", plots=False, **named).read_text()


def test_the_machine_is_shown_once_and_a_document_shows_where_it_differs(tmp_path):
    a = _load("infer")
    b = copy.deepcopy(a)
    b["machine"]["kernel"] = "6.1.0-other"
    c = _load("compare")
    page = _page([a, b, c], tmp_path)
    assert page.count('<table class="kv machine">') == 1
    assert page.count("<th>CPU</th>") == 1 and page.count("<th>topology digest</th>") == 1
    sections = re.split(r'<section class="doc"', page)[1:]
    assert len(sections) == 3
    diff = re.findall(r'<table class="kv machine-diff">.*?</table>', sections[1], flags=re.S)
    assert len(diff) == 1 and re.findall(r"<th>(.*?)</th>", diff[0]) == ["kernel"]
    assert "6.1.0-other" in diff[0] and a["machine"]["kernel"] in diff[0]
    for s in (sections[0], sections[2]):
        assert "machine-diff" not in s and "machine: the one at the top" in s


def test_each_document_is_labelled_by_its_file_and_model(tmp_path):
    docs = [_load("infer"), _load("infer"), _load("compare")]
    names = ["runs/before.json", "after & more.json", "cmp.json"]
    page = _page(docs, tmp_path, names=names)
    heads = re.findall(r"<h2>\d+\..*?</h2>", page)
    nav = re.findall(r"<li><a href=\"#doc-\d+\">.*?</a>", page)
    assert len(heads) == len(nav) == 3
    for head, item, name in zip(heads, nav, names):
        assert html.escape(name) in head and html.escape(name) in item
    assert "model mlp" in heads[0] and "model mlp" not in heads[2]
    # without names, a workload is still told apart by its model
    assert "model mlp" in re.findall(r"<h2>\d+\..*?</h2>", _page(docs[:1], tmp_path))[0]


def test_one_name_per_document(tmp_path):
    with pytest.raises(UsageError, match="2 document.*1 name"):
        html_report([_load("infer"), _load("compare")], tmp_path / "r.html", plots=False,
                    names=["a.json"])
    assert not (tmp_path / "r.html").exists()


def _commands(page: str) -> list[list[str]]:
    return [shlex.split(html.unescape(m))
            for m in re.findall(r"<code class=cmd>(.*?)</code>", page, flags=re.S)]


def test_the_compare_command_runs_again(tmp_path):
    doc = _load("compare")
    doc["asked"]["options"] = {"files": ["my run.json", "b's.json"], "min_effect": 2.5,
                               "max_noise": 5.0, "strict": True}
    argv = _commands(_page([doc], tmp_path))[0]
    assert argv == ["numaprobe", "compare", "my run.json", "b's.json", "--min-effect", "2.5",
                    "--max-noise", "5", "--strict"]
    ns = build_parser().parse_args(argv[1:])
    assert (ns.files, ns.min_effect, ns.max_noise, ns.strict) == (
        ["my run.json", "b's.json"], 2.5, 5.0, True)


@pytest.mark.parametrize("path", sorted(V1.glob("*.json")), ids=lambda p: p.stem)
def test_every_command_parses_back_to_its_options(path, tmp_path):
    doc = results.load(path)
    argv = _commands(_page([doc], tmp_path))[0]
    assert argv[0] == "numaprobe"
    ns = build_parser().parse_args(argv[1:])
    assert ns.command_name == doc["asked"]["command"]
    for key, value in doc["asked"]["options"].items():
        assert getattr(ns, key) == value, f"{path.name}: {key}"


def test_plot_on_a_document_without_figures_is_refused():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "numaprobe", "plot",
                        str(V1 / "topology.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "has no figures to draw" in r.stderr and not r.stdout
