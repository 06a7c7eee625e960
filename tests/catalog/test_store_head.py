"""The store's head revision read without Alembic is the one Alembic itself reads."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from exchange.store import engine


def test_the_textual_head_is_alembics_head() -> None:
    textual = engine._linear_head()
    assert textual is not None
    assert textual == ScriptDirectory.from_config(engine._script_config()).get_current_head()
