"""Hostile input, by property: whatever text or JSON comes in, the parsers of lists, sizes,
layout files and result documents either give a value that keeps their promise or raise the
error they document (UsageError; argparse.ArgumentTypeError for a command-line size), never
another exception. Once a result document loads, its kind's text and compare do not crash.

Hypothesis runs a fixed number of examples from a fixed seed (derandomize), so a run is the
same on every machine; no deadline, since that would be a timing assertion.
"""
import argparse
import copy
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from numaprobe import compare, kinds, results, topology
from numaprobe.cli import _bytes
from numaprobe.errors import UsageError
from numaprobe.workload.layout import Layout, parse_layout

HERE = Path(__file__).resolve().parent
DOCUMENTS = HERE / "data" / "documents" / "v1"
FIXTURES = {p.name: json.loads(p.read_text()) for p in sorted(DOCUMENTS.glob("*.json"))}
TREE = topology.read(HERE / "data" / "sysfs" / "two-socket-smt")

SETTINGS = settings(deadline=None, max_examples=300, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# Values that break assumptions: wrong types, empty things, numbers past any range (and past
# int()'s digit limit: HUGE, written into the text by _dumps), infinity, deep nesting.
HUGE = "<a number of 5000 digits>"
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.just(""), st.text(max_size=8),
    st.integers(-3, 3), st.just(10**30), st.just(-10**30), st.just(HUGE),
    st.floats(allow_nan=False), st.just(math.inf), st.just(-math.inf),
    st.just([]), st.just({}), st.just([[[[1]]]]), st.just({"a": {"b": [None]}}),
    st.lists(st.integers(-2, 2), max_size=3)).map(copy.deepcopy)  # a fresh [] or {} each time

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=4),
    max_leaves=20)


def _dumps(value) -> str:
    """JSON text, with HUGE written as the number it stands for (json.dumps cannot)."""
    return json.dumps(value, indent=1).replace(json.dumps(HUGE), "9" * 5000)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """One folder for the files the examples write (each example overwrites its file)."""
    return tmp_path_factory.mktemp("properties")


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ id lists

LIST_TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789-,: \n", max_size=30),
    st.lists(st.one_of(
        st.integers(0, 2 * topology.MAX_ID).map(str),
        st.tuples(st.integers(0, 2 * topology.MAX_ID), st.integers(0, 2 * topology.MAX_ID))
        .map(lambda t: f"{t[0]}-{t[1]}"),
        st.tuples(st.integers(0, 64), st.integers(0, topology.MAX_ID - 1),
                  st.integers(0, 10**30)).map(lambda t: f"{t[0]}-{t[1]}:{t[2]}"),
        st.just("9" * 5000), st.just(f"0-{'0' * 30}7"), st.just("٣"), st.just("")),
        max_size=5).map(",".join))


@SETTINGS
@given(LIST_TEXT)
def test_parse_list_gives_sorted_ids_below_max_or_a_usage_error(text):
    try:
        ids = topology.parse_list(text)
    except UsageError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(ids, tuple) and all(type(i) is int for i in ids)
    assert list(ids) == sorted(set(ids)) and all(0 <= i < topology.MAX_ID for i in ids)
    assert topology.parse_list(topology.format_list(ids)) == ids


@SETTINGS
@given(st.lists(st.integers(0, topology.MAX_ID - 1), max_size=40))
def test_format_list_round_trips(ids):
    assert topology.parse_list(topology.format_list(ids)) == tuple(sorted(set(ids)))


def test_the_widest_list_is_bounded():
    """The largest list there can be is MAX_ID ids, however it is written: a range repeated
    does not add to it, a huge step is one id."""
    every = topology.parse_list(f"0-{topology.MAX_ID - 1}:1,0-{topology.MAX_ID - 1}")
    assert len(every) == topology.MAX_ID and every[-1] == topology.MAX_ID - 1
    assert topology.parse_list(f"5-{topology.MAX_ID - 1}:{'9' * 5000}") == (5,)
    assert topology.parse_list("0007,0-0003") == (0, 1, 2, 3, 7)


# ---------------------------------------------------------------------- command-line sizes

SIZE_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="0123456789.-+eE kKmMgGtTpPiIbB_", max_size=20),
    st.tuples(st.sampled_from(["0", "1", "0.5", "1.5", "4096", "9" * 20, "9" * 400, "1e3",
                               "-1", "00", ".5", "5."]),
              st.sampled_from(["", "K", "M", "G", "T", "KiB", "MB", "b", "P", "x"]),
              st.sampled_from(["", " ", "\t"])).map("".join))


@SETTINGS
@given(SIZE_TEXT)
def test_a_size_is_a_positive_bounded_int_or_an_argument_error(text):
    """The contract of the CLI's size parser: an int in 1..2**50, or ArgumentTypeError with a
    message, for any text."""
    try:
        n = _bytes(text)
    except argparse.ArgumentTypeError as e:
        assert str(e)
        return
    assert type(n) is int and 0 < n <= 2**50


UNITS = [("", 0), ("K", 1), ("M", 2), ("G", 3), ("T", 4), ("P", 5), ("KiB", 1), ("GB", 3)]


@SETTINGS
@given(st.sampled_from(UNITS), st.data())
def test_a_whole_size_is_exact_up_to_the_limit_and_refused_past_it(unit, data):
    suffix, power = unit
    most = 2**50 // 1024 ** power          # the largest count of this unit within the limit
    n = data.draw(st.integers(1, most))
    assert _bytes(f"{n}{suffix}") == n * 1024 ** power
    over = data.draw(st.integers(most + 1, 2 * most + 10**6))
    try:
        _bytes(f"{over}{suffix}")
    except argparse.ArgumentTypeError as e:
        assert str(e)
    else:
        raise AssertionError(f"{over}{suffix} is over 2**50 bytes and was accepted")


# ------------------------------------------------------------------ mutations of JSON trees

def _paths(node, at=()):
    """Every place in a JSON tree, as the tuple of keys and indices that reaches it."""
    yield at
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, at + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, at + (i,))


def _get(node, path):
    for k in path:
        node = node[k]
    return node


def _mutate(draw, tree, times: int):
    """``tree`` (a copy) with ``times`` of: a key or item deleted, a value replaced by a
    hostile one, a container emptied."""
    tree = copy.deepcopy(tree)
    for _ in range(times):
        places = [p for p in _paths(tree) if p]
        if not places:
            break
        # Deep places are most of the tree: pick the depth first so the top is reached too.
        depth = draw(st.integers(1, max(len(p) for p in places)))
        path = draw(st.sampled_from([p for p in places if len(p) == depth]))
        parent, key = _get(tree, path[:-1]), path[-1]
        how = draw(st.sampled_from(["delete", "replace", "replace", "empty"]))
        if how == "delete":
            del parent[key]
        elif how == "replace":
            parent[key] = draw(HOSTILE)
        else:
            parent[key] = type(parent[key])() if isinstance(parent[key], (list, dict)) else ""
    return tree


# ----------------------------------------------------------------------------- layout files

# A layout two-socket-smt holds (node 0: CPUs 0-7 and 16-23, node 1: 8-15 and 24-31), every key
# used: mutated, it is what a user's file with a mistake in it looks like.
GOOD_LAYOUT = {"name": "two", "instances": [
    {"cpus": "0-3", "policy": "bind", "nodes": "0", "intra": 4, "inter": 1, "spin": True,
     "pin": True},
    {"cpus": "8-11", "policy": "interleave", "nodes": "0-1", "intra": 2},
    {"cpus": "24"}]}


@st.composite
def layout_files(draw):
    if draw(st.booleans()):
        return draw(JSON)
    return _mutate(draw, GOOD_LAYOUT, draw(st.integers(0, 3)))


@SETTINGS
@given(layout_files())
def test_a_layout_file_gives_a_layout_or_a_usage_error(scratch, data):
    path = _write(scratch, "layout.json", _dumps(data))
    try:
        layout = parse_layout(str(path), TREE)
    except UsageError as e:
        assert str(e)
        return
    assert isinstance(layout, Layout) and layout.instances
    assert all(set(i.cpus) <= set(TREE.usable_cpus) for i in layout.instances)


def test_the_layout_the_file_properties_start_from_is_good(scratch):
    path = _write(scratch, "good.json", json.dumps(GOOD_LAYOUT))
    assert [i.cpus for i in parse_layout(str(path), TREE).instances] == [
        (0, 1, 2, 3), (8, 9, 10, 11), (24,)]


# ------------------------------------------------------------------------- result documents

@st.composite
def mutated_documents(draw):
    """A fixture with one to three mutations (_mutate), and now and then its text cut
    short."""
    name = draw(st.sampled_from(sorted(FIXTURES)))
    text = _dumps(_mutate(draw, FIXTURES[name], draw(st.integers(1, 3))))
    if draw(st.integers(0, 9)) == 0:
        text = text[:draw(st.integers(0, len(text) - 1))]
    return name, text


@SETTINGS
@given(mutated_documents())
def test_a_mutated_document_loads_or_is_refused_naming_its_file(scratch, item):
    name, text = item
    path = _write(scratch, f"mutated-{name}", text)
    try:
        doc = results.load(path)
    except UsageError as e:
        assert str(path) in str(e), str(e)
        return
    # It loaded: everything numaprobe does with a document must work or say why it cannot.
    shown = kinds.get(doc["kind"]).text(doc)
    assert isinstance(shown, str) and shown
    try:
        compare.compare([doc, copy.deepcopy(doc)], ["a.json", "b.json"])
    except UsageError as e:
        assert str(e)


@SETTINGS
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_a_document_cut_short_is_refused_naming_its_file(scratch, name, data):
    text = json.dumps(FIXTURES[name])
    path = _write(scratch, f"cut-{name}", text[:data.draw(st.integers(0, len(text) - 1))])
    try:
        results.load(path)
    except UsageError as e:
        assert str(path) in str(e)
    else:
        raise AssertionError("a document cut short loaded")


def _latency_text_with(median: str) -> str:
    doc = copy.deepcopy(FIXTURES["latency.json"])
    doc["result"]["cells"][0]["ns"]["median"] = "MEDIAN"
    return json.dumps(doc).replace('"MEDIAN"', median)


@pytest.mark.parametrize("text, why", [
    (_latency_text_with("NaN"), "NaN is not a JSON number"),
    (_latency_text_with("-Infinity"), "-Infinity is not a JSON number"),
    (_latency_text_with("1e999"), "the number 1e999 is too large"),
    ('{"schema": "numaprobe-result", "x": ' + "[" * 100000 + "]" * 100000 + "}",
     "nests lists or objects too deeply"),
], ids=["nan", "infinity", "overflow", "deep"])
def test_what_json_cannot_hold_is_refused(scratch, text, why):
    """Python's json reads NaN, Infinity and 1e999 (as inf); none is JSON, numaprobe writes
    none, and compare cannot take their logarithm. A nesting deeper than the interpreter's
    stack is refused too, not a RecursionError."""
    path = _write(scratch, "not-json.json", text)
    with pytest.raises(UsageError, match=re.escape(why)) as e:
        results.load(path)
    assert str(path) in str(e.value)


def _load_changed(folder: Path, name: str, change) -> dict:
    doc = copy.deepcopy(FIXTURES[name])
    change(doc["result"])
    return results.load(_write(folder, f"changed-{name}", json.dumps(doc)))


def test_an_integer_written_as_a_float_is_refused(scratch):
    """JSON Schema calls 2.0 an integer; the code that reads a model's input shapes does not."""
    def change(r):
        r["model"]["inputs"][0]["shape"][0] = 2.0
    with pytest.raises(UsageError, match=r"at result/model/inputs/0/shape/0: 2.0 is not of type"):
        _load_changed(scratch, "infer.json", change)


def test_cells_that_do_not_match_the_node_lists_are_refused(scratch):
    """What the schema cannot say: a matrix has a cell for each CPU node x memory node."""
    def change(r):
        r["cpu_nodes"] = [5]
    with pytest.raises(UsageError, match=r"not a valid latency document: its parts do not fit "
                                         r"together \(it refers to an entry \(5, 0\)"):
        _load_changed(scratch, "latency.json", change)
