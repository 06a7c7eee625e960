"""Usable, not visible (可用不可见): verification instead of copies.

A `delivery: verify` subscription receives nothing; a run keeps its verification index
(`tables.verify_index`) and the consumer asks whether values it holds match the source.
"""
