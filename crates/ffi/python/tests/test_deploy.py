"""Deploys through the Python package: releases on disk, the local runtime running the
sandbox's Odoo-like server from the current release, a real PostgreSQL
(``vigia-sandbox serve postgres``); a plan, a deploy with an upgrade, a rollback of it, and
the history."""

import json
import os
import socket
import stat

import vigia
from test_backup import binary, postgres, psql  # noqa: F401 (pytest fixture)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def release(root, name, version, info, port):
    """A release whose module is at ``version``, whose server answers on ``port`` and whose
    upgrade sets the module's version in the database."""
    folder = root / "releases" / name
    module = folder / "addons" / "sale_cr"
    module.mkdir(parents=True)
    (module / "__manifest__.py").write_text(f"{{'name': 'Sale CR', 'version': '{version}'}}")
    (module / "models.py").write_text(f"VERSION = {version!r}\n")
    socket_path = os.path.join(info["host"], f".s.PGSQL.{info['port']}")
    script(folder / "run", f"exec {binary('VIGIA_SANDBOX', 'vigia-sandbox')} serve odoo "
                           f"--port {port} --db-socket {socket_path}\n")
    psql_bin = os.path.join(info["bin_dir"], "psql")
    script(folder / "upgrade",
           f"{psql_bin} -X -q -h {info['host']} -p {info['port']} -U {info['user']} -d \"$1\" "
           f"-c \"UPDATE ir_module_module SET latest_version = '19.0.{version}' "
           f"WHERE name = 'sale_cr'\"\n")


def test_plan_deploy_rollback_and_history(tmp_path, postgres):  # noqa: F811
    psql(postgres, "odoo",
         "CREATE TABLE ir_module_module (name varchar UNIQUE, state varchar, "
         "latest_version varchar); INSERT INTO ir_module_module VALUES "
         "('base', 'installed', '19.0.1.3'), ('sale_cr', 'installed', '19.0.1.0'); "
         "CREATE TABLE ir_config_parameter (key varchar UNIQUE, value text)")
    port = free_port()
    root = tmp_path / "srv"
    release(root, "v1", "1.0", postgres, port)
    release(root, "v2", "1.1", postgres, port)
    (root / "current").symlink_to("releases/v1")
    text = (f'state-dir = "{tmp_path / "state"}"\n[odoo]\ndatabase = "odoo"\n'
            f'internal-url = "http://127.0.0.1:{port}"\n'
            f'upgrade-command = "{{release}}/upgrade {{database}}"\n'
            f'[postgres]\nhost = "{postgres["host"]}"\nport = {postgres["port"]}\n'
            f'user = "{postgres["user"]}"\nbin-dir = "{postgres["bin_dir"]}"\n'
            f'[runtime]\nkind = "local"\nodoo-command = "{{release}}/run"\n'
            f'[deploy]\nroot = "{root}"\ngate = ["odoo.internal"]\ngate-timeout = "10s"\n'
            'observe = "0s"\n')
    try:
        with vigia.Context(text) as ctx:
            plan = ctx.deploy("v2", dry_run=True)
            deployed = ctx.deploy("v2")
            upgraded = psql(postgres, "odoo", "SELECT latest_version FROM ir_module_module "
                                              "WHERE name = 'sale_cr'")
            rolled = ctx.rollback()
            history = ctx.deploy_history()
            bad = ctx.deploy("../v1")
            nothing = ctx.deploy(resume=True)
    finally:
        pid_file = tmp_path / "state" / "run" / "odoo.pid"
        if pid_file.exists():
            os.killpg(int(pid_file.read_text()), 9)
    assert plan["ok"] and plan["data"]["changes"]["upgrade"] == ["sale_cr"], plan
    assert os.readlink(root / "current") == "releases/v1", "rolled back to v1"
    assert deployed["ok"] and deployed["data"]["outcome"] == "deployed", deployed
    assert upgraded == "19.0.1.1"
    assert rolled["ok"] and rolled["data"]["rollback"]["swapped_back"], rolled
    assert psql(postgres, "odoo", "SELECT latest_version FROM ir_module_module "
                                  "WHERE name = 'sale_cr'") == "19.0.1.0"
    outcomes = [d["outcome"] for d in history["data"]["deploys"]]
    assert outcomes == ["deployed", "rolled_back"], json.dumps(history)
    assert bad["error"]["kind"] == "invalid_input", bad
    assert "nothing to resume" in nothing["error"]["message"], nothing
