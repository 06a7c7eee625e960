"""Sample govex resources, subscriptions and runs for the lineage tests."""

from __future__ import annotations

from typing import Any

from openlineage.client.uuid import generate_new_uuid

import lineage

CONTRACT = {
    "type": "object",
    "required": ["id_no", "name"],
    "properties": {
        "id_no": {"type": "string", "x-govex-pii": "id_number", "description": "居民身份号码"},
        "name": {"type": "string", "x-govex-pii": "name"},
        "phone": {"type": ["string", "null"], "x-govex-pii": "phone"},
        "birth_date": {"type": "string", "format": "date"},
        "score": {"type": "integer"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}


def resource_info(**overrides: Any) -> lineage.ResourceInfo:
    values: dict[str, Any] = {
        "code": "PSB-RES-001", "name": "居民身份基础信息", "provider": "psb",
        "contract": "resident_identity@1.0.0", "sharing": "conditional", "classification": "L3",
        "description": "户籍人口身份信息", "key": ("id_no",),
        "fields": lineage.schema_from_json_schema(CONTRACT), "watermark": "updated_at",
    }
    values.update(overrides)
    return lineage.ResourceInfo(**values)


def subscription_info(
    sub_id: str = "SUB-GSC-001", target: lineage.DatasetName | None = None, **overrides: Any
) -> lineage.SubscriptionInfo:
    values: dict[str, Any] = {
        "id": sub_id, "resource": "PSB-RES-001", "consumer": "gsc", "purpose": "一网通办身份核验",
        "mode": "upsert", "fields": ("id_no", "name", "birth_date"),
        "target": target or lineage.sql_dataset("sqlite:////srv/gsc.db", "psb_residents"),
        "masking": {"name": "mask_name"},
    }
    values.update(overrides)
    return lineage.SubscriptionInfo(**values)


def new_run_id() -> str:
    return str(generate_new_uuid())


def sample_run(**overrides: Any) -> lineage.ResourceRun:
    """A resource run of PSB-RES-001 from PostgreSQL to two subscriptions, inside Airflow."""
    values: dict[str, Any] = {
        "run_id": new_run_id(),
        "resource": resource_info(),
        "source": lineage.sql_dataset(
            "postgresql+psycopg://u:secret@db.psb:5432/psb", "residents"
        ),
        "subscriptions": (
            subscription_info(),
            subscription_info(
                "SUB-HPF-001",
                lineage.sql_dataset("mysql+pymysql://root@hpf:3306/hpf", "residents"),
                consumer="hpf", fields=("id_no", "phone"),
                masking={"id_no": "mask_id_number", "phone": "hash"}, mode="append",
            ),
        ),
        "parent": ("airflow", "govex__PSB-RES-001.run", new_run_id()),
    }
    values.update(overrides)
    return lineage.ResourceRun(**values)
