"""``vigia smoke`` through the Python package: against the stack's site (``vigia-sandbox serve
site``: nginx with TLS in front of the Odoo-like server), and against the Odoo-like server's
own two ports (``vigia-sandbox serve odoo``), where plain HTTP is no TLS and only the evented
port takes a websocket."""

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


@pytest.fixture
def site():
    server = subprocess.Popen([binary("VIGIA_SANDBOX", "vigia-sandbox"), "serve", "site"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    yield json.loads(server.stdout.readline())
    server.stdin.close()
    server.wait(timeout=10)


def test_smoke_of_a_good_site_passes_and_exports_its_metrics(tmp_path, site):
    text = (f'state-dir = "{tmp_path / "state"}"\n[odoo]\ndatabase = "odoo"\nurl = "{site["url"]}"\n'
            f'[health]\nresolve = {{ "{site["host"]}" = "{site["address"]}" }}\n'
            f'ca-file = "{site["ca_file"]}"\n[smoke]\nhttp-url = "{site["http_url"]}"\n')
    with vigia.Context(text) as ctx:
        report = ctx.smoke()
    assert report["ok"], report
    assert all(c["status"] == "ok" for c in report["data"]["checks"]), report
    assert by_name(report)["smoke.score"]["evidence"]["score"] == 80
    metrics = (tmp_path / "state" / "vigia-smoke.prom").read_text()
    assert 'vigia_smoke_status{check="smoke.headers"} 0' in metrics, metrics
