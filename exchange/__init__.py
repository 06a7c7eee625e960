"""The govex application: the wings that compose the lower floors into an exchange.

- `exchange.run`: one exchange run — extract, quality gate, project + mask + load per
  subscription, the run bookkeeping and the dispute correction path. Where a record goes.
- `exchange.ingest`: the Kafka ingestion worker (`govex ingest`) landing vertical systems'
  pushed records into landing tables.
- `exchange.store`: the metadata store (engine, Alembic migrations) and API tokens.
- `exchange.web`: the web app and REST API (`govex serve`, the Airflow plugin).
- `exchange.leak`: leak tracing (`govex leak identify`): which subscription a leaked file of
  records came from, by the fingerprints provenance keeps.
- `exchange.airflow`: the Airflow adapter — DAG factory, operators, landing trigger, plugin.
- `exchange.cli`: the `govex` command line, one module per command group.
- `exchange.demo`: the demo city, its Airflow driver and the embedded Kafka broker.

Wings import each other only through their `__init__`; the lower floors (`catalog`,
`contracts`, `connectors`, `quality`, `lineage`, `records`, `govex`) never import `exchange`.
"""
