"""`govex apply`, `govex catalog` and `govex db upgrade` at work, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import catalog
import records
from exchange.run import bookkeeping as runs
from exchange.store import create_store_engine, upgrade
from exchange.verify import tables as verify_tables


def test_first_apply_adds_everything_and_second_changes_nothing(workspace: Any, govex: Any) -> None:
    code, out, err = govex("apply", str(workspace.root), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["applied"] is True
    assert result["plan"]["departments"]["added"] == ["amr", "gsc", "psb"]
    assert result["plan"]["resources"]["added"] == ["AMR-RES-001", "PSB-RES-001"]
    assert result["plan"]["subscriptions"]["added"] == ["SUB-GSC-001"]
    assert result["plan"]["contracts"]["added"] == ["enterprise@1.0.0", "resident_identity@1.0.0"]

    code, out, _ = govex("apply", str(workspace.root))
    assert code == 0
    assert "No changes" in out


def test_dry_run_plans_but_writes_nothing(workspace: Any, govex: Any, store_snapshot: Any) -> None:
    code, out, _ = govex("apply", str(workspace.root), "--dry-run")
    assert code == 0
    assert "+ resource PSB-RES-001" in out
    assert "Dry run" in out
    assert all(not rows for rows in store_snapshot().values())


def test_plan_reports_added_changed_and_removed(workspace: Any, govex: Any) -> None:
    assert govex("apply", str(workspace.root))[0] == 0
    (workspace.root / "subscriptions" / "gsc-residents.yaml").unlink()
    workspace.edit("resources/psb-residents.yaml", lambda r: r.update(name="居民身份信息"))
    workspace.write_yaml("subscriptions/gsc-enterprises.yaml", workspace.subscription(
        id="SUB-GSC-002", resource="AMR-RES-001", fields=["uscc", "name"], masking={},
        target={"connection": "gsc_db", "table": "amr_enterprises"}, mode="snapshot",
    ))

    code, out, err = govex("apply", str(workspace.root), "--json")
    assert code == 0, err
    plan = json.loads(out)["plan"]
    assert plan["subscriptions"] == {
        "added": ["SUB-GSC-002"], "changed": [], "removed": ["SUB-GSC-001"]
    }
    assert plan["resources"]["changed"] == ["PSB-RES-001"]

    code, out, _ = govex("catalog", "show", "PSB-RES-001", "--json")
    shown = json.loads(out)
    assert shown["name"] == "居民身份信息"
    assert shown["subscriptions"] == []


def test_removing_a_resource_frees_its_elements(workspace: Any, govex: Any) -> None:
    assert govex("apply", str(workspace.root))[0] == 0
    (workspace.root / "resources" / "psb-residents.yaml").unlink()
    (workspace.root / "subscriptions" / "gsc-residents.yaml").unlink()
    workspace.write_yaml("resources/amr-people.yaml", workspace.resource(
        code="AMR-RES-009", provider="amr", source={"connection": "amr_db", "table": "people"},
        sharing="unconditional",
    ))
    code, out, err = govex("apply", str(workspace.root))
    assert code == 0, err
    assert "- resource PSB-RES-001" in out
    assert "+ resource AMR-RES-009" in out


def test_compatible_minor_version_is_accepted(workspace: Any, govex: Any) -> None:
    assert govex("apply", str(workspace.root))[0] == 0
    v11 = workspace.contract_v1()
    v11["properties"]["email"] = {"type": "string", "x-govex-pii": "email"}
    v11["properties"]["name"]["maxLength"] = 80
    v11["properties"]["name"]["description"] = "姓名"
    workspace.contract("resident_identity", "1.1.0", v11)
    workspace.edit("resources/psb-residents.yaml",
                   lambda r: r.update(contract="resident_identity@1.1.0"))
    code, out, err = govex("apply", str(workspace.root))
    assert code == 0, err
    assert "+ contract resident_identity@1.1.0" in out


def test_catalog_list_and_show(workspace: Any, govex: Any) -> None:
    assert govex("apply", str(workspace.root))[0] == 0
    code, out, _ = govex("catalog", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [r["code"] for r in listed] == ["AMR-RES-001", "PSB-RES-001"]
    psb = listed[1]
    assert psb == {
        "code": "PSB-RES-001", "name": "居民身份基础信息", "provider": "psb",
        "contract": "resident_identity@1.0.0", "sharing": "unconditional",
        "classification": "L3", "update_frequency": "P1D", "subscriptions": 1,
    }
    code, out, _ = govex("catalog", "list")
    assert "PSB-RES-001" in out
    assert "居民身份基础信息" in out

    code, out, _ = govex("catalog", "show", "PSB-RES-001", "--json")
    shown = json.loads(out)
    assert shown["contract_schema"]["properties"]["id_no"]["x-govex-pii"] == "id_number"
    assert shown["provider_department"]["name"] == "市公安局"
    assert shown["subscriptions"][0]["id"] == "SUB-GSC-001"
    code, out, _ = govex("catalog", "show", "PSB-RES-001")
    assert "SUB-GSC-001" in out
    assert "mask_name" in out

    code, _, err = govex("catalog", "show", "NOPE-1")
    assert code == 2
    assert "unknown resource 'NOPE-1'" in err


def test_workspace_from_environment(
    workspace: Any, govex: Any, monkeypatch: Any
) -> None:
    code, _, err = govex("apply")
    assert code == 2
    assert "GOVEX_WORKSPACE" in err
    monkeypatch.setenv("GOVEX_WORKSPACE", str(workspace.root))
    assert govex("apply")[0] == 0


def test_not_a_workspace(tmp_path: Path, govex: Any) -> None:
    code, _, err = govex("apply", str(tmp_path))
    assert code == 2
    assert "is not a govex workspace" in err


def test_db_upgrade_creates_then_reports_up_to_date(govex: Any) -> None:
    code, out, _ = govex("db", "upgrade")
    assert code == 0
    assert "upgraded from empty" in out
    code, out, _ = govex("db", "upgrade")
    assert "up to date" in out


# The metadata whose tables the migrations must match (add a package's when it gets a test).
CHECKED = (
    catalog.metadata, runs.metadata, records.notifications_metadata, records.usage_metadata,
    records.verifications_metadata, verify_tables.metadata, records.dispute_flags_metadata,
)


def test_migrations_match_the_table_definitions(store_url: str) -> None:
    """If a package changes its tables without a migration, this fails."""
    engine = create_store_engine(store_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        diffs = [compare_metadata(context, m) for m in CHECKED]
    engine.dispose()
    # Each comparison also lists the other package's tables as extra; only real drift counts.
    owned = [{t.name for t in m.tables.values()} for m in CHECKED]
    drift = [
        d for diff, names in zip(diffs, owned, strict=True) for d in diff
        if not (d[0] == "remove_table" and d[1].name not in names)
        and not (d[0] == "remove_index" and d[1].table.name not in names)
    ]
    assert drift == []


def test_connections_resolve_variables_and_relative_paths(workspace: Any) -> None:
    ws = catalog.load_workspace(workspace.root)
    env = {"GOVEX_KAFKA_BOOTSTRAP": "broker:29092"}
    psb = catalog.resolve_connection("psb_db", ws.connections["psb_db"].item, ws.root, env)
    assert psb.target == f"sqlite:///{ws.root / 'data' / 'psb.db'}"
    env["GOVEX_TEST_PSB_URL"] = "postgresql+psycopg://postgres@127.0.0.1/psb"
    psb = catalog.resolve_connection("psb_db", ws.connections["psb_db"].item, ws.root, env)
    assert psb.target == "postgresql+psycopg://postgres@127.0.0.1/psb"
    bus = catalog.resolve_connection("bus", ws.connections["bus"].item, ws.root, env)
    assert (bus.kind, bus.target) == ("kafka", "broker:29092")
    files = catalog.resolve_connection("files", ws.connections["files"].item, ws.root, env)
    assert (files.kind, files.target, files.format) == ("path", str(ws.root / "data/files"), "csv")


def test_one_source_is_enforced_by_the_database_too(store_url: str, workspace: Any) -> None:
    """Even a writer that skips govex's checks cannot give an element a second source."""
    engine = create_store_engine(store_url)
    upgrade(engine)
    catalog.apply_workspace(engine, workspace.root)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO catalog_data_elements (element, resource_code, field) "
                "VALUES ('person.name', 'AMR-RES-001', 'name')"
            ))
        raised = False
    except sa.exc.IntegrityError:
        raised = True
    engine.dispose()
    assert raised


def test_each_apply_is_in_the_audit_log(workspace: Any, govex: Any) -> None:
    assert govex("apply", str(workspace.root))[0] == 0
    assert govex("apply", str(workspace.root), "--dry-run")[0] == 0  # nothing applied
    code, out, _ = govex("audit", "list", "--json")
    assert code == 0
    applies = [e for e in json.loads(out) if e["kind"] == "apply"]
    assert len(applies) == 1
    assert applies[0]["detail"]["plan"]["resources"]["added"] == ["AMR-RES-001", "PSB-RES-001"]
    code, out, _ = govex("audit", "verify")
    assert code == 0


def test_a_store_behind_the_code(store_url: str) -> None:
    """SQLite (the embedded store) follows the code by itself; a server store asks first."""
    from alembic import command

    from exchange.store.engine import _alembic_config, current_revision, head_revision, open_store
    from govex.errors import FatalError
    from govex.settings import Settings

    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001_catalog")
    if engine.dialect.name == "sqlite":
        open_store(Settings(db_url=store_url)).dispose()
        assert current_revision(engine) == head_revision()
    else:
        try:
            open_store(Settings(db_url=store_url))
            raised = ""
        except FatalError as error:
            raised = str(error)
        assert "run `govex db upgrade`" in raised
        assert current_revision(engine) == "0001_catalog"
    engine.dispose()
