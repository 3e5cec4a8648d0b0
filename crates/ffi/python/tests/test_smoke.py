"""``vigia smoke`` through the Python package, against the sandbox's Odoo-like server on its
two ports (``vigia-sandbox serve odoo``): plain HTTP is no TLS, and only the evented port
takes a websocket."""

import json
import signal
import subprocess

import pytest

import vigia
from test_backup import binary


@pytest.fixture
def odoo():
    server = subprocess.Popen([binary("VIGIA_SANDBOX", "vigia-sandbox"), "serve", "odoo",
                               "--port", "0"], stdout=subprocess.PIPE, text=True)
    yield json.loads(server.stdout.readline())
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=10)


def by_name(envelope):
    return {c["name"]: c for c in envelope["data"]["checks"]}


def test_smoke_judges_the_url_it_is_given(tmp_path, odoo):
    text = f'state-dir = "{tmp_path / "state"}"\n[odoo]\ndatabase = "odoo"\n'
    with vigia.Context(text) as ctx:
        main = ctx.smoke(url=odoo["url"])
        evented = ctx.smoke(url=odoo["gevent_url"])
        nothing = ctx.smoke()
    assert main["error"]["kind"] == "check_failed", main
    checks = by_name(main)
    assert checks["tls"]["summary"].startswith("no TLS"), checks["tls"]
    assert checks["smoke.health"]["status"] == "ok", checks["smoke.health"]
    assert checks["smoke.version"]["status"] == "ok", checks["smoke.version"]
    assert "evented port" in checks["smoke.websocket"]["summary"], checks["smoke.websocket"]
    assert by_name(evented)["smoke.websocket"]["status"] == "ok", by_name(evented)
    # No url anywhere: a config error, before any check runs.
    assert not nothing["ok"] and nothing["error"]["kind"] == "config", nothing
