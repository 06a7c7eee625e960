"""`govex init`, and what `govex apply` shows: field-level plan diffs, every problem of a
workspace in one round, and connections whose `${VAR}` now resolves otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def test_init_scaffolds_a_workspace_apply_accepts_as_is(
    tmp_path: Path, govex: Any, store_snapshot: Any
) -> None:
    root = tmp_path / "new-ws"
    code, out, err = govex("init", str(root))
    assert code == 0, err
    for rel in ("departments.yaml", "connections.yaml", "contracts/resident_identity/1.0.0.json",
                "resources/psb-residents.yaml", "subscriptions/gsc-residents.yaml",
                "reference/README.md", "README.md"):
        assert (root / rel).is_file(), rel
    assert "#" in (root / "connections.yaml").read_text("utf-8")  # commented

    code, out, err = govex("apply", str(root), "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)["plan"]
    assert plan["resources"]["added"] == ["PSB-RES-001"]
    assert plan["subscriptions"]["added"] == ["SUB-GSC-001"]
    assert all(not rows for rows in store_snapshot().values())
    # The sqlite connections are relative to the workspace, not to the current directory.
    assert "sqlite:///data/" in (root / "connections.yaml").read_text("utf-8")


def test_init_refuses_a_non_empty_directory(tmp_path: Path, govex: Any) -> None:
    root = tmp_path / "busy"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    code, out, err = govex("init", str(root))
    assert code == 2
    assert err.count("\n") == 1
    assert "not an empty directory" in err
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]


def test_plan_shows_which_fields_changed_from_what_to_what(workspace: Any, govex: Any) -> None:
    assert govex("apply", str(workspace.root))[0] == 0
    workspace.edit("subscriptions/gsc-residents.yaml",
                   lambda s: s.update(fields=["id_no", "name"], mode="snapshot"))
    workspace.edit("resources/psb-residents.yaml",
                   lambda r: r["quality"].update(max_error_rate=0.05))
    v1 = workspace.contract_v1()
    v1["properties"]["name"]["maxLength"] = 80
    workspace.contract("resident_identity", "1.0.0", v1)

    code, out, err = govex("apply", str(workspace.root), "--dry-run")
    assert code == 0, err
    assert "~ subscription SUB-GSC-001" in out
    assert 'mode: "upsert" -> "snapshot"' in out
    assert 'fields: ["id_no", "name", "birth_date"] -> ["id_no", "name"]' in out
    assert "quality.max_error_rate: 0.02 -> 0.05" in out
    assert "properties.name.maxLength: 50 -> 80" in out

    code, out, err = govex("apply", str(workspace.root), "--dry-run", "--json")
    assert code == 0, err
    changes = json.loads(out)["changes"]
    assert {"path": "mode", "from": "upsert", "to": "snapshot"} in (
        changes["subscriptions"]["SUB-GSC-001"])
    assert changes["resources"]["PSB-RES-001"] == [
        {"path": "quality.max_error_rate", "from": 0.02, "to": 0.05}]


def test_every_problem_is_reported_in_one_round(workspace: Any, govex: Any) -> None:
    # A file that does not parse, and semantic errors in files that do.
    workspace.write_text("resources/broken.yaml", "code: [unclosed\n")
    workspace.edit("subscriptions/gsc-residents.yaml",
                   lambda s: s.update(masking={"name": "rot13"}))
    workspace.write_yaml("resources/amr-enterprises.yaml", {
        "code": "AMR-RES-001", "name": "市场主体登记信息", "provider": "nobody",
        "contract": "enterprise@1.0.0", "key": ["uscc"],
        "source": {"connection": "amr_db", "table": "enterprises"},
        "sharing": "unconditional", "classification": "L1", "update_frequency": "PT6H",
    })
    workspace.write_yaml("subscriptions/bad-keys.yaml", {"id": "SUB-X-001", "surprise": 1})

    code, _, err = govex("apply", str(workspace.root), "--dry-run")
    assert code == 2
    assert "resources/broken.yaml" in err  # the parse error
    assert "unknown key 'surprise'" in err  # a schema error of another file
    assert "unknown masking function 'rot13'" in err  # a rule on a file that parsed
    assert "unknown department 'nobody'" in err
    # No echo: the broken resource file does not make its subscriptions "unknown resource".
    assert "unknown resource" not in err


def test_a_connection_whose_variable_resolves_otherwise_is_changed_without_showing_it(
    workspace: Any, govex: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_TEST_PSB_URL", "postgresql+psycopg://psb:s3cret-one@db-a/psb")
    assert govex("apply", str(workspace.root))[0] == 0
    code, out, _ = govex("apply", str(workspace.root), "--dry-run")
    assert code == 0
    assert "No changes" in out

    monkeypatch.setenv("GOVEX_TEST_PSB_URL", "postgresql+psycopg://psb:s3cret-two@db-b/psb")
    code, out, err = govex("apply", str(workspace.root), "--dry-run")
    assert code == 0, err
    assert "~ connection psb_db" in out
    assert "resolved value" in out
    code, json_out, _ = govex("apply", str(workspace.root), "--json")
    assert json.loads(json_out)["plan"]["connections"]["changed"] == ["psb_db"]
    for text in (out, json_out):
        assert "s3cret" not in text
        assert "db-a" not in text
        assert "db-b" not in text
    # Applied: the new resolution is the reference now.
    code, out, _ = govex("apply", str(workspace.root), "--dry-run")
    assert "No changes" in out

    # A template edit is shown as changed too, its values hidden.
    workspace.edit("connections.yaml", lambda c: c["connections"]["amr_db"].update(
        url="mysql+pymysql://amr:pw-in-file@db-c/amr"))
    code, out, _ = govex("apply", str(workspace.root), "--dry-run")
    assert "~ connection amr_db" in out
    assert "url: " in out
    assert "pw-in-file" not in out
    assert "db-c" not in out


def test_the_store_keeps_a_keyed_hash_never_the_resolved_url(
    workspace: Any, govex: Any, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    monkeypatch.setenv("GOVEX_TEST_PSB_URL", "postgresql+psycopg://psb:s3cret-one@db-a/psb")
    assert govex("apply", str(workspace.root))[0] == 0
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT name, declaration, fingerprint FROM catalog_connections")).all()
    finally:
        engine.dispose()
    stored = {name: (str(decl), fp) for name, decl, fp in rows}
    assert "s3cret" not in str(stored)
    assert all(fp and len(fp) == 64 for _, fp in stored.values())
