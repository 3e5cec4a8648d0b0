"""The Hacienda check through the Python package, against the sandbox's Hacienda-like HTTPS
server (``vigia-sandbox serve hacienda``): a pass, a refused login, and the password in no
answer."""

import json
import subprocess

import pytest

import vigia
from test_backup import binary


def serve(mode):
    server = subprocess.Popen([binary("VIGIA_SANDBOX", "vigia-sandbox"), "serve", "hacienda",
                               "--mode", mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    return server, json.loads(server.stdout.readline())


@pytest.fixture
def hacienda():
    servers = []

    def start(mode):
        server, info = serve(mode)
        servers.append(server)
        return info
    yield start
    for server in servers:
        server.stdin.close()
        server.wait(timeout=10)


def config(tmp_path, info, monkeypatch):
    monkeypatch.setenv("VIGIA_TEST_HACIENDA_PASSWORD", info["password"])
    return (f'state-dir = "{tmp_path / "state"}"\n[odoo]\ndatabase = "odoo"\n'
            f'[health]\nca-file = "{info["ca_file"]}"\n'
            f'[hacienda]\nenvironment = "sandbox"\nusername = "{info["username"]}"\n'
            f'password = "env:VIGIA_TEST_HACIENDA_PASSWORD"\n'
            f'idp-url = "{info["idp_url"]}"\napi-url = "{info["api_url"]}"\n')


def test_hacienda_passes_and_a_refused_login_is_critical(tmp_path, hacienda, monkeypatch):
    good = hacienda("normal")
    with vigia.Context(config(tmp_path / "good", good, monkeypatch)) as ctx:
        passed = ctx.health(only=["hacienda"])
    assert passed["ok"], passed
    [check] = passed["data"]["checks"]
    assert check["name"] == "hacienda:config" and check["status"] == "ok", check
    assert good["password"] not in json.dumps(passed)

    refusing = hacienda("refuse")
    with vigia.Context(config(tmp_path / "refused", refusing, monkeypatch)) as ctx:
        refused = ctx.health(only=["hacienda:config"])
    assert refused["error"]["kind"] == "check_failed", refused
    [check] = refused["data"]["checks"]
    assert check["status"] == "critical", check
    assert refusing["password"] not in json.dumps(refused)
