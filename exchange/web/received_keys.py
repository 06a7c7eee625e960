"""A consumer names a record by what it received (INTERFACES.md, "Keys, tokens and roles"): the
key as delivered to one of its subscriptions — in clear where the key fields are delivered in
clear, masked (`hash`) where they were hashed — or the `_govex_key` stand-in where the key is
not delivered. Never the source key of a record whose key it only received hashed: answering
for that would let it confirm guesses of the plaintext.

`source_keys` turns what a consumer sent into the source key(s) it stands for, per subscription:

- key fields delivered in clear: the key sent is the source key if the subscription received
  it; one lookup of that record's deliveries (`records.latest_hashes`);
- key fields hashed, or the `_govex_key` stand-in: every source key delivered to the
  subscription (`records.delivered_keys`, streamed) is masked the way the delivery masked it,
  vectorised, and compared with the key sent. The work depends on what was delivered to the
  subscription, never on whether the key sent exists: a hit and a miss cost the same, and
  every subscription is looked at whatever an earlier one found.

`as_received` goes the other way for one record (a dispute's source key shown back to the
consumer that opened it).

Both read provenance through `records`, whose readers also answer from what retention kept of
the months it dropped (each record's last delivery to each subscription, `beyond_retention`):
a record received only in a dropped month is still named by what the consumer holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

import catalog
import records

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = ["as_received", "delivered_forms", "source_keys"]


def _clear(resource: catalog.Resource, sub: catalog.Subscription) -> bool:
    """Whether the subscription receives the key fields unchanged."""
    from exchange.run import targets

    return targets._key_is_delivered(resource, sub) and all(  # noqa: SLF001
        sub.masking.get(k, "none") == "none" for k in resource.key
    )


def delivered_forms(
    resource: catalog.Resource, sub: catalog.Subscription, keys: pa.Array[Any], secret: bytes
) -> pa.Array[Any]:
    """Source record keys (provenance's text form: key values joined by ',') as `sub`
    received them: the key fields masked as delivered and joined by ',', or `_govex_key`
    (`exchange.run.targets`) where the key is not delivered."""
    from exchange.run import masking, targets

    key = masking.subscription_key(secret, sub.id)
    if not targets._key_is_delivered(resource, sub):  # noqa: SLF001
        return masking.mask("hash", keys, key=key)
    functions = [sub.masking.get(k, "none") for k in resource.key]
    if all(f == "none" for f in functions):
        return keys
    n = len(functions)
    if n == 1:
        parts: list[Any] = [keys]
    else:
        split = pc.split_pattern(keys, ",", max_splits=n - 1)
        parts = [pc.list_element(split, i) for i in range(n)]
    masked = [p if f == "none" else masking.mask(f, p, key=key)
              for p, f in zip(parts, functions, strict=True)]
    joined: Any = masked[0] if n == 1 else pc.binary_join_element_wise(*masked, ",")
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    result: pa.Array[Any] = joined
    return result


def source_keys(
    conn: sa.Connection, resource: catalog.Resource, subs: Sequence[catalog.Subscription],
    sent: str, secret: bytes,
) -> set[str]:
    """The source keys that `sent` names among what `subs` received (empty: none)."""
    found: set[str] = set()
    receivers: set[str] | None = None  # the subscriptions record `sent` was delivered to
    for sub in subs:
        if _clear(resource, sub):
            if receivers is None:  # one read of the record's deliveries for every such sub
                receivers = set(records.latest_hashes(conn, resource.code, sent))
            if sub.id in receivers:
                found.add(sent)
            continue
        for part in records.delivered_keys(conn, resource.code, sub.id):
            delivered = pa.array(part, pa.string())
            forms = delivered_forms(resource, sub, delivered, secret)
            hits = pc.filter(delivered, pc.equal(forms, sent))
            found.update(str(k) for k in hits.to_pylist())
    return found


def as_received(
    conn: sa.Connection, resource: catalog.Resource, subs: Iterable[catalog.Subscription],
    key: str, secret: bytes,
) -> str:
    """Source key `key` as the consumer holding `subs` received it: in clear when one of them
    receives the key in clear, else as the first (by id) of those that delivered the record
    received it (of any of `subs` when none did)."""
    ordered = sorted(subs, key=lambda s: s.id)
    if not ordered or any(_clear(resource, s) for s in ordered):
        return key
    delivered = set(records.latest_hashes(conn, resource.code, key))
    chosen = next((s for s in ordered if s.id in delivered), ordered[0])
    form = delivered_forms(resource, chosen, pa.array([key], pa.string()), secret)
    return str(form[0].as_py())
