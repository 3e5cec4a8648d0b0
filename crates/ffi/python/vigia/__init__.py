"""Vigia from Python: ctypes over libvigia_ffi, no build step.

The library is found through ``VIGIA_LIB``, else the copy ``pip install`` bundled beside this
file, else the workspace's ``target/debug`` then ``target/release``. Every call returns the same envelope as ``vigia ... --json``, as a dict:
``{"ok": bool, "command": str, "data": ..., "error": None | {"kind", "code", "message", "context"}}``.

    import vigia
    result = vigia.config_check(open("vigia.toml").read())
    if not result["ok"]:
        print(result["error"]["message"])
"""

from __future__ import annotations

import ctypes
import json
import os
import pathlib
from typing import Any, Callable, Dict, Iterable, Optional, TypedDict, Union

__all__ = ["Context", "Envelope", "EnvelopeError", "VigiaError", "config_check", "demo",
           "library_path", "version"]

_HERE = pathlib.Path(__file__).resolve().parent
# crates/ffi/python/vigia -> the workspace, when imported from a checkout.
_WORKSPACE = _HERE.parents[3] if len(_HERE.parents) > 3 else _HERE
_LIB_NAME = "libvigia_ffi.so"

StrPath = Union[str, "os.PathLike[str]"]


class EnvelopeError(TypedDict):
    kind: str
    code: int
    message: str
    context: Dict[str, Any]


class Envelope(TypedDict):
    """What every call returns, as ``vigia ... --json`` prints it."""

    ok: bool
    command: str
    data: Any
    error: Optional[EnvelopeError]


class VigiaError(Exception):
    """A call that produced no envelope failed (creating a Context)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (status {code})")
        self.code = code
        self.message = message


def library_path() -> str:
    """Where libvigia_ffi is loaded from: ``VIGIA_LIB``, the bundled copy, then a checkout's
    ``target/debug`` and ``target/release``."""
    explicit = os.environ.get("VIGIA_LIB")
    if explicit:
        return explicit
    candidates = [_HERE / _LIB_NAME]
    candidates += [_WORKSPACE / "target" / profile / _LIB_NAME for profile in ("debug", "release")]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    raise OSError(
        f"{_LIB_NAME} not found in {', '.join(str(c) for c in candidates)}: set VIGIA_LIB, "
        f"install with `pip install ./crates/ffi/python`, or run `cargo build -p vigia-ffi`"
    )


_PROGRESS_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
_lib = None


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(library_path())
    c_str, out_str = ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)
    lib.vigia_version.restype = c_str
    lib.vigia_version.argtypes = []
    lib.vigia_config_check.restype = ctypes.c_uint32
    lib.vigia_config_check.argtypes = [c_str, c_str, ctypes.c_int, out_str]
    lib.vigia_string_free.restype = None
    lib.vigia_string_free.argtypes = [ctypes.c_void_p]
    lib.vigia_last_error.restype = ctypes.c_void_p
    lib.vigia_last_error.argtypes = []
    lib.vigia_ctx_new.restype = ctypes.c_uint32
    lib.vigia_demo.restype = ctypes.c_uint32
    lib.vigia_demo.argtypes = [c_str, out_str]
    lib.vigia_ctx_new.argtypes = [c_str, c_str, c_str, ctypes.POINTER(ctypes.c_void_p)]
    lib.vigia_ctx_free.restype = None
    lib.vigia_ctx_free.argtypes = [ctypes.c_void_p]
    lib.vigia_ctx_set_progress.restype = None
    lib.vigia_ctx_set_progress.argtypes = [ctypes.c_void_p, _PROGRESS_CB, ctypes.c_void_p]
    lib.vigia_ctx_cancel.restype = None
    lib.vigia_ctx_cancel.argtypes = [ctypes.c_void_p]
    for command in ("config_show", "backup", "backup_list", "backup_show", "verify", "prune",
                    "restore", "restore_cleanup", "health", "alert_test", "alert_silence",
                    "alert_unsilence", "smoke", "deploy", "rollback", "deploy_history"):
        function = getattr(lib, f"vigia_{command}")
        function.restype = ctypes.c_uint32
        function.argtypes = [ctypes.c_void_p, c_str, out_str]
    _lib = lib
    return lib


def _encode(text: Optional[object]) -> Optional[bytes]:
    return None if text is None else str(text).encode("utf-8")


def _take_string(lib: ctypes.CDLL, ptr: Optional[int]) -> Optional[str]:
    """Copies a library-owned string and frees it."""
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib.vigia_string_free(ptr)


def _envelope(call: Callable[[ctypes.CDLL, Any], Any]) -> Envelope:
    lib = _library()
    out = ctypes.c_void_p()
    call(lib, ctypes.byref(out))
    text = _take_string(lib, out.value)
    if text is None:
        raise VigiaError(30, _take_string(lib, lib.vigia_last_error()) or "no envelope returned")
    return json.loads(text)


def version() -> str:
    """The library's version, e.g. "0.1.0"."""
    return _library().vigia_version().decode("utf-8")


def config_check(text: str, env: Optional[str] = None, strict: bool = False) -> Envelope:
    """Validates a config given as TOML text, like ``vigia config check --json``."""
    return _envelope(
        lambda lib, out: lib.vigia_config_check(_encode(text), _encode(env), int(bool(strict)), out)
    )


def demo(dir: Optional[StrPath] = None) -> Envelope:
    """The main job end to end on a throwaway PostgreSQL, like ``vigia demo --json``."""
    args = json.dumps({"dir": str(dir)} if dir is not None else {})
    return _envelope(lambda lib, out: lib.vigia_demo(_encode(args), out))


class Context:
    """A loaded config for running commands; one call at a time.

    ``progress``, when given, is called with each progress event as a dict.
    Use as a context manager, or call ``close()``.
    """

    _handle = None

    def __init__(self, config_text: str, env: Optional[str] = None,
                 base_dir: Optional[StrPath] = None,
                 progress: Optional[Callable[[Dict[str, Any]], None]] = None) -> None:
        lib = _library()
        handle = ctypes.c_void_p()
        status = lib.vigia_ctx_new(
            _encode(config_text), _encode(env), _encode(base_dir), ctypes.byref(handle)
        )
        if status != 0:
            raise VigiaError(status, _take_string(lib, lib.vigia_last_error()) or "unknown error")
        self._lib = lib
        self._handle = handle
        self._callback = None
        if progress is not None:
            self._set_progress(progress)

    def _set_progress(self, progress: Callable[[Dict[str, Any]], None]) -> None:
        def forward(event_json, _userdata):
            try:
                progress(json.loads(event_json.decode("utf-8")))
            except Exception:  # an exception must not unwind into the library
                pass

        # Keep a reference: the library calls it for as long as the ctx lives.
        self._callback = _PROGRESS_CB(forward)
        self._lib.vigia_ctx_set_progress(self._handle, self._callback, None)

    def _call(self, function: Any, args: Optional[Dict[str, Any]] = None) -> Envelope:
        if not self._handle:
            raise ValueError("this Context is closed")
        args_json = None if args is None else json.dumps(args)
        return _envelope(lambda lib, out: function(self._handle, _encode(args_json), out))

    def config_show(self) -> Envelope:
        """The settings in force, secrets redacted, like ``vigia config show --json``."""
        return self._call(self._lib.vigia_config_show)

    def backup(self, allow_missing_files: bool = False) -> Envelope:
        """Takes a backup, like ``vigia backup --json``."""
        return self._call(self._lib.vigia_backup, {"allow_missing_files": bool(allow_missing_files)})

    def backup_list(self) -> Envelope:
        """The backups in the store, like ``vigia backup list --json``."""
        return self._call(self._lib.vigia_backup_list)

    def backup_show(self, id: str) -> Envelope:
        """One backup's index (and manifest with an identity), like ``vigia backup show ID --json``."""
        return self._call(self._lib.vigia_backup_show, {"id": id})

    def verify(self, id: Optional[str] = None, level: Optional[str] = None,
               all: bool = False) -> Envelope:
        """Verifies the newest backup (or ``id``, or every one with ``all``) at ``level``
        (quick, full or drill), like ``vigia verify --json``; code 17 when one fails."""
        args: Dict[str, Any] = {"all": bool(all)}
        if id is not None:
            args["id"] = id
        if level is not None:
            args["level"] = level
        return self._call(self._lib.vigia_verify, args)

    def prune(self, dry_run: bool = False) -> Envelope:
        """Applies retention (or only plans it with ``dry_run``), like ``vigia prune --json``."""
        return self._call(self._lib.vigia_prune, {"dry_run": bool(dry_run)})

    def restore(self, id: Optional[str] = None, target_db: Optional[str] = None,
                confirm: Optional[str] = None, accept_einvoice_loss: bool = False,
                neutralize: bool = False, jobs: Optional[int] = None, role: Optional[str] = None,
                from_odoo_zip: Optional[StrPath] = None, force_sessions: bool = False,
                resume: bool = False, trust_zip: bool = False,
                dry_run: bool = False) -> Envelope:
        """Restores backup ``id`` (or the zip of Odoo's database manager ``from_odoo_zip``),
        like ``vigia restore ID --json``: beside the live database into ``target_db``, or
        (without it) swapped in for the live one; ``neutralize`` makes the copy unable to
        send e-invoices or e-mail; ``force_sessions`` swaps even though other sessions are
        connected to the live database with runtime ``none`` (ending them); ``trust_zip`` runs
        a zip's SQL with the configured role's rights instead of a throwaway role. With
        ``resume`` alone it restores nothing and undoes an interrupted swap, like ``vigia
        restore --resume --json``. With ``dry_run`` it touches nothing and the data is
        ``{"plan": ...}``, like ``vigia restore --dry-run --json``."""
        if resume:
            return self._call(self._lib.vigia_restore, {"resume": True})
        args = {"id": id, "from_odoo_zip": from_odoo_zip and str(from_odoo_zip),
                "target_db": target_db, "confirm": confirm, "jobs": jobs and int(jobs),
                "role": role, "accept_einvoice_loss": bool(accept_einvoice_loss),
                "neutralize": bool(neutralize), "force_sessions": bool(force_sessions),
                "trust_zip": bool(trust_zip), "dry_run": bool(dry_run)}
        # Unset options are left out: the library takes the config's values for them.
        args = {k: v for k, v in args.items() if v is not None}
        return self._call(self._lib.vigia_restore, args)

    def health(self, only: Optional[Iterable[str]] = None, alert: bool = False) -> Envelope:
        """Runs the health checks (or only the names in ``only``), like ``vigia health
        --json``: ``data`` is ``{"status", "checks", "alerts", "silenced"}``; a critical or
        unknown run is ``ok: false`` with kind ``check_failed`` and its data kept. With
        ``alert``, the results count into the incidents of ``[alerting]`` and what changed is
        sent, like ``--alert``."""
        return self._call(self._lib.vigia_health, {"only": list(only or []), "alert": bool(alert)})

    def smoke(self, url: Optional[str] = None) -> Envelope:
        """Smoke-tests the site through nginx (``url``, else ``[odoo] url``), like ``vigia
        smoke --json``: ``data`` is ``{"status", "checks", ...}`` as for ``health``; a critical
        or unknown run is ``ok: false`` with kind ``check_failed`` and its data kept."""
        return self._call(self._lib.vigia_smoke, {"url": url})

    def deploy(self, release: Optional[StrPath] = None, dry_run: bool = False,
               resume: bool = False) -> Envelope:
        """Deploys ``release`` (a folder under ``[deploy] root/releases``), like ``vigia deploy
        --release REF [--dry-run] --json``: with ``dry_run`` the plan, else the report; a
        deploy that failed and rolled back is ``ok: false`` with kind ``check_failed``. With
        ``resume`` (and no release), goes on with the last deploy, killed midway."""
        if resume:
            return self._call(self._lib.vigia_deploy, {"resume": True})
        return self._call(self._lib.vigia_deploy, {"release": str(release), "dry_run": bool(dry_run)})

    def rollback(self, accept_einvoice_loss: bool = False) -> Envelope:
        """Undoes the last deploy (or one killed midway) from its journal, like ``vigia
        rollback --json``."""
        return self._call(self._lib.vigia_rollback,
                          {"accept_einvoice_loss": bool(accept_einvoice_loss)})

    def deploy_history(self) -> Envelope:
        """The deploys made, oldest first, like ``vigia deploy history --json``."""
        return self._call(self._lib.vigia_deploy_history)

    def alert_test(self) -> Envelope:
        """Sends a test message on every channel of ``[alerting]``, like ``vigia alert test
        --json``: code 10 when none is configured, 13 when one refused."""
        return self._call(self._lib.vigia_alert_test)

    def alert_silence(self, for_: str, reason: str) -> Envelope:
        """Sends no alert for ``for_`` (``"2h"``), like ``vigia alert silence --for DUR
        --reason TEXT --json``; checks still run and count."""
        return self._call(self._lib.vigia_alert_silence, {"for": str(for_), "reason": str(reason)})

    def alert_unsilence(self) -> Envelope:
        """Ends the silence in force, like ``vigia alert unsilence --json``."""
        return self._call(self._lib.vigia_alert_unsilence)

    def restore_cleanup(self, apply: bool = False, confirm: Optional[str] = None) -> Envelope:
        """Lists (and with ``apply`` removes) what restores left, like
        ``vigia restore --cleanup [--apply] --json``."""
        args: Dict[str, Any] = {"apply": bool(apply)}
        if confirm is not None:
            args["confirm"] = confirm
        return self._call(self._lib.vigia_restore_cleanup, args)

    def cancel(self) -> None:
        """Asks the running call (from another thread) to stop; it ends with ``cancelled``."""
        if self._handle:
            self._lib.vigia_ctx_cancel(self._handle)

    def close(self) -> None:
        if self._handle:
            self._lib.vigia_ctx_free(self._handle)
            self._handle = None

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
