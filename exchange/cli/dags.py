"""`govex dags split DAGS_FOLDER`: one Airflow DAG file per providing department, for a catalog
too large for Airflow to parse as one file (docs/operations.md, "DAG files at scale")."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("dags", help="the catalog's Airflow DAG files")
    sub = p.add_subparsers(dest="dags_command", required=True, metavar="COMMAND")
    split = sub.add_parser(
        "split",
        help="write one DAG file per providing department",
        description="Write govex__<department>.py into DAGS_FOLDER for every department that "
        "provides a resource (each holds exactly that department's DAGs; govex_exchanges.py "
        "keeps the departments without a file), and remove the files it wrote for departments "
        "that provide nothing now. Run it again after an apply that adds departments.",
    )
    split.add_argument("folder", metavar="DAGS_FOLDER",
                       help="Airflow's DAG folder, the one holding govex_exchanges.py")
    split.set_defaults(handler=run_split)


def run_split(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies (and
    # exchange.airflow loads Airflow, seconds).
    from pathlib import Path

    import catalog
    from exchange.airflow import dag_files
    from exchange.store import open_store
    from govex.errors import DeclarationError
    from govex.settings import load_settings

    folder = Path(args.folder)
    if not folder.is_dir():
        msg = f"DAG folder '{folder}' is not a directory: name Airflow's DAG folder"
        raise DeclarationError(msg, value=str(folder))
    engine = open_store(load_settings())
    try:
        with engine.connect() as conn:
            departments = sorted(set(catalog.resource_providers(conn).values()))
    finally:
        engine.dispose()
    split = dag_files.write_department_files(folder, departments)
    print(f"{len(departments)} providing departments: {len(split.written)} DAG files written, "
          f"{len(split.unchanged)} unchanged, {len(split.removed)} removed")
    for name in split.kept:
        print(f"left alone (not written by govex): {folder / name}")
    return 0
