"""SQL databases (PostgreSQL, MariaDB, SQLite) as sources and sinks.

Shared code (source.py, sink.py, ledger.py) speaks DBAPI through a `Dialect` object; everything
that differs between databases lives in one dialect module each, as data or as an override.
"""
