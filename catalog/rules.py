"""The cross-reference rules `govex apply` enforces before anything is written.

Each rule answers a policy line of POLICY.md; every violation becomes one DeclarationError that
names the file, the field and the value. Rules see the workspace (the desired state) and the
store (history: earlier contract versions, the contract major each subscription pinned).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping

import sqlalchemy as sa

import contracts
from govex.errors import DeclarationError
from govex.identifiers import (
    FILE_IDENTIFIER_LENGTH,
    SQL_IDENTIFIER_LENGTH,
    check_name,
    check_table,
)

from .connections import ResolvedConnection
from .declarations import MASKING_FUNCTIONS, Resource, Subscription
from .state import StoredState
from .workspace import Declared, Workspace


def check_workspace(
    ws: Workspace,
    stored: StoredState,
    today: dt.date,
    resolved: Mapping[str, ResolvedConnection] | None = None,
) -> list[DeclarationError]:
    """Every rule violation of the workspace against itself and the store.

    `resolved` holds the connections that resolved (by name); the names a run will quote on
    them (tables, columns) are checked by the rule and limit of the system behind each one.
    """
    errors: list[DeclarationError] = []
    errors += _contract_evolution(ws, stored)
    for resource in ws.resources.values():
        errors += _resource(ws, stored, resource)
    errors += _one_source(ws, stored)
    errors += _owners(ws)
    for subscription in ws.subscriptions.values():
        errors += _subscription(ws, stored, subscription, today)
    errors += _major_moves(ws, stored)
    errors += _approved_resources_kept(ws, stored)
    errors += _identifiers(ws, resolved or {})
    return errors


def _approved_resources_kept(ws: Workspace, stored: StoredState) -> list[DeclarationError]:
    """A resource that approvals made subscriptions to stays in the catalog: those checklist
    lines are recorded acts of its provider, which apply may neither change nor orphan."""
    held: dict[str, list[str]] = {}
    for sub_id, sub in sorted(stored.from_requests().items()):
        code = str(sub.declaration.get("resource"))
        if code not in ws.resources:
            held.setdefault(code, []).append(sub_id)
    return [
        DeclarationError(
            f"resource '{code}' cannot be removed: subscription(s) {', '.join(ids)} were "
            "created by approved sharing requests; keep its file (revoke the subscriptions to "
            "stop delivery: `govex subscription revoke`)",
            field="resources", value=code,
        )
        for code, ids in held.items()
    ]


def _identifier_limit(connection: ResolvedConnection) -> int | None:
    """The longest name the system behind `connection` takes; None where nothing is quoted."""
    if connection.kind == "path":
        return FILE_IDENTIFIER_LENGTH
    if connection.kind == "url":
        # resolve_connection has checked that this parses and names a supported database.
        return SQL_IDENTIFIER_LENGTH.get(sa.make_url(connection.target).get_backend_name())
    return None


def _identifiers(
    ws: Workspace, resolved: Mapping[str, ResolvedConnection]
) -> list[DeclarationError]:
    """The names a run quotes, checked now by `govex.identifiers`, the rule the run applies.

    A SQL source quotes its table, watermark and key; a file source opens its dataset by name;
    a target gets its table and one column per delivered field, in SQL or in a file.
    """
    # (file, field, name, what: "table" for a SQL table name, else the check_name kind, limit)
    names: list[tuple[str, str, str, str, int]] = []
    for declared in ws.resources.values():
        r, file = declared.item, declared.file
        source = resolved.get(r.source.connection)
        limit = _identifier_limit(source) if source is not None else None
        if source is None or limit is None or r.source.kind == "kafka":
            continue
        if source.kind == "path":
            if r.source.table is not None:
                names.append((file, "source.table", r.source.table, "dataset", limit))
            continue
        if r.source.table is not None:
            names.append((file, "source.table", r.source.table, "table", limit))
        if r.source.watermark is not None:
            names.append((file, "source.watermark", r.source.watermark, "column", limit))
        if r.source.deleted is not None:
            names.append((file, "source.deleted", r.source.deleted, "column", limit))
        names += [(file, "key", name, "column", limit) for name in r.key]
    for declared_sub in ws.subscriptions.values():
        s, file = declared_sub.item, declared_sub.file
        if s.target is None:  # a verify subscription: nothing is created for it
            continue
        target = resolved.get(s.target.connection)
        limit = _identifier_limit(target) if target is not None else None
        if target is None or limit is None:
            continue
        what = "dataset" if target.kind == "path" else "table"
        names.append((file, "target.table", s.target.table, what, limit))
        names += [(file, "fields", name, "column", limit) for name in s.fields]
    errors: list[DeclarationError] = []
    for file, field, name, what, limit in names:
        try:
            if what == "table":
                check_table(name, limit)
            else:
                check_name(name, what, limit)
        except DeclarationError as error:
            errors.append(DeclarationError(error.message, file=file, field=field, value=name))
    return errors


def find_contract(ws: Workspace, stored: StoredState, ref: str) -> contracts.Contract | None:
    """A contract version from the workspace, else from the store's history."""
    if ref in ws.contracts:
        return ws.contracts[ref].item
    if ref in stored.contracts:
        s = stored.contracts[ref]
        return contracts.Contract(name=s.name, version=s.version, schema=s.schema)
    return None


def _versions(ws: Workspace, stored: StoredState, name: str) -> dict[str, contracts.Contract]:
    out: dict[str, contracts.Contract] = {}
    for ref, s in stored.contracts.items():
        if s.name == name:
            out[ref] = contracts.Contract(name=s.name, version=s.version, schema=s.schema)
    for ref, d in ws.contracts.items():
        if d.item.name == name:
            out[ref] = d.item
    return out


def _describe(changes: list[contracts.SchemaChange]) -> str:
    return "; ".join(f"{c.path or '/'}: {c.detail}" for c in changes)


def _contract_evolution(ws: Workspace, stored: StoredState) -> list[DeclarationError]:
    """A breaking change needs a new major version, whether made in place or in a new file."""
    errors: list[DeclarationError] = []
    for ref, declared in ws.contracts.items():
        new = declared.item
        old_stored = stored.contracts.get(ref)
        if old_stored is not None:
            changes = contracts.breaking_changes(old_stored.schema, new.schema)
            if changes:
                errors.append(
                    DeclarationError(
                        f"contract {ref} was already registered and this edit breaks "
                        f"compatibility without a major version bump ({_describe(changes)}); "
                        f"publish it as version {new.semver[0] + 1}.0.0",
                        file=declared.file,
                    )
                )
            continue
        versions = sorted(
            _versions(ws, stored, new.name).values(), key=lambda c: c.semver
        )
        position = [c.ref for c in versions].index(ref)
        neighbours = []
        if position > 0:
            neighbours.append((versions[position - 1], new))
        if position + 1 < len(versions):
            neighbours.append((new, versions[position + 1]))
        for old, newer in neighbours:
            changes = contracts.check_evolution(old, newer)
            if changes:
                errors.append(
                    DeclarationError(
                        f"contract {newer.ref} breaks compatibility with {old.ref} without a "
                        f"major version bump ({_describe(changes)}); "
                        f"publish it as version {old.semver[0] + 1}.0.0",
                        file=declared.file,
                    )
                )
    return errors


def _resource(
    ws: Workspace, stored: StoredState, declared: Declared[Resource]
) -> Iterator[DeclarationError]:
    r, file = declared.item, declared.file
    # A kind in ws.incomplete lost a declaration to a parse error, already reported: an
    # "unknown …" reference into it would only echo that error.
    if r.provider not in ws.departments and "departments" not in ws.incomplete:
        yield DeclarationError(
            f"unknown department '{r.provider}' (not in departments.yaml)",
            file=file, field="provider", value=r.provider,
        )
    contract = find_contract(ws, stored, r.contract)
    if contract is None and "contracts" in ws.incomplete:
        pass
    elif contract is None:
        yield DeclarationError(
            f"unknown contract '{r.contract}' (no contracts/{r.contract_name}/"
            f"{r.contract_version}.json)",
            file=file, field="contract", value=r.contract,
        )
    else:
        fields = set(contract.fields)
        for name in r.key:
            if name not in fields:
                yield DeclarationError(
                    f"key field '{name}' is not in contract {r.contract}",
                    file=file, field="key", value=name,
                )
        for name in r.elements:
            if name not in fields:
                yield DeclarationError(
                    f"element field '{name}' is not in contract {r.contract}",
                    file=file, field=f"elements.{name}", value=name,
                )
    src = r.source
    conn = ws.connections.get(src.connection)
    if conn is None and "connections" in ws.incomplete:
        pass
    elif conn is None:
        yield DeclarationError(
            f"unknown connection '{src.connection}' (not in connections.yaml)",
            file=file, field="source.connection", value=src.connection,
        )
    else:
        allowed = {"table": ("url", "path"), "query": ("url",), "kafka": ("kafka",)}[src.kind]
        if conn.item.kind not in allowed:
            yield DeclarationError(
                f"a {src.kind} source needs a {' or '.join(allowed)} connection, but "
                f"'{src.connection}' is a {conn.item.kind} connection",
                file=file, field="source.connection", value=src.connection,
            )
    if r.quality.expectations:
        yield from _expectations(r, file)


def _expectations(r: Resource, file: str) -> Iterator[DeclarationError]:
    """Extra expectations must name a real Great Expectations 1.x class, and every regex they
    hold must run on RE2: the gate never evaluates a declared regex with Python `re`."""
    import great_expectations.expectations as gxe  # heavy: only when expectations are declared

    for index, expectation in enumerate(r.quality.expectations):
        if not isinstance(getattr(gxe, expectation.type, None), type):
            yield DeclarationError(
                f"unknown Great Expectations expectation '{expectation.type}'",
                file=file, field=f"quality.expectations[{index}].type", value=expectation.type,
            )
        for name in ("regex", "regex_list"):
            value = expectation.kwargs.get(name)
            regexes = value if isinstance(value, list) else [] if value is None else [value]
            refusal = next(filter(None, map(contracts.pattern_refusal, regexes)), None)
            if refusal is not None:
                yield DeclarationError(
                    refusal, file=file, field=f"quality.expectations[{index}].kwargs.{name}",
                    value=value,
                )


def _one_source(ws: Workspace, stored: StoredState) -> list[DeclarationError]:
    """一数一源: a data element is provided by exactly one resource."""
    holders: dict[str, str] = {}
    # Resources already in the store hold their elements first, so the error names them.
    for code, declaration in stored.resources.items():
        if code in ws.resources:
            for element in declaration.get("elements", {}).values():
                holders.setdefault(element, code)
    errors: list[DeclarationError] = []
    claims: dict[str, list[str]] = {}
    for code, declared in ws.resources.items():
        for element in declared.item.elements.values():
            claims.setdefault(element, []).append(code)
    for element, codes in claims.items():
        holder = holders.get(element, codes[0])
        if holder not in codes:
            holder = codes[0]
        for code in codes:
            if code == holder:
                continue
            declared = ws.resources[code]
            field = next(f for f, e in declared.item.elements.items() if e == element)
            holder_r = ws.resources[holder].item
            errors.append(
                DeclarationError(
                    f"data element '{element}' is already provided by resource {holder} "
                    f"({holder_r.provider}); one data, one source: a data element may be "
                    f"claimed by one resource only",
                    file=declared.file, field=f"elements.{field}", value=element,
                )
            )
    return errors


def _subscription_target(
    ws: Workspace, s: Subscription, file: str
) -> Iterator[DeclarationError]:
    """A bulk subscription's target must be a known database or file connection."""
    if s.target is None:
        return
    target = ws.connections.get(s.target.connection)
    if target is None and "connections" in ws.incomplete:
        pass
    elif target is None:
        yield DeclarationError(
            f"unknown connection '{s.target.connection}' (not in connections.yaml)",
            file=file, field="target.connection", value=s.target.connection,
        )
    elif target.item.kind == "kafka":
        yield DeclarationError(
            f"a subscription target needs a database or file connection, but "
            f"'{s.target.connection}' is a kafka connection",
            file=file, field="target.connection", value=s.target.connection,
        )


def _subscription(
    ws: Workspace, stored: StoredState, declared: Declared[Subscription], today: dt.date
) -> Iterator[DeclarationError]:
    s, file = declared.item, declared.file
    if s.consumer not in ws.departments and "departments" not in ws.incomplete:
        yield DeclarationError(
            f"unknown department '{s.consumer}' (not in departments.yaml)",
            file=file, field="consumer", value=s.consumer,
        )
    yield from _subscription_target(ws, s, file)
    for name, function in s.masking.items():
        if function not in MASKING_FUNCTIONS:
            yield DeclarationError(
                f"unknown masking function '{function}' (known: {', '.join(MASKING_FUNCTIONS)})",
                file=file, field=f"masking.{name}", value=function,
            )
    if s.valid_until is not None and s.valid_until < today:
        yield DeclarationError(
            f"the validity window ended on {s.valid_until}; renew the approval with a new "
            f"valid_until or remove the subscription",
            file=file, field="valid_until", value=str(s.valid_until),
        )
    resource_decl = ws.resources.get(s.resource)
    if resource_decl is None and "resources" in ws.incomplete:
        return
    if resource_decl is None:
        yield DeclarationError(
            f"unknown resource '{s.resource}' (no resource with that code in resources/)",
            file=file, field="resource", value=s.resource,
        )
        return
    r = resource_decl.item
    if r.sharing == "none":
        yield DeclarationError(
            f"resource {r.code} is declared sharing: none (不予共享) and cannot be subscribed to",
            file=file, field="resource", value=s.resource,
        )
    if r.classification == "L4":
        yield DeclarationError(
            f"resource {r.code} is classified L4 (core data) and is never delivered in bulk",
            file=file, field="resource", value=s.resource,
        )
    yield from _approval(stored, s, r, file)
    contract = find_contract(ws, stored, r.contract)
    if contract is None:
        return
    fields = set(contract.fields)
    for name in s.fields:
        if name not in fields:
            yield DeclarationError(
                f"field '{name}' is not in contract {r.contract} of resource {r.code}",
                file=file, field="fields", value=name,
            )
    for name in s.masking:
        if name not in fields:
            yield DeclarationError(
                f"masked field '{name}' is not in contract {r.contract} of resource {r.code}",
                file=file, field=f"masking.{name}", value=name,
            )
        elif name not in s.fields:
            yield DeclarationError(
                f"masked field '{name}' is not one of the subscription's fields",
                file=file, field=f"masking.{name}", value=name,
            )
    if s.contract is not None:
        pinned_name, pinned_version = s.contract.split("@", 1)
        pinned = contracts.parse_semver(pinned_version)
        if pinned_name != contract.name or pinned[0] != contract.semver[0]:
            yield DeclarationError(
                f"the subscription pins {s.contract} but resource {r.code} provides "
                f"{r.contract}",
                file=file, field="contract", value=s.contract,
            )


def _owners(ws: Workspace) -> list[DeclarationError]:
    """A connection's `owner` is a known department: requests are checked against it."""
    if "departments" in ws.incomplete:
        return []
    return [
        DeclarationError(
            f"unknown department '{d.item.owner}' (not in departments.yaml)",
            file=d.file, field=f"connections.{name}.owner", value=d.item.owner,
        )
        for name, d in ws.connections.items()
        if d.item.owner is not None and d.item.owner not in ws.departments
    ]


def _approved_shape(s: Subscription) -> dict[str, object]:
    """What an approval fixes of a subscription, comparable with a stored request."""
    return {
        "resource": s.resource, "consumer": s.consumer, "fields": sorted(s.fields),
        "masking": {f: m for f, m in s.masking.items() if m != "none"},
        "target": s.target.model_dump(mode="json") if s.target else None, "mode": s.mode,
        "delivery": s.delivery,
    }


def _approval(
    stored: StoredState, s: Subscription, r: Resource, file: str
) -> Iterator[DeclarationError]:
    """A conditional subscription comes from an approved sharing request (`request: REQ-…`)
    and matches it; `approved_by:` alone, which anyone editing the workspace can write, is
    refused. A file naming a request is the subscription the approval created, not a second
    one: it must carry that subscription's id."""
    if s.approved_by is not None and s.approved_by != r.provider:
        yield DeclarationError(
            f"approved_by must be the provider of {r.code}, '{r.provider}', not "
            f"'{s.approved_by}'",
            file=file, field="approved_by", value=s.approved_by,
        )
        return
    taken = stored.subscriptions.get(s.id)
    if s.request is None:
        if taken is not None and taken.origin == "request":
            yield DeclarationError(
                f"subscription {s.id} was created by the approval of request "
                f"{taken.request_id}; add request: {taken.request_id} to this file, or choose "
                "another id",
                file=file, field="id", value=s.id,
            )
        elif r.sharing == "conditional":
            yield DeclarationError(
                f"resource {r.code} is shared conditionally (有条件共享) and approved_by alone "
                f"is not enough: submit a sharing request (`govex request submit`), have its "
                f"provider '{r.provider}' approve it, then name it here with request: REQ-…",
                file=file, field="request",
            )
        return
    request = stored.requests.get(s.request)
    if request is None:
        yield DeclarationError(
            f"unknown sharing request '{s.request}' (see `govex request list`)",
            file=file, field="request", value=s.request,
        )
        return
    if request.state != "approved":
        yield DeclarationError(
            f"sharing request {s.request} is {request.state}, not approved; only an approved "
            "request makes a subscription",
            file=file, field="request", value=s.request,
        )
        return
    if request.subscription_id != s.id:
        yield DeclarationError(
            f"the approval of request {s.request} created subscription "
            f"{request.subscription_id}; this file is that subscription, so give it "
            f"id: {request.subscription_id}",
            file=file, field="id", value=s.id,
        )
        return
    approved = {
        "resource": request.resource, "consumer": request.consumer,
        "fields": sorted(request.fields),
        "masking": {f: m for f, m in request.masking.items() if m != "none"},
        "target": request.target, "mode": request.mode or "upsert",
        "delivery": request.delivery,
    }
    declared = _approved_shape(s)
    differ = [key for key in approved if approved[key] != declared[key]]
    if differ:
        shown = "; ".join(f"{key} approved as {approved[key]}" for key in differ)
        yield DeclarationError(
            f"differs from what request {s.request} approved ({shown}); make the file match "
            "the approval, or submit a new request for the change",
            file=file, field=differ[0], value=declared[differ[0]],
        )


def pinned_major(ws: Workspace, stored: StoredState, sub: Subscription) -> int:
    """The contract major a subscription is bound to: declared, kept, or the resource's now."""
    if sub.contract is not None:
        return contracts.parse_semver(sub.contract.split("@", 1)[1])[0]
    kept = stored.subscriptions.get(sub.id)
    if kept is not None and kept.declaration.get("resource") == sub.resource:
        return kept.contract_major
    resource = ws.resources[sub.resource].item
    return contracts.parse_semver(resource.contract_version)[0]


def _major_moves(ws: Workspace, stored: StoredState) -> list[DeclarationError]:
    """A resource may not move to a new major while subscriptions still pin the old one."""
    errors: list[DeclarationError] = []
    for sub_id, declared in ws.subscriptions.items():
        sub = declared.item
        resource = ws.resources.get(sub.resource)
        kept = stored.subscriptions.get(sub_id)
        if resource is None or kept is None or sub.contract is not None:
            continue
        if kept.declaration.get("resource") != sub.resource:
            continue
        now_major = contracts.parse_semver(resource.item.contract_version)[0]
        if kept.contract_major != now_major:
            errors.append(
                DeclarationError(
                    f"resource {sub.resource} moves to {resource.item.contract} but subscription "
                    f"{sub_id} still pins major version {kept.contract_major}; once the consumer "
                    f"has checked the new version, set contract: {resource.item.contract} in the "
                    f"subscription (or remove it)",
                    file=resource.file, field="contract", value=resource.item.contract,
                )
            )
    return errors
