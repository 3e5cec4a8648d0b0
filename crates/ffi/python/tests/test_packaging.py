"""`pip install ./crates/ffi/python` into a fresh venv: the library bundled, found with no
VIGIA_LIB, VIGIA_LIB still first, the type marker installed."""

import json
import os
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib.metadata, json, vigia
print(json.dumps({
    "path": vigia.library_path(),
    "version": vigia.version(),
    "dist": importlib.metadata.version("vigia"),
    "check": vigia.config_check('[odoo]\\ndatabase = "odoo"\\n'),
}))
"""


def run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_pip_install_bundles_the_library_and_import_needs_no_vigia_lib(tmp_path):
    built = os.environ.get("VIGIA_LIB")
    assert built and os.path.isfile(built), "set VIGIA_LIB to the built libvigia_ffi.so"
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    # The library already built is bundled (no cargo inside pip, as for a user).
    env = {**os.environ, "VIGIA_BUNDLE_LIB": built, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run([python, "-m", "pip", "install", "-q", str(PACKAGE)], env=env)

    clean = {k: v for k, v in os.environ.items() if k not in ("VIGIA_LIB", "PYTHONPATH")}
    # Run from elsewhere, so that the checkout's vigia/ is not the one imported.
    out = json.loads(run([python, "-c", SCRIPT], env=clean, cwd=tmp_path))
    site = pathlib.Path(out["path"]).resolve()
    assert site.is_relative_to(venv.resolve()), out["path"]
    assert site.name == "libvigia_ffi.so"
    assert (site.parent / "py.typed").is_file()
    # Any Python 3 on this platform: the library does not use the Python ABI.
    wheel = next(site.parent.parent.glob("vigia-*.dist-info")) / "WHEEL"
    assert "Tag: py3-none-linux_" in wheel.read_text(), wheel.read_text()
    assert out["version"] == out["dist"]
    assert out["check"]["ok"] is True, out["check"]
    assert out["check"]["command"] == "config check"

    # VIGIA_LIB still overrides the bundled copy.
    overridden = json.loads(run([python, "-c", SCRIPT], env={**clean, "VIGIA_LIB": built},
                                cwd=tmp_path))
    assert overridden["path"] == built
