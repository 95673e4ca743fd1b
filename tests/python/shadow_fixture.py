"""Path entries that shadow each other, for the version matrix
(tests/python/test_versions.py).

``build(root)`` writes the tree below and returns the ``sys.path`` entries to
put first, in order, relative to ``root`` where the entry is relative (the
observer runs with ``root`` as its current directory):

* ``leftover/``: what failed uninstalls leave: an empty ``flake8`` dist-info
  (only ``INSTALLER``) and an empty ``METADATA`` for ``zempty``; the first
  version of a plugin (``plug 1.0``); an egg-info directory; a single-file
  egg-info;
* ``real/``: the real ``flake8``, ``plug 2.0``, ``zempty 0.2``;
* ``plugins.zip``: a zip path entry with a dist-info and entry points;
* ``legacy-1.0-py3.9.egg``: an egg path entry (``EGG-INFO``);
* ``leftover/`` again (a path entry given twice);
* ``rel``: a relative path entry;
* ``linked``: a symlink to a directory, and ``real-link``, a symlink to
  ``real/`` (the same directory under two names).
"""

import os
import zipfile


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _metadata(name, version, *extra):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *extra]
    return "\n".join(lines) + "\n\nThe long description.\n"


def _dist_info(entry, name, version, entry_points=None, extra=(), record=True):
    base = os.path.join(entry, f"{name}-{version}.dist-info")
    _write(os.path.join(base, "METADATA"), _metadata(name, version, *extra))
    _write(os.path.join(base, "WHEEL"), "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
    if entry_points is not None:
        _write(os.path.join(base, "entry_points.txt"), entry_points)
    if record:
        module = name.replace("-", "_")
        _write(
            os.path.join(base, "RECORD"),
            f"{module}/__init__.py,sha256=AAAA,12\n{name}-{version}.dist-info/METADATA,,\n",
        )
        _write(os.path.join(base, "top_level.txt"), f"{module}\n")
    return base


FLAKE8_EPS = """\
[console_scripts]
flake8 = flake8.main.cli:main

[flake8.extension]
F = flake8.plugins.pyflakes:FlakesChecker
E = flake8.plugins.pycodestyle:pycodestyle_logical
W = flake8.plugins.pycodestyle:pycodestyle_physical

[flake8.report]
default = flake8.formatting.default:Default
"""


def _plug_eps(version):
    return f"""\
[fixture.plugins]
plug = plug.v{version[0]}:Plugin
plug-extra = plug.extra:Extra [fast]

[console_scripts]
plug = plug.cli:main
"""


def build(root):
    root = str(root)
    leftover = os.path.join(root, "leftover")
    real = os.path.join(root, "real")

    # A failed uninstall: the directory stays with only INSTALLER in it.
    _write(os.path.join(leftover, "flake8-6.0.0.dist-info", "INSTALLER"), "pip\n")
    # ... or with an empty METADATA.
    _write(os.path.join(leftover, "zempty-0.1.dist-info", "METADATA"), "")
    _dist_info(leftover, "plug", "1.0", _plug_eps("1.0"), ("Requires-Dist: attrs",))
    egg = os.path.join(leftover, "eggy.egg-info")
    _write(os.path.join(egg, "PKG-INFO"), _metadata("eggy", "0.3"))
    _write(os.path.join(egg, "entry_points.txt"), "[fixture.plugins]\neggy = eggy:Plugin\n")
    _write(os.path.join(egg, "requires.txt"), "six\n\n[extra]\nattrs>=1\n")
    _write(os.path.join(egg, "SOURCES.txt"), "eggy/__init__.py\nsetup.py\n")
    _write(os.path.join(egg, "top_level.txt"), "eggy\n")
    _write(os.path.join(leftover, "single-2.5.egg-info"), _metadata("single", "2.5"))

    _dist_info(
        real,
        "flake8",
        "6.0.0",
        FLAKE8_EPS,
        ("Requires-Dist: pyflakes<3.1.0,>=3.0.0", "Requires-Dist: pycodestyle<2.11.0,>=2.10.0", "Classifier: A", "Classifier: B"),
    )
    _dist_info(real, "plug", "2.0", _plug_eps("2.0"), ("Requires-Dist: attrs>=2",))
    _dist_info(real, "zempty", "0.2", "[fixture.plugins]\nzempty = zempty:Plugin\n")
    _dist_info(real, "Mixed_Case.Name", "1.0", "[fixture.plugins]\nmixed = mixed:P\n")

    zip_entry = os.path.join(root, "plugins.zip")
    with zipfile.ZipFile(zip_entry, "w") as z:
        z.writestr("zplug-1.0.dist-info/METADATA", _metadata("zplug", "1.0", "Requires-Dist: plug"))
        z.writestr("zplug-1.0.dist-info/entry_points.txt", "[fixture.plugins]\nzplug = zplug:Plugin\n")
        z.writestr("zplug-1.0.dist-info/RECORD", "zplug/__init__.py,,\n")
        z.writestr("zplug-1.0.dist-info/top_level.txt", "zplug\n")
        z.writestr("zplug/__init__.py", "")

    egg_entry = os.path.join(root, "legacy-1.0-py3.9.egg")
    _write(os.path.join(egg_entry, "EGG-INFO", "PKG-INFO"), _metadata("legacy", "1.0"))
    _write(os.path.join(egg_entry, "EGG-INFO", "entry_points.txt"), "[fixture.plugins]\nlegacy = legacy:P\n")

    _dist_info(os.path.join(root, "rel"), "relpkg", "1.0", "[fixture.plugins]\nrelpkg = relpkg:P\n")
    target = os.path.join(root, "link-target")
    _dist_info(target, "linkpkg", "1.0", "[fixture.plugins]\nlinkpkg = linkpkg:P\n")
    os.symlink(target, os.path.join(root, "linked"))
    os.symlink(real, os.path.join(root, "real-link"))

    return [
        leftover,
        real,
        zip_entry,
        egg_entry,
        leftover,
        "rel",
        os.path.join(root, "linked"),
        os.path.join(root, "real-link"),
    ]
