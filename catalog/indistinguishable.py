"""Subscriptions whose deliveries a leaked copy cannot tell apart.

Leak tracing (`govex leak identify`) recognises a delivery by the fingerprint provenance keeps
of every row a subscription received: the hash of the values as delivered, over the
subscription's fields. Two bulk subscriptions of one resource that receive the same fields,
each masked by the same function, with no `hash` masking (the one function keyed per
subscription), receive the same values: a leaked row of one matches what the other received
just as well, and no file can say which of them leaked it.

Field order does not matter here, though the fingerprint depends on it: leak tracing maps the
file's columns to each subscription's fields (a leaked file rarely keeps the columns in their
order anyway), and the values under those fields are equal. A subscription receiving a subset
of another's fields is not a twin: a file carrying the other's extra fields names the other.
"""

from __future__ import annotations

from collections.abc import Iterable

from .declarations import Subscription

__all__ = ["indistinguishable", "twin_warning"]


def _signature(sub: Subscription) -> tuple[str, frozenset[tuple[str, str]]] | None:
    """What a bulk subscription's delivered values depend on; None when something is keyed to
    it (a `hash`-masked field) or nothing is delivered (verify)."""
    if sub.delivery != "bulk":
        return None
    masking = {name: sub.masking.get(name, "none") for name in sub.fields}
    if "hash" in masking.values():
        return None
    return sub.resource, frozenset(masking.items())


def indistinguishable(subscriptions: Iterable[Subscription]) -> list[tuple[str, ...]]:
    """Groups of two or more subscription ids (sorted, groups sorted) that receive identical
    values: same resource, same fields, same masking per field, nothing keyed."""
    groups: dict[tuple[str, frozenset[tuple[str, str]]], list[str]] = {}
    for sub in subscriptions:
        signature = _signature(sub)
        if signature is not None:
            groups.setdefault(signature, []).append(sub.id)
    return sorted(tuple(sorted(ids)) for ids in groups.values() if len(ids) > 1)


def twin_warning(resource: str, group: tuple[str, ...]) -> str:
    """The sentence `govex apply` warns with about one group."""
    names = ", ".join(group[:-1]) + f" and {group[-1]}"
    return (
        f"subscriptions {names} receive the same fields of {resource} with the same masking "
        "and nothing keyed: a leaked copy of one cannot be told from the others (`govex leak "
        "identify` reports them as a tie); give one of them `hash` masking on a field, keyed "
        "per subscription, to tell them apart"
    )
