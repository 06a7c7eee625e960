"""A conditional subscription comes from an approved sharing request: `govex apply` refuses
one without (naming the file and the fix) or one that differs from the approval, accepts the
file that names its request as the very subscription the approval created, and never removes
or changes that subscription. The request itself goes through `govex request` with tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml


def _conditional(ws: Any) -> None:
    """The resource shared conditionally, an authority department, gsc owning its database,
    and no subscription file yet."""
    ws.edit("resources/psb-residents.yaml", lambda r: r.update(sharing="conditional"))
    ws.edit("departments.yaml", lambda d: d["departments"].append(
        {"code": "data", "name": "市数据局"}))
    ws.edit("connections.yaml", lambda c: c["connections"]["gsc_db"].update(owner="gsc"))
    (ws.root / "subscriptions" / "gsc-residents.yaml").unlink()


def _token(govex: Any, department: str, role: str) -> str:
    code, out, err = govex("token", "create", "--department", department, "--role", role)
    assert code == 0, err
    return str(out.strip().splitlines()[-1])


def _ask(tmp_path: Path) -> Path:
    path = tmp_path / "ask.yaml"
    path.write_text(yaml.safe_dump({
        "resource": "PSB-RES-001", "subscription": "SUB-GSC-001",
        "purpose": "一网通办身份核验", "legal_basis": "政务服务条例",
        "fields": ["id_no", "name", "birth_date"], "masking": {"name": "mask_name"},
        "target": {"connection": "gsc_db", "table": "psb_residents"}, "mode": "upsert",
        "valid_from": "2026-01-01", "valid_until": "2027-12-31",
    }, allow_unicode=True), "utf-8")
    return path


def test_apply_and_the_request_commands(
    workspace: Any, govex: Any, store_snapshot: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOVEX_TOKEN", raising=False)
    _conditional(workspace)
    root = str(workspace.root)
    assert govex("apply", root)[0] == 0
    gsc = _token(govex, "gsc", "consumer")
    psb = _token(govex, "psb", "provider")
    data = _token(govex, "data", "authority")

    # A conditional subscription without a request, or with approved_by alone: refused.
    sub_file = "subscriptions/gsc-residents.yaml"
    workspace.write_yaml(sub_file, workspace.subscription())
    before = store_snapshot()
    code, _, err = govex("apply", root)
    assert code == 2
    assert sub_file in err
    assert "govex request submit" in err
    assert "request: REQ-" in err
    workspace.edit(sub_file, lambda s: s.update(approved_by="psb"))
    code, _, err = govex("apply", root)
    assert code == 2
    assert sub_file in err
    assert "approved_by alone" in err
    assert store_snapshot() == before

    # The request on the command line: the actor is the token, never a flag.
    code, _, err = govex("request", "list")
    assert code == 2
    assert "--token" in err
    assert "GOVEX_TOKEN" in err
    code, _, err = govex("request", "list", "--token", "govex_notatoken")
    assert code == 2
    assert "cannot act" in err
    code, out, err = govex("request", "submit", str(_ask(tmp_path)), "--token", gsc)
    assert code == 0, err
    rid = out.strip().splitlines()[-1]
    assert rid.startswith("REQ-")
    code, _, err = govex("request", "review", rid, "--compliant", "--token", psb)
    assert code == 2
    assert "authority" in err
    monkeypatch.setenv("GOVEX_TOKEN", data)
    code, out, err = govex("request", "review", rid, "--compliant")
    assert code == 0, err
    assert "reviewed" in out
    monkeypatch.setenv("GOVEX_TOKEN", gsc)
    code, _, err = govex("request", "approve", rid)
    assert code == 2
    assert "only the provider" in err
    code, _, err = govex("request", "approve", rid, "--token", psb, "--fields", "id_no",
                         "salary")
    assert code == 2
    assert "never add" in err
    code, out, err = govex("request", "approve", rid, "--token", psb)
    assert code == 0, err
    code, out, err = govex("request", "show", rid, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["state"] == "approved"
    assert shown["subscription"] == "SUB-GSC-001"
    assert [s["by"] for s in shown["history"]] == ["gsc/consumer", "data/authority",
                                                  "psb/provider"]
    code, out, _ = govex("request", "list", "--json")
    assert [r["id"] for r in json.loads(out)] == [rid]
    code, _, err = govex("request", "withdraw", rid)
    assert code == 2
    assert "approved" in err

    # The file without its request now names the subscription of an approval: refused.
    workspace.edit(sub_file, lambda s: s.pop("approved_by"))
    code, _, err = govex("apply", root)
    assert code == 2
    assert f"add request: {rid}" in err
    # Naming the request and matching it, the file is that subscription: nothing to apply.
    workspace.edit(sub_file, lambda s: s.update(request=rid))
    code, out, err = govex("apply", root, "--json")
    assert code == 0, err
    assert json.loads(out)["plan"]["subscriptions"] == {"added": [], "changed": [],
                                                        "removed": []}
    # Differing from the approval, or under another id: refused.
    before = store_snapshot()
    workspace.edit(sub_file, lambda s: s.update(fields=["id_no", "name", "phone"]))
    code, _, err = govex("apply", root)
    assert code == 2
    assert f"differs from what request {rid} approved" in err
    workspace.edit(sub_file, lambda s: s.update(fields=["id_no", "name", "birth_date"],
                                                id="SUB-GSC-009"))
    code, _, err = govex("apply", root)
    assert code == 2
    assert "give it id: SUB-GSC-001" in err
    assert store_snapshot() == before
    # Without the file, apply still neither removes nor changes the approval's subscription.
    (workspace.root / sub_file).unlink()
    code, out, err = govex("apply", root, "--json")
    assert code == 0, err
    assert "SUB-GSC-001" not in json.dumps(json.loads(out)["plan"])
    code, out, _ = govex("catalog", "show", "PSB-RES-001", "--json")
    assert [s["id"] for s in json.loads(out)["subscriptions"]] == ["SUB-GSC-001"]
    # Nor does it orphan it: the resource the approval granted stays, refused in one sentence.
    before = store_snapshot()
    (workspace.root / "resources" / "psb-residents.yaml").unlink()
    code, _, err = govex("apply", root)
    assert code == 2
    assert "resource 'PSB-RES-001' cannot be removed: subscription(s) SUB-GSC-001" in err
    assert "Traceback" not in err
    assert store_snapshot() == before


def test_a_connection_owner_is_a_known_department(workspace: Any, govex: Any) -> None:
    workspace.edit("connections.yaml", lambda c: c["connections"]["gsc_db"].update(owner="mars"))
    code, _, err = govex("apply", str(workspace.root))
    assert code == 2
    assert "connections.yaml" in err
    assert "unknown department 'mars'" in err
