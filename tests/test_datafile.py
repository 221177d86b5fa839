"""Compiled JSON twins of the catalog YAML: fresh, identical in content, used when fresh."""

from __future__ import annotations

import json
import shutil

import yaml

from modelcheck import datafile


def test_every_twin_is_fresh():
    stale = datafile.stale()
    assert stale == [], f"stale compiled catalogs {stale}: run `python -m modelcheck.datafile` and commit"


def test_twin_content_equals_the_yaml():
    for path in sorted(datafile.CATALOG_DIR.glob("*.yaml")):
        from_yaml = json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))
        assert datafile.load(path.name) == from_yaml, path.name


def test_an_edited_yaml_is_parsed_instead_of_its_stale_twin(tmp_path, monkeypatch):
    cat = tmp_path / "catalog"
    (cat / "_compiled").mkdir(parents=True)
    src = datafile.CATALOG_DIR / "gpus.yaml"
    shutil.copy(src, cat / "gpus.yaml")
    shutil.copy(datafile.COMPILED_DIR / "gpus.json", cat / "_compiled" / "gpus.json")
    monkeypatch.setattr(datafile, "CATALOG_DIR", cat)
    monkeypatch.setattr(datafile, "COMPILED_DIR", cat / "_compiled")
    assert datafile.stale() == []
    with open(cat / "gpus.yaml", "a", encoding="utf-8") as fh:
        fh.write("\nedited_by_test: 42\n")
    assert datafile.stale() == ["gpus.yaml"]
    assert datafile.load("gpus.yaml")["edited_by_test"] == 42
