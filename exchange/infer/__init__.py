"""Drafting declarations from what already exists: `contract` drafts a contract from a live
table (types, nullability, lengths, suggested PII categories and national checks)."""

from exchange.infer.contract import DEFAULT_SAMPLE_ROWS, infer_contract

__all__ = ["DEFAULT_SAMPLE_ROWS", "infer_contract"]
