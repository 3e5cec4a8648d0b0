"""Checks a Vigia config through the C ABI and prints the envelope.

    VIGIA_LIB=target/debug/libvigia_ffi.so PYTHONPATH=crates/ffi/python \
        python3 examples/python/config_check.py vigia.toml
"""

import json
import sys

import vigia

with open(sys.argv[1], encoding="utf-8") as f:
    result = vigia.config_check(f.read())
print(json.dumps(result, indent=2))
sys.exit(0 if result["ok"] else result["error"]["code"])
