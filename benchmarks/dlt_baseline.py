"""The dlt baseline of `govex bench exchange`: the same source table into PostgreSQL with dlt,
the tool a department engineer would otherwise pick, run as its own process (imports included,
as govex's run is measured).

    python -m benchmarks.dlt_baseline --source URL --target URL --table residents --key id

dlt as its documentation recommends for a database-to-database copy: the `sql_database`
source's `sql_table` with the pyarrow backend, the postgres destination, `merge` on the key
(the same semantics as govex's upsert), and the destination's CSV loader (PostgreSQL COPY),
its fastest. It does none of govex's work: no contract, gate, masking or provenance. Prints
the rows loaded as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="postgresql://… of the source database")
    parser.add_argument("--target", required=True, help="postgresql://… of the target database")
    parser.add_argument("--table", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("DLT_DATA_DIR", tmp)
        os.environ["RUNTIME__LOG_LEVEL"] = "ERROR"
        import dlt
        from dlt.sources.sql_database import sql_table

        source = sql_table(
            credentials=args.source, table=args.table, backend="pyarrow",
            chunk_size=args.chunk_size, write_disposition="merge", primary_key=args.key,
        )
        pipeline = dlt.pipeline(
            pipeline_name="govex_bench_dlt", pipelines_dir=tmp,
            destination=dlt.destinations.postgres(credentials=args.target),
            dataset_name="dlt_bench",
        )
        pipeline.run(source, loader_file_format="csv")
        trace = pipeline.last_trace
        normalized = trace.last_normalize_info if trace is not None else None
        loaded = normalized.row_counts.get(args.table, 0) if normalized is not None else 0
    print(json.dumps({"rows": loaded}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
