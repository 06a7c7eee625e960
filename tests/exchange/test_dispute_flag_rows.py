"""The store side of the disputed-record flag: a dispute's step marks every copy pending; a
writer that read an older wish cannot mark a newer one applied; a failure keeps the row
pending with its reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

import catalog
from records import dispute_flags as flags

NOW = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)


def _sub(sub_id: str, consumer: str) -> catalog.Subscription:
    return catalog.Subscription.model_validate({
        "id": sub_id, "resource": "PSB-RES-001", "consumer": consumer, "purpose": "测试",
        "fields": ["id_no"], "target": {"connection": "db", "table": "t"},
        "valid_from": "2026-01-01",
    })


def _store(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    flags.metadata.create_all(engine)
    return engine


def test_a_writer_with_an_older_wish_cannot_mark_the_newer_one_applied(tmp_path: Path) -> None:
    engine = _store(tmp_path)
    gsc, hpf = _sub("SUB-GSC-001", "gsc"), _sub("SUB-HPF-001", "hpf")
    with engine.begin() as conn:
        flags.want(conn, "DSP-1", "PSB-RES-001", "K1", True, [gsc, hpf], NOW)
        opened = flags.pending(conn, "PSB-RES-001")
    assert [(r.subscription, r.flagged, r.version) for r in opened] == [
        ("SUB-GSC-001", True, 1), ("SUB-HPF-001", True, 1)]
    with engine.begin() as conn:  # closed before the writer of the opening marked anything
        flags.want(conn, "DSP-1", "PSB-RES-001", "K1", False, [gsc], NOW)
        assert not flags.applied(conn, opened[0], NOW)  # the older wish: stays pending
        closed = flags.pending(conn, "PSB-RES-001")
        assert [(r.subscription, r.flagged, r.version) for r in closed] == [
            ("SUB-GSC-001", False, 2), ("SUB-HPF-001", False, 2)]  # hpf's copy too
        assert flags.applied(conn, closed[0], NOW)
        flags.failed(conn, closed[1], "cannot connect to hpf_db", NOW)
    with engine.connect() as conn:
        shown = flags.flags_of(conn, ["DSP-1"])["DSP-1"]
        assert shown == [
            {"subscription": "SUB-GSC-001", "consumer": "gsc", "state": "cleared",
             "error": None},
            {"subscription": "SUB-HPF-001", "consumer": "hpf", "state": "pending",
             "error": "cannot connect to hpf_db"},
        ]
        assert flags.flags_of(conn, ["DSP-1"], consumer="hpf")["DSP-1"] == shown[1:]
        assert flags.received_by(conn, "hpf") == {"DSP-1"}
        assert flags.received_by(conn, "psb") == set()
        [left] = flags.pending(conn, "PSB-RES-001")
        assert (left.subscription, left.attempts) == ("SUB-HPF-001", 1)
