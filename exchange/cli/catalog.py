"""`govex catalog list/show [--json]`: browse the catalog."""

from __future__ import annotations

import argparse

from exchange.cli.output import print_json, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("catalog", help="browse the catalog")
    sub = p.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")
    ls = sub.add_parser("list", help="list the resources")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=run_list)
    show = sub.add_parser("show", help="show one resource with its contract and subscriptions")
    show.add_argument("code", metavar="CODE", help="resource code, e.g. PSB-RES-001")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)


def print_catalog(resources: list[dict[str, object]]) -> None:
    table(
        [
            (r["code"], r["name"], r["provider"], r["contract"], r["sharing"],
             r["classification"], r["update_frequency"], r["subscriptions"])
            for r in resources
        ],
        ["CODE", "NAME", "PROVIDER", "CONTRACT", "SHARING", "CLASS", "UPDATES", "SUBSCRIPTIONS"],
    )


def run_list(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import catalog
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        resources = catalog.list_resources(conn)
    if args.json:
        print_json(resources)
    elif not resources:
        print("The catalog is empty: declare resources in a workspace and `govex apply` it.")
    else:
        print_catalog(resources)
    return 0


def run_show(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import catalog
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        resource = catalog.show_resource(conn, args.code)
    if args.json:
        print_json(resource)
        return 0
    print(f"{resource['code']}  {resource['name']}")
    if resource.get("description"):
        print(f"  {resource['description']}")
    provider = resource["provider_department"]
    print(f"  provider:        {provider['code']} ({provider['name']})")
    print(f"  contract:        {resource['contract']}")
    print(f"  key:             {', '.join(resource['key'])}")
    print(f"  sharing:         {resource['sharing']}, classification {resource['classification']}")
    print(f"  update promise:  {resource['update_frequency']}")
    source = resource["source"]
    where = source.get("table") or source.get("query") or source.get("kafka")
    print(f"  source:          {source['connection']}: {where}")
    props = resource["contract_schema"].get("properties", {})
    required = set(resource["contract_schema"].get("required", []))
    print("  fields:")
    table(
        [
            ("   " + name, spec.get("type", ""), "yes" if name in required else "",
             resource["elements"].get(name, ""), spec.get("x-govex-pii", ""))
            for name, spec in props.items()
        ],
        ["   FIELD", "TYPE", "REQUIRED", "DATA ELEMENT", "PII"],
    )
    subs = resource["subscriptions"]
    print(f"  subscriptions ({len(subs)}):")
    for s in subs:
        masks = ", ".join(f"{k}:{v}" for k, v in s.get("masking", {}).items()) or "none"
        print(f"    {s['id']}  {s['consumer']}  {s['purpose']}  fields={','.join(s['fields'])}"
              f"  masking={masks}  mode={s['mode']}")
    return 0
