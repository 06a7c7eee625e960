"""An error is one line whatever it quotes: a hostile name cannot split it or forge a second
line in a terminal, a log or a JSON answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.yamlio import read_yaml
from govex.errors import DeclarationError, DeclarationErrors, one_line


def test_control_characters_are_shown_escaped() -> None:
    assert one_line("a\nb\r\tc\x00\x1b[31m") == "a\\nb\\r\\tc\\x00\\x1b[31m"
    assert one_line("居民身份 ok") == "居民身份 ok"


def test_a_declaration_error_quoting_a_line_break_is_one_line() -> None:
    error = DeclarationError("unknown key 'a\nb'", file="connections.yaml", field="a\nb")
    assert error.render() == "connections.yaml: field 'a\\nb': unknown key 'a\\nb'"
    several = DeclarationErrors([error, DeclarationError("second")])
    assert str(several).splitlines() == [error.render(), "second"]


def test_a_control_character_in_yaml_is_a_one_line_refusal(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: \x00\n")
    with pytest.raises(DeclarationError) as caught:
        read_yaml(path)
    assert "\n" not in str(caught.value)
    assert "malformed YAML" in str(caught.value)
