"""Usable, not visible (可用不可见): verification instead of copies.

A `delivery: verify` subscription receives nothing; a run keeps its verification index
(`tables.verify_index`) and the consumer asks whether values it holds match the source.

- `canonical`: how values compare (typed as the contract types them, then one text);
- `digests`: the keyed digests of canonical values the index holds instead of values;
- `index`: the index a run keeps per verify subscription (upserts, deletes, replacement,
  removal when the subscription ends) and its lookup;
- `tables`: the index and the per-key answer counts;
- `service`: one `POST /api/v1/verify/{code}` call: which subscription, the checks of the
  body, the limits, the answers;
- `answers`: what a call writes in its one store transaction: the per-key answer counts, a
  `verify_records` row per answered record and the day's usage;
- `direct`: the statements a call sends straight through psycopg on a PostgreSQL store;
- `limits`: the per-subscription call rate (a token bucket per process).
"""
