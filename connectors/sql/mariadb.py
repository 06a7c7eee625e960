"""MariaDB (and MySQL) through PyMySQL.

Reading: one unbuffered query (server-side streaming, `SSCursor`) fetched `batch_rows` at a
time. PyMySQL's per-value Python converters are switched off for the read, so every value
arrives as text and Arrow casts whole columns at once (much faster than building datetimes in
Python). The session time zone is UTC, so TIMESTAMP columns come back in UTC and DATETIME
values are UTC by govex convention.

Writing: multi-row `INSERT … VALUES (…), (…) [ON DUPLICATE KEY UPDATE …]` of up to ~1 MB,
rendered by Arrow a column at a time (`mariadb_values`; PyMySQL's executemany, a value at a
time, where a column has no literal form there). Sessions run in strict SQL mode so that a NULL in
a NOT NULL column or an oversized value fails instead of being silently coerced. New tables are
InnoDB, utf8mb4 with a binary collation: keys compare exactly ('a' ≠ 'A'), as in the source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from govex.errors import DeclarationError, FatalError, TransientError

from ..arrowutil import pc
from ..base import Capabilities
from ..naming import SQL_IDENTIFIER_LENGTH
from .dialects import ColumnInfo, Dialect, TableInfo, simple_ddl
from .mariadb_values import values_bodies

# PyMySQL FIELD_TYPE codes → wire Arrow types (texts cast by Arrow).
_FIELD_TYPES: dict[int, pa.DataType] = {
    1: pa.int64(), 2: pa.int64(), 3: pa.int64(), 8: pa.int64(), 9: pa.int64(), 13: pa.int64(),
    4: pa.float64(), 5: pa.float64(),
    10: pa.date32(), 14: pa.date32(),
    7: pa.timestamp("us"), 12: pa.timestamp("us"),
}
_TINY, _DECIMALS, _BINARY_CHARSET, _UNSIGNED = 1, (0, 246), 63, 32
_BLOBS = (249, 250, 251, 252, 253, 254)

_FAMILIES = {
    "tinyint": "integer", "smallint": "integer", "mediumint": "integer", "int": "integer",
    "bigint": "integer", "year": "integer",
    "float": "float", "double": "float", "decimal": "decimal",
    "char": "string", "varchar": "string", "tinytext": "string", "text": "string",
    "mediumtext": "string", "longtext": "string", "enum": "string",
    "date": "date", "datetime": "timestamp", "timestamp": "timestamp",
    "binary": "binary", "varbinary": "binary", "blob": "binary", "mediumblob": "binary",
    "longblob": "binary", "tinyblob": "binary",
}


# The PyMySQL options a connection URL's query may set, by how their text is read.
_TEXT_OPTIONS = frozenset({"charset", "collation", "init_command", "unix_socket",
                           "program_name", "bind_address", "ssl_ca", "ssl_cert", "ssl_key",
                           "ssl_key_password"})
_NUMBER_OPTIONS = frozenset({"connect_timeout", "read_timeout", "write_timeout",
                             "max_allowed_packet"})
_SWITCH_OPTIONS = frozenset({"ssl_disabled", "ssl_verify_cert", "ssl_verify_identity",
                             "local_infile"})
_SWITCHES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _options(given: dict[str, str], where: str) -> dict[str, Any]:
    """The connection URL's query as PyMySQL's keyword arguments, typed (text reached PyMySQL
    as text: `connect_timeout=5` failed inside it, `ssl_verify_cert=false` read as true).
    DeclarationError naming an option govex does not pass, a value that is not of its kind,
    or `local_infile` on: govex never sends client files, and with it on, a department's
    server could read the worker's."""
    options: dict[str, Any] = {"charset": "utf8mb4"}
    for name, value in given.items():
        if name in _TEXT_OPTIONS:
            options[name] = value
        elif name in _NUMBER_OPTIONS:
            if not value.isdigit() or int(value) < 1:
                msg = (f"{where}: connection URL option '{name}' must be a whole number of at "
                       f"least 1, not '{value}'")
                raise DeclarationError(msg, field=name, value=value)
            options[name] = int(value)
        elif name in _SWITCH_OPTIONS:
            switch = _SWITCHES.get(value.lower())
            if switch is None:
                msg = (f"{where}: connection URL option '{name}' must be true or false, "
                       f"not '{value}'")
                raise DeclarationError(msg, field=name, value=value)
            if name == "local_infile" and switch:
                msg = (f"{where}: connection URL option 'local_infile' must stay off: govex "
                       "never sends client files, and with it on the database server could "
                       "read this worker's files")
                raise DeclarationError(msg, field=name, value=value)
            if name != "local_infile":
                options[name] = switch
        else:
            known = sorted(_TEXT_OPTIONS | _NUMBER_OPTIONS | _SWITCH_OPTIONS)
            msg = (f"{where}: connection URL option '{name}' is not one govex passes to "
                   f"MariaDB (known: {', '.join(known)})")
            raise DeclarationError(msg, field=name, value=value)
    return options


class MariaDBDialect(Dialect):
    capabilities = Capabilities(
        dialect="mariadb",
        max_identifier_length=SQL_IDENTIFIER_LENGTH["mariadb"],
        native_upsert="on_duplicate_key",
        bulk_load="executemany",
        transactional_ddl=False,
        row_value_comparison=True,
    )
    quote_char = "`"
    booleans_are_integers = True
    begin_sql = "START TRANSACTION"
    table_suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    stage_sql = "CREATE TEMPORARY TABLE {stage} LIKE {table}"
    drop_stage_sql = "DROP TEMPORARY TABLE IF EXISTS {stage}"

    def connect(self) -> Any:
        import pymysql
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        options = _options({k: v for k, v in url.query.items() if isinstance(v, str)},
                           self.where)
        try:
            conn = pymysql.connect(
                host=url.host or "localhost", port=url.port or 3306, user=url.username or "",
                password=url.password or "", database=url.database, autocommit=True, **options,
            )
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
                cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
        except pymysql.err.OperationalError as error:
            msg = f"cannot connect to {self.where}: {error}"
            raise TransientError(msg) from error
        return conn

    def error_class(self, error: Exception) -> type[Exception]:
        import pymysql

        # 1205 lock wait timeout, 1213 deadlock, 2006/2013 connection lost: a retry may help.
        transient = {1205, 1213, 2003, 2006, 2013}
        code = error.args[0] if error.args and isinstance(error.args[0], int) else None
        return TransientError if isinstance(error, pymysql.err.OperationalError) and (
            code in transient) else FatalError

    def ddl_type(self, type_: pa.DataType, in_key: bool) -> str:
        if pa.types.is_timestamp(type_):
            return "DATETIME(6)"  # UTC by convention; TIMESTAMP would end in 2038
        if pa.types.is_decimal(type_):
            return f"DECIMAL({min(type_.precision, 65)},{type_.scale})"
        if pa.types.is_integer(type_):
            return "BIGINT"
        # Key columns need a bounded length for the index: 255 utf8mb4 chars = 1020 bytes,
        # under InnoDB's 3072-byte limit even for a three-column text key.
        text = "VARCHAR(255)" if in_key else "LONGTEXT"
        binary = "VARBINARY(255)" if in_key else "LONGBLOB"
        return simple_ddl(type_, "DOUBLE", text, "BOOLEAN", binary)

    def reflect(self, conn: Any, table: str) -> TableInfo | None:
        schema, _, name = table.rpartition(".")
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT "
                "FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
                "ORDER BY ORDINAL_POSITION",
                (schema or None, name),
            )
            rows = cur.fetchall()
            if not rows:
                return None
            cur.execute(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
                "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
                "AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
                (schema or None, name),
            )
            key = tuple(r[0] for r in cur.fetchall())
        columns = {}
        for column, data_type, column_type, nullable, default in rows:
            family = _FAMILIES.get(str(data_type).lower(), "other")
            if str(column_type).lower().startswith("tinyint(1)"):
                family = "boolean"
            # MariaDB reports "no default" on a nullable column as the text NULL.
            has_default = default is not None and not (nullable == "YES" and default == "NULL")
            columns[column] = ColumnInfo(column, family, str(column_type), nullable == "YES",
                                         has_default)
        return TableInfo(columns, key)

    def describe(self, conn: Any, relation: str) -> list[tuple[str, pa.DataType]]:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {relation} LIMIT 0")
            fields = cur._result.fields  # noqa: SLF001 - PyMySQL exposes charset/flags only here
        out = []
        for field in fields:
            code = field.type_code
            type_ = _FIELD_TYPES.get(code, pa.string())
            if code == _TINY and field.length == 1:
                type_ = pa.bool_()  # TINYINT(1) is MariaDB's BOOLEAN
            elif code in _DECIMALS:
                signs = (0 if field.flags & _UNSIGNED else 1) + (1 if field.scale else 0)
                precision = field.length - signs
                type_ = (pa.decimal128(precision, field.scale)
                         if 0 < precision <= 38 else pa.float64())
            elif code in _BLOBS and field.charsetnr == _BINARY_CHARSET:
                type_ = pa.binary()
            out.append((field.name, type_))
        return out

    def stream(
        self, conn: Any, sql: str, params: Sequence[Any], schema: pa.Schema, batch_rows: int
    ) -> Iterator[pa.Table]:
        import pymysql

        decoders = conn.decoders
        conn.decoders = {}  # every value as str (bytes for binary): Arrow converts columns
        cur = conn.cursor(pymysql.cursors.SSCursor)
        finished = False
        try:
            cur.execute(sql, tuple(params))
            while True:
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    finished = True
                    break
                yield _columns(rows, schema)
        finally:
            conn.decoders = decoders
            if finished:
                cur.close()
            else:
                # Closing an unfinished unbuffered cursor would read the rest of the result;
                # dropping the connection is cheaper (each read has its own connection). The
                # result must forget it is unfinished, or its __del__ reads a closed socket.
                result = getattr(cur, "_result", None)
                if result is not None:
                    result.unbuffered_active = False
                conn.close()

    def bind(self, value: Any, type_: pa.DataType) -> Any:
        bound = super().bind(value, type_)
        if pa.types.is_timestamp(type_):
            return self.datetime_param(bound)
        return bound

    def upsert_sql(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        cols = ", ".join(self.quote(c) for c in columns)
        return (
            f"INSERT INTO {self.quote_table(table)} ({cols}) "
            f"VALUES ({self.param_list(len(columns))}) {_on_duplicate(self, columns, key)}"
        )

    def insert(self, cur: Any, table: str, batch: pa.Table) -> None:
        if not self._values(cur, table, batch, ""):
            super().insert(cur, table, batch)

    def upsert(self, cur: Any, table: str, batch: pa.Table, key: Sequence[str]) -> None:
        if not self._values(cur, table, batch, " " + _on_duplicate(self, batch.column_names, key)):
            super().upsert(cur, table, batch, key)

    def _values(self, cur: Any, table: str, batch: pa.Table, suffix: str) -> bool:
        """Write `batch` as Arrow-rendered multi-row INSERTs (`mariadb_values`); False when
        a column has no literal form there, and nothing was written."""
        from pymysql.constants import SERVER_STATUS

        # The server reports the session's escaping in every reply's status flags.
        status = cur.connection.server_status
        no_backslash = bool(status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)
        bodies = values_bodies(self.driver_columns(batch), backslash_escapes=not no_backslash)
        if bodies is None:
            return False
        cols = ", ".join(self.quote(c) for c in batch.column_names)
        head = f"INSERT INTO {self.quote_table(table)} ({cols}) VALUES "
        for body in bodies:
            cur.execute(head + body + suffix)  # no parameters: PyMySQL leaves the text as is
        return True


def _on_duplicate(dialect: Dialect, columns: Sequence[str], key: Sequence[str]) -> str:
    rest = [c for c in columns if c not in key] or list(key[:1])
    update = ", ".join(f"{dialect.quote(c)} = VALUES({dialect.quote(c)})" for c in rest)
    return f"ON DUPLICATE KEY UPDATE {update}"


def _columns(rows: Sequence[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    arrays: list[Any] = []
    for values, field in zip(zip(*rows, strict=True), schema, strict=True):
        if pa.types.is_binary(field.type):
            arrays.append(pa.array(values, pa.binary()))
            continue
        text = pa.array(values, pa.string())
        if pa.types.is_date(field.type) or pa.types.is_timestamp(field.type):
            # Zero dates ('0000-00-00') are MariaDB's "no date": null, not an error.
            text = pc.if_else(pc.starts_with(text, "0000-00-00"), None, text)
        arrays.append(text if field.type == pa.string() else pc.cast(text, field.type))
    return pa.table(arrays, schema=schema)
