"""The registry of result kinds (numaprobe.kinds): one object per kind, the shipped schema in
step with it, and documents of every schema version ever written still loading, rendering and
comparing. tests/data/documents/v<N>/ holds one real document of each kind as version N wrote
it; a schema change adds a migration (results.MIGRATIONS) and keeps the old fixtures."""
import csv
import copy
import io
import json
from pathlib import Path

import pytest

from numaprobe import compare, kinds, results

FIXTURES = Path(__file__).parent / "data" / "documents"
VERSIONS = sorted(int(p.name[1:]) for p in FIXTURES.glob("v*"))
DOCS = [(v, p) for v in VERSIONS for p in sorted((FIXTURES / f"v{v}").glob("*.json"))]


def _ids(item):
    return f"v{item[0]}-{item[1].stem}" if isinstance(item, tuple) else None


def test_every_version_up_to_this_one_has_fixtures():
    """Every version written so far keeps its fixtures; the current one has every kind (a kind
    added later has no fixture in the older folders, which is fine)."""
    assert VERSIONS == list(range(1, results.SCHEMA_VERSION + 1))
    latest = {p.stem for p in (FIXTURES / f"v{results.SCHEMA_VERSION}").glob("*.json")}
    assert latest == set(kinds.names())


def test_schema_lists_exactly_the_registered_kinds():
    schema = json.loads(results.schema_path().read_text())
    assert set(schema["properties"]["kind"]["enum"]) == set(kinds.names())
    assert schema["properties"]["schema_version"]["const"] == results.SCHEMA_VERSION
    branches = set()
    for rule in schema["allOf"]:
        k = rule["if"]["properties"]["kind"]
        branches |= set(k.get("enum", [k.get("const")]))
    assert branches == set(kinds.names()), "every kind has its own rule for its result"


def test_a_kind_registers_once():
    k = kinds.get("latency")
    assert kinds.register(k) is k
    with pytest.raises(RuntimeError, match="registered twice"):
        kinds.register(kinds.Kind("latency", "x", text=str, html=str))


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ValueError, match="unknown result kind 'nope'; kinds: .*latency"):
        kinds.get("nope")


@pytest.mark.parametrize("item", DOCS, ids=_ids)
def test_old_documents_load_render_and_compare(item, tmp_path):
    version, path = item
    doc = results.load(path)
    assert doc["schema_version"] == results.SCHEMA_VERSION
    kind = kinds.get(doc["kind"])
    text = kind.text(doc)
    assert text.strip() and "Traceback" not in text
    section = kind.html(doc)
    assert section.strip().startswith("<")
    if kind.rows is not None:
        header, rows = results.rows(doc)
        assert rows and all(len(r) == len(header) for r in rows)
        parsed = list(csv.reader(io.StringIO(results.to_csv(doc))))
        assert parsed[0] == header and len(parsed) == len(rows) + 1
    if kind.figures is not None:
        out = compare.compare([doc, copy.deepcopy(doc)], ["a.json", "b.json"])
        figs = out["comparisons"][0]["figures"]
        assert figs and all(f["ratio"] == pytest.approx(1.0) for f in figs if f["a"])
    names = [name for name, _ in kind.plots(doc)]
    assert len(names) == len(set(names))


def test_a_newer_document_is_refused_with_the_reason(tmp_path):
    doc = json.loads((FIXTURES / "v1" / "clock.json").read_text())
    doc["schema_version"] = results.SCHEMA_VERSION + 1
    p = tmp_path / "new.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="newer numaprobe .*upgrade numaprobe"):
        results.load(p)


def test_a_migration_runs_on_load(tmp_path, monkeypatch):
    """A stand-in version 2 whose migration renames a field: a version-1 document comes out as
    version 2, migrated, and validated."""
    seen = []

    def v1_to_v2(doc):
        seen.append(doc["kind"])
        doc["result"]["migrated"] = True
        return doc
    monkeypatch.setattr(results, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(results.MIGRATIONS, 1, v1_to_v2)
    monkeypatch.setattr(results, "validate", lambda doc, name="": None)
    doc = results.load(FIXTURES / "v1" / "latency.json")
    assert seen == ["latency"] and doc["schema_version"] == 2 and doc["result"]["migrated"]


def test_a_document_that_breaks_the_schema_names_where(tmp_path):
    doc = json.loads((FIXTURES / "v1" / "latency.json").read_text())
    del doc["result"]["cells"][0]["ns"]["median"]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"not a valid latency document: at result/cells/0/ns"):
        results.load(p)
