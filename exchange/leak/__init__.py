"""Leak tracing (数据指纹溯源): which subscription a leaked file came from.

- `identify`: `govex leak identify`, the subscriptions of a resource ranked by the share of
  the file's rows whose fingerprint govex delivered to them (`Identified`, `Suspect`);
- `files`: the leaked file (CSV or JSON Lines) read as text columns, hostile input refused in
  one sentence;
- `values`: file text typed as each subscription's target received it, and the shape masked
  values take;
- `mapping`: which file column holds which field (by name, then a bounded search over the
  renamed ones).
"""

from exchange.leak.identify import SAMPLE_ROWS, Identified, Suspect, identify

__all__ = ["SAMPLE_ROWS", "Identified", "Suspect", "identify"]
