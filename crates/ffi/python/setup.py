"""Bundles libvigia_ffi.so into the package: the library named by VIGIA_BUNDLE_LIB (one already
built, as the tests do), else the one `cargo build --release -p vigia-ffi` makes in this
checkout. The wheel is for this platform and any Python 3: it holds a native library loaded with
ctypes, which no build backend for Python extensions knows how to make (it is not a module).
Built from a checkout only (`pip install ./crates/ffi/python`): the version and the library
both come from the Cargo workspace."""

import json
import os
import pathlib
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70
    from wheel.bdist_wheel import bdist_wheel

HERE = pathlib.Path(__file__).resolve().parent
LIB = "libvigia_ffi.so"


def workspace():
    """The checkout this package lives in (crates/ffi/python -> the root)."""
    root = HERE.parents[2] if len(HERE.parents) > 2 else HERE
    if not (root / "Cargo.toml").is_file():
        raise SystemExit(
            f"no Vigia workspace at {root}: install from a checkout with "
            f"`pip install ./crates/ffi/python` (an sdist cannot be built alone)"
        )
    return root


def workspace_version():
    """`[workspace.package] version` of Cargo.toml: the library's version is the package's."""
    text = (workspace() / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version = "([^"]+)"', section, re.M).group(1)


def built_library():
    given = os.environ.get("VIGIA_BUNDLE_LIB")
    if given:
        path = pathlib.Path(given)
        if not path.is_file():
            raise SystemExit(f"VIGIA_BUNDLE_LIB={given}: no such file")
        return path
    if shutil.which("cargo") is None:
        raise SystemExit(f"cargo not found: install Rust (rustup) to build {LIB}, or set "
                         f"VIGIA_BUNDLE_LIB to one already built")
    # Cargo says where the library went (CARGO_TARGET_DIR and build.target-dir included).
    done = subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "vigia-ffi",
         "--message-format=json-render-diagnostics"],
        cwd=workspace(), check=True, stdout=subprocess.PIPE, text=True)
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and \
                message.get("target", {}).get("name") == "vigia_ffi":
            for path in message.get("filenames", []):
                if path.endswith(".so"):
                    return pathlib.Path(path)
    raise SystemExit(f"cargo built vigia-ffi but named no {LIB}")


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "vigia" / LIB
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built_library(), target)


class NativeDistribution(Distribution):
    def has_ext_modules(self):
        return True


class AnyPython(bdist_wheel):
    """py3-none-<platform>: the library does not depend on the Python ABI."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(version=workspace_version(),
      cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": AnyPython},
      distclass=NativeDistribution)
