"""Bundles libvigia_ffi.so into the package: the library named by VIGIA_BUNDLE_LIB (one already
built, as the tests do), else one `cargo build --release -p vigia-ffi` makes in this checkout.
The wheel is then for this platform only: it holds a native library loaded with ctypes, which
no build backend for Python extensions knows how to make (it is not a module)."""

import os
import pathlib
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = pathlib.Path(__file__).resolve().parent
WORKSPACE = HERE.parents[2]
LIB = "libvigia_ffi.so"


def workspace_version():
    """`[workspace.package] version` of Cargo.toml: the library's version is the package's."""
    text = (WORKSPACE / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version = "([^"]+)"', section, re.M).group(1)


def built_library():
    given = os.environ.get("VIGIA_BUNDLE_LIB")
    if given:
        path = pathlib.Path(given)
        if not path.is_file():
            raise SystemExit(f"VIGIA_BUNDLE_LIB={given}: no such file")
        return path
    if not (WORKSPACE / "Cargo.toml").is_file():
        raise SystemExit(
            f"no Vigia workspace at {WORKSPACE} to build {LIB} in: install from a checkout "
            f"(pip install ./crates/ffi/python) or set VIGIA_BUNDLE_LIB to a built {LIB}"
        )
    if shutil.which("cargo") is None:
        raise SystemExit(f"cargo not found: install Rust (rustup) to build {LIB}, or set VIGIA_BUNDLE_LIB")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "vigia-ffi"], cwd=WORKSPACE,
                   check=True)
    return WORKSPACE / "target" / "release" / LIB


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "vigia" / LIB
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built_library(), target)


class NativeDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(version=workspace_version(), cmdclass={"build_py": BuildWithLibrary},
      distclass=NativeDistribution)
