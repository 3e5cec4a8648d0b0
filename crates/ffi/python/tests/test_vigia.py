"""The Python package against the real library and, for comparison, the real CLI."""

import json
import os
import pathlib
import subprocess

import pytest

import vigia

WORKSPACE = pathlib.Path(__file__).resolve().parents[4]


def vigia_bin():
    path = os.environ.get("VIGIA_BIN", str(WORKSPACE / "target" / "debug" / "vigia"))
    assert os.path.exists(path), f"{path} missing: build it with `cargo build` or set VIGIA_BIN"
    return path


def cli_json(*args):
    done = subprocess.run([vigia_bin(), "--json", *args], capture_output=True, text=True)
    return done.returncode, json.loads(done.stdout)


VALID = """
default-env = "production"
[odoo]
database = "odoo"
[postgres]
password = "env:VIGIA_PYTEST_SURELY_UNSET"
[environments.production]
production = true
[environments.staging]
odoo.database = "odoo_staging"
"""


def test_version_is_the_crate_version():
    done = subprocess.run([vigia_bin(), "--version"], capture_output=True, text=True)
    assert done.stdout.split() == ["vigia", vigia.version()]


def test_config_check_returns_the_same_envelope_as_the_cli(tmp_path):
    config = tmp_path / "vigia.toml"
    config.write_text(VALID)
    code, from_cli = cli_json("--config", str(config), "config", "check")
    from_ffi = vigia.config_check(VALID)
    assert code == 0
    assert from_ffi == from_cli
    assert from_ffi["data"]["environment"] == "production"
    assert from_ffi["data"]["warnings"][0]["key"] == "postgres.password"


def test_config_check_error_matches_the_cli_kind_line_and_key(tmp_path):
    text = VALID.replace('database = "odoo"', 'databse = "odoo"')
    config = tmp_path / "vigia.toml"
    config.write_text(text)
    code, from_cli = cli_json("--config", str(config), "config", "check")
    from_ffi = vigia.config_check(text)
    assert code == 10
    assert from_ffi["ok"] is False
    for field in ("kind", "code"):
        assert from_ffi["error"][field] == from_cli["error"][field]
    for field in ("line", "key"):
        assert from_ffi["error"]["context"][field] == from_cli["error"]["context"][field]
    assert from_ffi["error"]["context"] == {"line": 4, "key": "odoo.databse"}


def test_strict_turns_warnings_into_errors():
    result = vigia.config_check(VALID, strict=True)
    assert result["error"]["kind"] == "config"
    assert "VIGIA_PYTEST_SURELY_UNSET" in result["error"]["message"]


def test_config_check_of_another_environment():
    assert vigia.config_check(VALID, env="staging")["data"]["environment"] == "staging"
    result = vigia.config_check(VALID, env="nope")
    assert result["error"]["code"] == 10
    assert "not defined" in result["error"]["message"]


def test_context_shows_the_settings_of_its_environment(tmp_path):
    with vigia.Context(VALID, env="staging", base_dir=str(tmp_path)) as ctx:
        shown = ctx.config_show()
    assert shown["ok"] and shown["command"] == "config show"
    assert shown["data"]["environment"] == "staging"
    assert shown["data"]["production"] is False
    assert shown["data"]["settings"]["odoo"]["database"] == "odoo_staging"
    assert shown["data"]["settings"]["state-dir"] == "/var/lib/vigia"


def test_context_anchors_relative_paths_at_base_dir(tmp_path):
    text = '[odoo]\ndatabase = "odoo"\n[backup]\nstore = "local"\npath = "backups"\n'
    with vigia.Context(text, base_dir=str(tmp_path)) as ctx:
        assert ctx.config_show()["data"]["settings"]["backup"]["path"] == str(tmp_path / "backups")


def test_bad_config_raises_with_the_code_and_message():
    with pytest.raises(vigia.VigiaError) as err:
        vigia.Context('[odoo]\ndatabase = "odoo"\n[postgres]\npassword = "hunter2"\n')
    assert err.value.code == 10
    assert "env:NAME" in err.value.message
    assert "hunter2" not in err.value.message


def test_closed_context_refuses_calls_and_cancel_is_harmless():
    ctx = vigia.Context(VALID, progress=lambda event: None)
    ctx.cancel()
    assert ctx.config_show()["ok"], "a cancel without a running call does not stick"
    ctx.close()
    ctx.close()
    with pytest.raises(ValueError):
        ctx.config_show()
