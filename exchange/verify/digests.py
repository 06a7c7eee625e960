"""Keyed digests of canonical values: what the verification index holds instead of values.

HMAC-SHA256 under the subscription's own key (`exchange.run.masking.subscription_key`),
truncated to 128 bits (32 hex characters). The message names what is digested, so a digest of
one field can never stand for another's or for a record key: `govex/verify/v1/field\\0<name>\\0`
then the field's canonical text, or `govex/verify/v1/key\\0` then each key field's canonical
text as `<UTF-8 length>:<text>` (`-` for a null part), which no other key spells the same.

Without the master secret the index cannot be read back by guessing (an ID number has few
enough values to enumerate, but not under an unknown key), and two subscriptions' digests of
one value are unrelated. HMAC has no Arrow kernel: the two SHA-256 pad states (and the message
prefix) are hashed once per field, then copied per *distinct* value (as `masking` does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc

from exchange.verify.canonical import FieldRule, canonical_text

pc: Any = _pc

__all__ = ["DIGEST_CHARS", "Digester"]

DIGEST_CHARS = 32  # hex characters: 128 bits, the index's column width
_LABEL = b"govex/verify/v1/"


class Digester:
    """Digests under one subscription's key."""

    def __init__(self, key: bytes) -> None:
        block = (key if len(key) <= 64 else hashlib.sha256(key).digest()).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def field_digests(self, values: Any, rule: FieldRule) -> list[str | None]:
        """One digest per value of field `rule.name` (None for a null)."""
        prefix = _LABEL + b"field\0" + rule.name.encode("utf-8") + b"\0"
        return self._digests(canonical_text(values, rule), prefix)

    def key_digests(self, keys: pa.Table, rules: Sequence[FieldRule]) -> list[str]:
        """One digest per row of `keys` (the resource's key columns, named as `rules`)."""
        parts = []
        for rule in rules:
            text = canonical_text(keys.column(rule.name), rule)
            length = pc.cast(pc.binary_length(text), pa.string())
            parts.append(pc.fill_null(pc.binary_join_element_wise(length, text, ":"), "-"))
        joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "")
        digests = self._digests(joined, _LABEL + b"key\0")
        return [d or "" for d in digests]  # a key part is never null after fill_null

    def field_digests_of(self, texts: Sequence[str], rule: FieldRule) -> list[str]:
        """`field_digests` of canonical texts already made (`canonical.plain_text`): a few
        values, without Arrow."""
        prefix = _LABEL + b"field\0" + rule.name.encode("utf-8") + b"\0"
        return [self._digest(prefix, text.encode("utf-8")) for text in texts]

    def key_digests_of(self, keys: Sequence[Sequence[str]]) -> list[str]:
        """`key_digests` of keys given as their parts' canonical texts, in the rules' order."""
        prefix = _LABEL + b"key\0"
        digests = []
        for parts in keys:
            encoded = [part.encode("utf-8") for part in parts]
            message = b"".join(b"%d:%b" % (len(part), part) for part in encoded)
            digests.append(self._digest(prefix, message))
        return digests

    def _digest(self, prefix: bytes, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(prefix + message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:DIGEST_CHARS]

    def _digests(self, text: Any, prefix: bytes) -> list[str | None]:
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        if len(text) == 0:
            return []
        inner = self._inner.copy()
        inner.update(prefix)
        outer = self._outer
        encoded = text.cast(pa.binary()).dictionary_encode()

        def one(value: bytes) -> str:
            i = inner.copy()
            i.update(value)
            o = outer.copy()
            o.update(i.digest())
            return o.hexdigest()[:DIGEST_CHARS]

        distinct = [one(v) for v in encoded.dictionary.to_pylist()]
        return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]
