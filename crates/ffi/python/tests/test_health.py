"""Health checks through the Python package that need no database: the company's signing key."""

import json
import subprocess

import vigia


def test_health_judges_the_signing_key_and_never_shows_its_pin(tmp_path):
    """The .p12 check over the C ABI: a key made as Hacienda's are (legacy encryption)."""
    subject = "/CN=SOLUCIONES GMS/serialNumber=CPJ-3-101-123456"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "400",
                    "-subj", subject, "-keyout", "key.pem", "-out", "cert.pem"],
                   cwd=tmp_path, check=True, capture_output=True)
    subprocess.run(["openssl", "pkcs12", "-export", "-legacy", "-in", "cert.pem", "-inkey",
                    "key.pem", "-passout", "pass:4321", "-out", "llave.p12"],
                   cwd=tmp_path, check=True, capture_output=True)
    pin = tmp_path / "pin"
    pin.write_text("4321")
    pin.chmod(0o600)
    text = (f'state-dir = "{tmp_path / "state"}"\n[odoo]\ndatabase = "odoo"\n'
            f'[hacienda]\ncertificate = "{tmp_path / "llave.p12"}"\npin = "file:{pin}"\n'
            f'cedula = "3101123456"\n')
    with vigia.Context(text) as ctx:
        good = ctx.health(only=["p12"])
    assert good["ok"], good
    [check] = good["data"]["checks"]
    assert check["name"] == "p12:config" and check["status"] == "ok", check
    pin.write_text("9999")
    with vigia.Context(text) as ctx:
        bad = ctx.health(only=["p12:config"])
    assert bad["error"]["kind"] == "check_failed", bad
    assert "9999" not in json.dumps(bad) and "4321" not in json.dumps(bad)
