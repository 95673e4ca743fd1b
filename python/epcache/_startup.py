"""Imported at interpreter start by the ``.pth`` file that
``python -m epcache enable`` writes. Must be cheap and must never raise.

``EPCACHE_DISABLE`` (anything but empty or ``0``) leaves the interpreter
completely stock. ``EPCACHE_TRACE=FILE`` appends one JSON line of
``epcache.stats()`` to FILE when the interpreter exits.
"""


def _run():
    import os

    disabled = os.environ.get("EPCACHE_DISABLE", "")
    if disabled not in ("", "0"):
        return
    from epcache import _hook

    _hook.activate()
    trace = os.environ.get("EPCACHE_TRACE")
    if trace:
        import atexit

        atexit.register(_write_trace, trace)


def _write_trace(path):
    try:
        import json
        import sys

        api = sys.modules.get("epcache._api")
        record = api.stats() if api is not None else {"loaded": False}
        record["argv"] = list(sys.argv)
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
    except Exception:
        pass


try:
    _run()
except Exception:
    pass
