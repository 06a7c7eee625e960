"""`govex init DIR`: scaffold a commented workspace that `govex apply DIR --dry-run` accepts.

Why: a new workspace should start from files that already pass every check, with comments
saying what each key is for, instead of from a blank page and the reference docs.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from govex.errors import DeclarationError
from govex.workdays import local_date

_DEPARTMENTS = """\
# Every department that provides or consumes data. `code` is how resources and
# subscriptions name it: short, lowercase. See docs/workspace.md#departmentsyaml.
departments:
  - code: psb
    name: 市公安局
    contact: data@psb.example.gov.cn   # where questions about its data go
    # notify: {webhook: "https://…"}    # optional: signed JSON events (requests, disputes)
  - code: gsc
    name: 市政务服务中心
"""

_CONNECTIONS = """\
# How govex reaches each system. One of url (SQLAlchemy), path (CSV/JSON Lines files) or
# kafka. ${VAR} comes from the environment (${VAR:-default} gives a default), so secrets never
# sit in this file; a relative sqlite:/// path is relative to this workspace directory.
connections:
  # the provider's source system (point PSB_DB_URL at PostgreSQL, MariaDB, … in production)
  psb_db: {url: "${PSB_DB_URL:-sqlite:///data/psb.db}"}
  # the consumer's database: govex creates the target tables
  gsc_db: {url: "${GSC_DB_URL:-sqlite:///data/gsc.db}"}
  # files:  {path: data/files, format: csv}        # one <table>.csv per resource
  # bus:    {kafka: "127.0.0.1:9092"}               # records pushed by vertical systems
"""

_CONTRACT = """\
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "居民身份基础信息",
  "description": "One file per version (contracts/<name>/<semver>.json). A change that \
breaks consumers (removed field, new required field, narrower type) needs a new major \
version. Draft one from a live table with `govex contract infer CONNECTION TABLE`.",
  "type": "object",
  "required": ["id_no", "name", "updated_at"],
  "properties": {
    "id_no": {
      "type": "string", "description": "公民身份号码; x-govex-checks runs the national check digit",
      "maxLength": 18, "x-govex-pii": "id_number", "x-govex-checks": ["cn_resident_id"]
    },
    "name": {"type": "string", "description": "姓名", "maxLength": 50, "x-govex-pii": "name"},
    "phone": {
      "type": ["string", "null"], "description": "手机号码", "maxLength": 11,
      "x-govex-pii": "phone", "x-govex-checks": ["cn_mobile_phone"]
    },
    "updated_at": {"type": "string", "format": "date-time", "description": "last change (UTC)"}
  }
}
"""

_RESOURCE = """\
# A catalog entry (政务数据资源目录条目): one resource per file. See
# docs/workspace.md#resourcesyaml for every key.
code: PSB-RES-001                     # unique, [A-Z0-9-]+
name: 居民身份基础信息
description: 常住人口身份信息
provider: psb                         # the department that is the one authoritative source
contract: resident_identity@1.0.0     # contracts/resident_identity/1.0.0.json
key: [id_no]                          # record key fields
elements:                             # field -> data element this resource is THE source of
  id_no: person.id_no
  name: person.name
source:
  connection: psb_db
  table: residents                    # or  query: "select ..."
  watermark: updated_at               # read only what changed since the last run
sharing: unconditional                # unconditional | conditional | none
classification: L2                    # L1 public … L4 core (never delivered in bulk)
update_frequency: P1D                 # ISO 8601 duration the provider promises
quality:
  max_error_rate: 0.02                # a run with a higher failing share delivers nothing
"""

_SUBSCRIPTION = """\
# One line of the shared-responsibility checklist (共享责任清单): who receives which fields of
# which resource, masked how, into which table. See docs/workspace.md#subscriptionsyaml.
id: SUB-GSC-001
resource: PSB-RES-001
consumer: gsc
purpose: 一网通办身份核验
fields: [id_no, name, phone]
masking:        # field -> mask_name | mask_id_number | mask_phone | mask_address | hash | none
  phone: mask_phone
target: {connection: gsc_db, table: psb_residents}
mode: upsert                          # upsert | append | snapshot
schedule: "@daily"                    # Airflow schedule (optional)
valid_from: {today}
# valid_until: 2027-12-31             # when the approval ends
# A resource shared conditionally (sharing: conditional) also needs the approved request:
# request: REQ-20261202-0001
"""

_REFERENCE = """\
# reference/

The workspace's additions to the reference data the national checks use. Today:
`division_codes.csv`, GB/T 2260 administrative division codes newer than (or correcting) the
copy shipped with govex, with the header `code,name,valid_from,valid_until` (a 6-digit code,
its name, dates YYYY-MM-DD or empty; `valid_until` is the first day it no longer applies), e.g.

    code,name,valid_from,valid_until
    110119,延庆区,2015-11-13,

`govex apply` checks and stores it; `govex reference` shows what is in use. Without the file,
the shipped data is used as it is.
"""

_README = """\
# govex workspace

Declarations of what data is shared, reviewed like code:

| file | what it declares |
|---|---|
| `departments.yaml` | the departments that provide or consume data |
| `connections.yaml` | how to reach their systems (`${{VAR}}` from the environment) |
| `contracts/<name>/<version>.json` | the shape of each resource's records (JSON Schema) |
| `resources/*.yaml` | catalog entries: who is the one source of what |
| `subscriptions/*.yaml` | who receives which fields, masked how, where |
| `reference/` | overrides of the national checks' reference data |

    govex apply {name} --dry-run    # check everything, show the plan, change nothing
    govex apply {name}              # apply it, all or nothing
    govex run PSB-RES-001 --dry-run # what each subscription would receive

`data/` holds the SQLite files of the default connections.
"""

_GITIGNORE = "data/\n"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "init",
        help="scaffold a commented workspace",
        description="Write a small, commented workspace into DIR (departments, connections, a "
        "contract, a resource, a subscription, a reference/ folder and a README) that "
        "`govex apply DIR --dry-run` accepts as it is. DIR must be absent or empty.",
    )
    p.add_argument("directory", metavar="DIR", help="where to create the workspace")
    p.set_defaults(handler=run)


def scaffold(root: Path, today: dt.date | None = None) -> list[Path]:
    """Write the workspace files into `root` (absent or empty) and return them."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        msg = "is not an empty directory: govex init writes only into a new or empty one"
        raise DeclarationError(msg, file=str(root))
    today = today or local_date()
    files = {
        "departments.yaml": _DEPARTMENTS,
        "connections.yaml": _CONNECTIONS,
        "contracts/resident_identity/1.0.0.json": _CONTRACT,
        "resources/psb-residents.yaml": _RESOURCE,
        "subscriptions/gsc-residents.yaml": _SUBSCRIPTION.replace("{today}", today.isoformat()),
        "reference/README.md": _REFERENCE,
        "README.md": _README.format(name=root.name or str(root)),
        ".gitignore": _GITIGNORE,
    }
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    root = Path(args.directory)
    for path in scaffold(root):
        print(f"  + {path.relative_to(root).as_posix()}")
    print(f"Workspace created in {root}. Next: govex apply {root} --dry-run")
    return 0
