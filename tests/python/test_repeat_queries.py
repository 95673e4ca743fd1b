"""Programs that query many times: every query after the first is answered
from the per-process memo (one stat per path entry), also for a path entry
too fresh to publish, as stock's own mtime-keyed lookup cache does; and a
change to an entry between queries is seen by the next one."""

import json
import textwrap

from conftest import base_env, run

# Queries a fresh site three times, adds a distribution, queries again.
PROGRAM = textwrap.dedent(
    """
    import json, os, sys, time
    site = sys.argv[1]
    sys.path.insert(0, site)
    import epcache
    import importlib.metadata as md

    def names():
        return sorted(ep.name for ep in md.entry_points(group="epcache.repeat"))

    def counters():
        s = epcache.stats()
        return {k: s[k] for k in ("snapshots", "memo_reuses", "scans", "hits")}

    epcache.install()
    out = {"first": names(), "after_first": counters()}
    for _ in range(30):
        names()
    out["after_repeats"] = counters()
    # A new distribution changes the directory's key: the next query sees it.
    d = os.path.join(site, "late-1.0.dist-info")
    os.mkdir(d)
    with open(os.path.join(d, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: late\\nVersion: 1.0\\n")
    with open(os.path.join(d, "entry_points.txt"), "w") as f:
        f.write("[epcache.repeat]\\nlate = late:main\\n")
    out["after_change"] = names()
    out["final"] = counters()
    print(json.dumps(out))
    """
)


def write_site(root, count):
    root.mkdir()
    for i in range(count):
        d = root / f"rep{i}-1.0.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: rep{i}\nVersion: 1.0\n")
        (d / "entry_points.txt").write_text(f"[epcache.repeat]\nrep{i} = rep{i}:main\n")
    return root


def run_program(python, site, settle):
    env = base_env(EPCACHE_SETTLE_SECS=settle)
    proc = run(python, ["-c", PROGRAM, str(site)], env=env)
    return json.loads(proc.stdout)


def test_repeated_queries_of_a_too_fresh_entry_reuse_one_scan(tmp_path, venv):
    # Just written, and a settle time far longer than the test: the entry
    # can never be published, so without the memo every query would scan.
    site = write_site(tmp_path / "fresh", 20)
    out = run_program(venv.python, site, settle="3600")
    assert out["first"] == [f"rep{i}" for i in sorted(range(20), key=str)]
    first, repeats = out["after_first"], out["after_repeats"]
    assert repeats["snapshots"] - first["snapshots"] == 30
    assert repeats["memo_reuses"] - first["memo_reuses"] == 30
    assert repeats["scans"] == first["scans"], "a repeated query scanned again"
    assert "late" in out["after_change"]
    assert out["final"]["scans"] > repeats["scans"], "the changed entry was not scanned again"


def test_repeated_queries_of_a_settled_entry_reuse_one_consult(tmp_path, venv):
    site = write_site(tmp_path / "settled", 5)
    out = run_program(venv.python, site, settle="0")
    first, repeats = out["after_first"], out["after_repeats"]
    assert repeats["memo_reuses"] - first["memo_reuses"] == 30
    assert repeats["scans"] == first["scans"]
    assert "late" in out["after_change"]
