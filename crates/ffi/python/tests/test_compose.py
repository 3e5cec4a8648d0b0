"""The compose runtime through the Python package, on the real engine DOCKER_HOST names
(scripts/test starts podman's Docker API): release images built by ``vigia-sandbox images``,
Odoo as the sandbox's Odoo-like server in its container, a real PostgreSQL. Health reads the
service from the engine; a deploy with an upgrade moves ``.env`` and the running image; a
rollback returns to the pinned image and the database before the upgrade."""

import json
import os
import subprocess

import pytest

import vigia
from test_backup import binary, config, postgres, psql  # noqa: F401 (pytest fixture)
from test_deploy import free_port


def compose(folder, *args):
    return subprocess.run(["docker", "compose", "-f", str(folder / "docker-compose.yml"),
                           "-p", folder.name, *args],
                          check=True, capture_output=True, text=True).stdout


def running_image(folder):
    ids = compose(folder, "ps", "-q", "odoo").split()
    if not ids:
        return None
    return subprocess.run(["docker", "inspect", "--format", "{{.Image}}", ids[0]],
                          check=True, capture_output=True, text=True).stdout.strip()


def image_id(reference):
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", reference],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def images(postgres):  # noqa: F811
    if "DOCKER_HOST" not in os.environ:
        pytest.fail("DOCKER_HOST is not set: the compose tests need the engine scripts/test "
                    "starts (podman, runc; Compose v2 as a Docker CLI plugin)")
    out = subprocess.run([binary("VIGIA_SANDBOX", "vigia-sandbox"), "images", "--pg-bin-dir",
                          postgres["bin_dir"]], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["images"]


def compose_folder(tmp_path, postgres, port, image):  # noqa: F811
    """A compose project whose Odoo is the sandbox's server in ``image`` on ``port``."""
    folder = tmp_path / f"vigia-py-{port}"
    folder.mkdir()
    (folder / "docker-compose.yml").write_text(
        "services:\n  odoo:\n    image: ${ODOO_IMAGE}\n    network_mode: host\n"
        "    command: [\"/release/run\"]\n    environment:\n"
        f"      ODOO_PORT: \"{port}\"\n      PG_SOCKET: /pg/.s.PGSQL.{postgres['port']}\n"
        f"      PGHOST: /pg\n      PGPORT: \"{postgres['port']}\"\n"
        f"      PGUSER: {postgres['user']}\n    volumes:\n      - {postgres['host']}:/pg\n")
    (folder / ".env").write_text(f"ODOO_IMAGE={image}\n")
    return folder


def runtime_section(folder):
    return (f'[runtime]\nkind = "compose"\ncompose-file = "{folder / "docker-compose.yml"}"\n'
            f'project = "{folder.name}"\nrelease-variable = "ODOO_IMAGE"\n'
            'stop-timeout = "2s"\nimage-addons = ["/addons"]\n')


def started_at(folder):
    ids = compose(folder, "ps", "-q", "odoo").split()
    return subprocess.run(["docker", "inspect", "--format", "{{.State.StartedAt}}", ids[0]],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_restore_in_place_restarts_the_odoo_container(tmp_path, config, postgres, images):  # noqa: F811
    port = free_port()
    folder = compose_folder(tmp_path, postgres, port, images[0])
    text = config.read_text().replace(
        "[odoo]\n", f'[odoo]\ninternal-url = "http://127.0.0.1:{port}"\n', 1)
    text += "\n" + runtime_section(folder)
    try:
        compose(folder, "up", "-d", "odoo")
        with vigia.Context(text, base_dir=str(config.parent)) as ctx:
            taken = ctx.backup()
            before = started_at(folder)
            psql(postgres, "odoo", "DELETE FROM res_partner WHERE id > 20")
            swapped = ctx.restore(taken["data"]["id"])
            after = started_at(folder)
            image = running_image(folder)
    finally:
        compose(folder, "down", "-t", "0")
    assert swapped["ok"] and swapped["data"]["swapped"], swapped
    assert psql(postgres, "odoo", "SELECT count(*) FROM res_partner") == "30"
    assert after != before, "stopped for the swap, then started"
    assert image == image_id(images[0])


def test_health_deploy_and_rollback_under_compose(tmp_path, postgres, images):  # noqa: F811
    psql(postgres, "odoo",
         "CREATE TABLE ir_module_module (name varchar UNIQUE, state varchar, "
         "latest_version varchar); INSERT INTO ir_module_module VALUES "
         "('base', 'installed', '19.0.1.3'), "
         "('l10n_cr_einvoice', 'installed', '19.0.2.1.0'); "
         "CREATE TABLE ir_config_parameter (key varchar UNIQUE, value text)")
    port = free_port()
    folder = compose_folder(tmp_path, postgres, port, images[0])
    (tmp_path / "srv").mkdir()
    text = (f'state-dir = "{tmp_path / "state"}"\n[odoo]\ndatabase = "odoo"\n'
            f'internal-url = "http://127.0.0.1:{port}"\n'
            'upgrade-command = "/release/upgrade {database}"\n'
            f'[postgres]\nhost = "{postgres["host"]}"\nport = {postgres["port"]}\n'
            f'user = "{postgres["user"]}"\nbin-dir = "{postgres["bin_dir"]}"\n'
            + runtime_section(folder) +
            f'[deploy]\nroot = "{tmp_path / "srv"}"\ngate = ["odoo.internal"]\n'
            'gate-timeout = "10s"\nobserve = "0s"\n')
    try:
        with vigia.Context(text) as ctx:
            stopped = ctx.health(only=["services.odoo"])
            compose(folder, "up", "-d", "odoo")
            running = ctx.health(only=["services.odoo"])
            deployed = ctx.deploy(images[1])
            env_after_deploy = (folder / ".env").read_text()
            image_after_deploy = running_image(folder)
            rolled = ctx.rollback()
            env_after_rollback = (folder / ".env").read_text()
            image_after_rollback = running_image(folder)
    finally:
        compose(folder, "down", "-t", "0")
    assert stopped["data"]["checks"][0]["status"] == "critical", stopped
    assert running["ok"] and running["data"]["checks"][0]["status"] == "ok", running
    assert deployed["ok"] and deployed["data"]["outcome"] == "deployed", deployed
    assert deployed["data"]["from"].startswith(
        f"localhost/vigia-rollback/{folder.name}/odoo:"), deployed
    assert env_after_deploy == f"ODOO_IMAGE={images[1]}\n"
    assert image_after_deploy == image_id(images[1])
    assert rolled["ok"] and rolled["data"]["rollback"]["swapped_back"], rolled
    assert env_after_rollback == f"ODOO_IMAGE={deployed['data']['from']}\n"
    assert image_after_rollback == image_id(images[0])
    assert psql(postgres, "odoo", "SELECT latest_version FROM ir_module_module "
                                  "WHERE name = 'l10n_cr_einvoice'") == "19.0.2.1.0"
