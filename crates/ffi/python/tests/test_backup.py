"""Backups through the Python package: against a throwaway PostgreSQL from vigia-sandbox."""

import json
import os
import pathlib
import subprocess
import time
import zipfile

import pytest

import vigia

WORKSPACE = pathlib.Path(__file__).resolve().parents[4]


def binary(env, name):
    path = os.environ.get(env, str(WORKSPACE / "target" / "debug" / name))
    assert os.path.exists(path), f"{path} missing: run `cargo build --workspace --all-features`"
    return path


@pytest.fixture
def postgres():
    server = subprocess.Popen(
        [binary("VIGIA_SANDBOX", "vigia-sandbox"), "serve", "postgres"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    info = json.loads(server.stdout.readline())
    psql(info, "postgres", "CREATE DATABASE odoo")
    psql(info, "odoo", "CREATE TABLE ir_attachment (id int, store_fname varchar); "
                       "CREATE TABLE res_partner AS SELECT g AS id FROM generate_series(1, 30) g")
    yield info
    server.stdin.close()
    server.wait(timeout=30)


def psql(info, db, sql):
    """Runs ``sql`` in ``db`` and returns its unaligned output."""
    return subprocess.run(
        [os.path.join(info["bin_dir"], "psql"), "-X", "-q", "-A", "-t", "-h", info["host"],
         "-U", "postgres", "-d", db, "-c", sql], check=True, capture_output=True, text=True,
    ).stdout.strip()


@pytest.fixture
def config(tmp_path, postgres):
    subprocess.run([binary("VIGIA_BIN", "vigia"), "init", "--dir", str(tmp_path)], check=True,
                   capture_output=True)
    path = tmp_path / "vigia.toml"
    text = path.read_text()
    text = text.replace('host = "localhost"', f'host = "{postgres["host"]}"')
    text = text.replace('user = "odoo"', f'user = "postgres"\nbin-dir = "{postgres["bin_dir"]}"')
    path.write_text(text)
    return path


def cli(config, *args):
    done = subprocess.run([binary("VIGIA_BIN", "vigia"), "--config", str(config), "--json", *args],
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def test_backup_list_and_show(config):
    progress = []
    with vigia.Context(config.read_text(), base_dir=str(config.parent), progress=progress.append) as ctx:
        taken = ctx.backup()
        assert taken["ok"], taken
        assert taken["command"] == "backup"
        assert taken["data"]["database"] == "odoo"
        listed = ctx.backup_list()
        shown = ctx.backup_show(taken["data"]["id"])
    assert [p["phase"] for p in progress if p["event"] == "phase_started"] == [
        "snapshot", "dump and filestore", "manifest and index"]
    assert listed == cli(config, "backup", "list")
    assert listed["data"]["backups"][0]["id"] == taken["data"]["id"]
    assert shown == cli(config, "backup", "show", taken["data"]["id"])
    assert shown["data"]["manifest"]["row_counts"]["public.res_partner"] == 30


def test_backup_show_refuses_a_bad_id(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        result = ctx.backup_show("not-an-id")
    assert result["error"]["kind"] == "invalid_input"
    assert result["error"]["code"] == 11


def test_backup_with_unknown_args_is_invalid_input(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        result = ctx._call(ctx._lib.vigia_backup, {"allow_missing": True})
    assert result["error"]["code"] == 11
    assert "allow_missing" in result["error"]["message"]


def test_verify_at_every_level_and_a_corrupt_object(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        taken = ctx.backup()
        assert taken["ok"], taken
        for level in ("quick", "full", "drill"):
            result = ctx.verify(level=level)
            assert result["ok"], result
            assert result["data"]["results"][0]["level"] == level
            assert result["data"]["results"][0]["id"] == taken["data"]["id"]
        assert ctx.backup_list()["data"]["backups"][0]["verified"]["level"] == "drill"
        # Format 2 (the default): the first data stream holds rows.
        dump = config.parent / "backups" / "backups" / taken["data"]["id"] / "data-0.age"
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 1
        dump.write_bytes(bytes(data))
        failed = ctx.verify(id=taken["data"]["id"])
        both = ctx.verify(id=taken["data"]["id"], all=True)
    assert failed["ok"] is False
    assert failed["error"]["code"] == 17
    problem = failed["data"]["results"][0]["problems"][0]
    assert problem["object"] == f"backups/{taken['data']['id']}/data-0.age"
    assert problem["problem"].startswith("sha256 mismatch")
    from_cli = cli(config, "verify", taken["data"]["id"])
    assert from_cli["error"]["code"] == 17
    assert from_cli["data"]["results"][0]["problems"] == failed["data"]["results"][0]["problems"]
    assert both["error"]["kind"] == "invalid_input"


def test_prune_plans_then_applies(config):
    config.write_text(config.read_text() + "\n[backup.retention]\nkeep-last = 1\nkeep-daily = 0\n"
                      "keep-weekly = 0\nkeep-monthly = 0\n")
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        ids = [ctx.backup()["data"]["id"] for _ in range(2)]
        plan = ctx.prune(dry_run=True)
        assert plan["ok"], plan
        assert plan["data"]["applied"] is False
        assert plan["data"]["delete"] == [ids[0]]
        assert plan["data"]["keep"] == [ids[1]]
        assert len(ctx.backup_list()["data"]["backups"]) == 2
        applied = ctx.prune()
        assert applied["data"]["applied"] is True
        assert [b["id"] for b in ctx.backup_list()["data"]["backups"]] == [ids[1]]
    assert cli(config, "prune", "--dry-run")["data"]["delete"] == []


def test_demo_backs_up_drills_and_backs_up_again(tmp_path):
    result = vigia.demo(dir=tmp_path / "demo")
    assert result["ok"], result
    data = result["data"]
    assert data["first_backup"]["filestore"]["new_files"] == 200
    assert data["drill"]["ok"] is True and data["drill"]["level"] == "drill"
    assert data["second_backup"]["filestore"]["new_bytes"] == 0
    listed = cli(pathlib.Path(data["config"]), "backup", "list")
    assert [b["id"] for b in listed["data"]["backups"]] == [
        data["first_backup"]["id"], data["second_backup"]["id"]]


def test_restore_beside_the_live_database(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        taken = ctx.backup()
        restored = ctx.restore(taken["data"]["id"], "odoo_copy", jobs=1)
        again = ctx.restore(taken["data"]["id"], "odoo_copy")
    assert restored["ok"], restored
    assert restored["data"]["target_database"] == "odoo_copy"
    assert restored["data"]["swapped"] is False
    assert [p["name"] for p in restored["data"]["phases"]][0] == "check the backup"
    assert again["error"]["kind"] == "invalid_input"


def test_restore_dry_run_returns_the_plan(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        taken = ctx.backup()
        planned = ctx.restore(taken["data"]["id"], dry_run=True)
        listed = ctx.restore_cleanup()
    assert planned["ok"], planned
    plan = planned["data"]["plan"]
    assert plan["source"] == {"backup": taken["data"]["id"]}
    assert plan["copy"].startswith("vigia_restore_")
    assert plan["aside"].startswith("odoo_pre_restore_")
    assert listed["data"]["databases"] == []


def test_restore_in_place_keeps_the_live_database_aside(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        taken = ctx.backup()
        swapped = ctx.restore(taken["data"]["id"])
        refused = ctx.restore(taken["data"]["id"], target_db="x", confirm="odoo")
    assert swapped["ok"], swapped
    assert swapped["data"]["swapped"] is True
    assert swapped["data"]["target_database"] == "odoo"
    assert swapped["data"]["aside"]["database"].startswith("odoo_pre_restore_")
    assert refused["ok"] is False


def test_restore_in_place_is_refused_while_odoo_is_connected_unless_forced(config, postgres):
    worker = subprocess.Popen(
        [os.path.join(postgres["bin_dir"], "psql"), "-X", "-q", "-h", postgres["host"],
         "-U", "postgres", "-d", "odoo", "-c", "SELECT pg_sleep(60)"],
        env={**os.environ, "PGAPPNAME": "odoo-worker"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
            taken = ctx.backup()
            for _ in range(100):
                if psql(postgres, "postgres", "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'odoo-worker'") == "1":
                    break
                time.sleep(0.05)
            refused = ctx.restore(taken["data"]["id"])
            forced = ctx.restore(taken["data"]["id"], force_sessions=True)
    finally:
        worker.wait(timeout=30)
    assert refused["error"]["kind"] == "invalid_input", refused
    assert "odoo-worker" in refused["error"]["message"]
    assert forced["ok"], forced
    assert forced["data"]["swapped"] is True
    assert worker.returncode != 0, "the session was ended"


def test_restore_resume_with_no_interrupted_swap_does_nothing(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        resumed = ctx.restore(resume=True)
    assert resumed["ok"], resumed
    assert resumed["data"] == {"journal": False, "recovered": None}
    assert resumed == cli(config, "restore", "--resume")


def test_restore_cleanup_lists_then_removes_the_aside_copy(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        taken = ctx.backup()
        swapped = ctx.restore(taken["data"]["id"])
        listed = ctx.restore_cleanup()
        applied = ctx.restore_cleanup(apply=True)
        after = ctx.restore_cleanup()
    assert listed["data"]["databases"] == [swapped["data"]["aside"]["database"]]
    assert applied["data"]["applied"] is True
    assert after["data"]["databases"] == []


def test_restore_neutralized_copy_sends_nothing(config, postgres):
    psql(postgres, "odoo",
         "CREATE TABLE ir_cron (id int, active boolean); INSERT INTO ir_cron VALUES (1, true); "
         "CREATE TABLE ir_config_parameter (key varchar UNIQUE, value text); "
         "INSERT INTO ir_config_parameter VALUES ('database.uuid', 'live-uuid')")
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        taken = ctx.backup()
        copy = ctx.restore(taken["data"]["id"], "odoo_staging", neutralize=True)
    assert copy["ok"], copy
    assert [p["name"] for p in copy["data"]["phases"]][-1] == "neutralize"
    assert psql(postgres, "odoo_staging", "SELECT bool_or(active) FROM ir_cron") == "f"
    assert psql(postgres, "odoo_staging", "SELECT value FROM ir_config_parameter "
                "WHERE key = 'database.is_neutralized'") == "True"
    assert psql(postgres, "odoo", "SELECT bool_and(active) FROM ir_cron") == "t"


def test_restore_from_an_odoo_zip(config, postgres, tmp_path):
    folder = tmp_path / "odoo_dump"
    folder.mkdir()
    subprocess.run([os.path.join(postgres["bin_dir"], "pg_dump"), "--no-owner", "-h",
                    postgres["host"], "-U", "postgres", "-d", "odoo",
                    f"--file={folder / 'dump.sql'}"], check=True)
    (folder / "manifest.json").write_text(json.dumps(
        {"odoo_dump": "1", "db_name": "odoo", "version": "19.0", "major_version": "19.0",
         "pg_version": "16.0", "modules": {}}))
    archive = tmp_path / "odoo.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in ("dump.sql", "manifest.json"):
            z.write(folder / name, name)
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        copy = ctx.restore(from_odoo_zip=archive, target_db="odoo_from_zip")
        neither = ctx.restore(target_db="x")
    assert copy["ok"], copy
    assert copy["data"]["id"] is None
    assert copy["data"]["odoo_zip"]["version"] == "19.0"
    assert psql(postgres, "odoo_from_zip", "SELECT count(*) FROM res_partner") == "30"
    assert neither["error"]["kind"] == "invalid_input"


def test_health_reports_each_check_and_fails_on_critical(config):
    with vigia.Context(config.read_text(), base_dir=str(config.parent)) as ctx:
        before = ctx.health(only=["postgres", "backup.age"])
        ctx.backup()
        after = ctx.health(only=["postgres", "backup.age"])
        bad = ctx.health(only=["odoo"])
    assert before["ok"] is False and before["error"]["kind"] == "check_failed", before
    checks = {c["name"]: c for c in before["data"]["checks"]}
    assert checks["postgres"]["status"] == "ok", checks
    assert checks["backup.age"]["status"] == "critical"
    assert after["ok"], after
    assert [c["status"] for c in after["data"]["checks"]] == ["ok", "ok"]
    assert after["data"]["alerts"] == [] and after["data"]["silenced"] is None
    assert bad["error"]["kind"] == "invalid_input"
