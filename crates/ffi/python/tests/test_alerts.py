"""Alerts through the Python package: to a real SMTP server (aiosmtpd) and the sandbox's
webhook receiver (``vigia-sandbox serve webhook``)."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

import vigia
from test_backup import binary


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(tmp_path):
    port = free_port()
    out = open(tmp_path / "smtp.txt", "w")
    server = subprocess.Popen([sys.executable, "-u", "-m", "aiosmtpd", "-n", "-l",
                               f"127.0.0.1:{port}"], stdout=out, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert server.poll() is None, "aiosmtpd exited: pip install aiosmtpd"
            assert time.time() < deadline, "aiosmtpd did not listen"
            time.sleep(0.05)
    yield port, tmp_path / "smtp.txt"
    server.terminate()
    server.wait(timeout=10)
    out.close()


@pytest.fixture
def webhook():
    server = subprocess.Popen([binary("VIGIA_SANDBOX", "vigia-sandbox"), "serve", "webhook"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = json.loads(server.stdout.readline())["url"]
    yield url, server
    server.stdin.close()
    server.wait(timeout=10)


def config_text(tmp_path, smtp_port, webhook_url):
    os.environ["VIGIA_TEST_WEBHOOK"] = webhook_url
    return (f'state-dir = "{tmp_path / "state"}"\n'
            f'[odoo]\ndatabase = "odoo"\ninternal-url = "http://127.0.0.1:{free_port()}"\n'
            f'[alerting]\nemail-to = ["ops@example.cr"]\nemail-from = "vigia@example.cr"\n'
            f'smtp-url = "smtp://127.0.0.1:{smtp_port}"\nwebhook-url = "env:VIGIA_TEST_WEBHOOK"\n')


def test_alert_test_and_incidents_reach_mail_and_webhook(tmp_path, smtp, webhook):
    port, received = smtp
    url, hook = webhook
    with vigia.Context(config_text(tmp_path, port, url)) as ctx:
        test = ctx.alert_test()
        runs = [ctx.health(only=["odoo.internal"], alert=True) for _ in range(3)]
    assert test["ok"], test
    assert sorted(c["channel"] for c in test["data"]["channels"]) == ["email", "webhook"]
    assert runs[0]["data"]["alerts"] == [] and runs[1]["data"]["alerts"] == []
    opened = runs[2]["data"]["alerts"]
    assert [(a["check"], a["event"]) for a in opened] == [("odoo.internal", "opened")], opened
    assert all(c["ok"] for c in opened[0]["channels"]), opened
    posts = [json.loads(hook.stdout.readline()) for _ in range(2)]
    assert "test" in posts[0]["text"] and "odoo.internal opened" in posts[1]["text"]
    mail = received.read_text()
    assert mail.count("MESSAGE FOLLOWS") == 2, mail
    assert "Subject: [vigia default] CRITICAL: odoo.internal opened" in mail


def test_a_silence_holds_every_message_until_it_ends(tmp_path, smtp, webhook):
    port, received = smtp
    url, _ = webhook
    with vigia.Context(config_text(tmp_path, port, url)) as ctx:
        silenced = ctx.alert_silence("2h", "planned upgrade")
        runs = [ctx.health(only=["odoo.internal"], alert=True) for _ in range(3)]
        ended = ctx.alert_unsilence()
        again = ctx.alert_unsilence()
    assert silenced["ok"] and silenced["data"]["reason"] == "planned upgrade", silenced
    assert runs[2]["data"]["silenced"]["reason"] == "planned upgrade"
    assert all(c == [] for a in runs[2]["data"]["alerts"] for c in [a["channels"]])
    assert received.read_text() == ""
    assert ended["data"]["ended"] is True and again["data"]["ended"] is False
    bad = vigia.Context(config_text(tmp_path, port, url))
    assert bad.alert_silence("2x", "x")["error"]["kind"] == "invalid_input"
    bad.close()


def test_alert_test_without_channels_is_a_config_error(tmp_path):
    with vigia.Context(f'state-dir = "{tmp_path}"\n[odoo]\ndatabase = "odoo"\n') as ctx:
        out = ctx.alert_test()
        health = ctx.health(only=["memory"], alert=True)
    assert out["ok"] is False and out["error"]["kind"] == "config", out
    assert out["error"]["code"] == 10
    assert health["error"]["kind"] == "config"

