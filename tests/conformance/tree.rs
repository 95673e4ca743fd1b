//! The generated tree of part (a): path entries that exercise every rule of
//! the reference page on how importlib.metadata sees a path entry
//! (`importlib-metadata.md`), and the faults importlib raises on.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// Writes `bytes` to `path`, creating parent directories.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, bytes).unwrap();
}

/// A `*.dist-info` / `*.egg-info` directory with the given files.
fn info(entry: &Path, child: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = entry.join(child);
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        write(&dir.join(name), bytes);
    }
    dir
}

/// `METADATA` text with `Name` and `Version`.
fn meta(name: &str, version: &str) -> Vec<u8> {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test\n\nThe long description.\nName: not-a-header\n").into_bytes()
}

/// A zip file with the given members; a name ending in `/` is a directory.
pub fn zip_file(path: &Path, members: &[(&str, &[u8])]) {
    let file = fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        if let Some(dir) = name.strip_suffix('/') {
            zip.add_directory(dir, options).unwrap();
        } else {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
    }
    zip.finish().unwrap();
}

/// The generated tree.
pub struct Tree {
    /// Owns everything below.
    pub root: TempDir,
    /// Clean path entries, in sys.path order: importlib does not raise on
    /// them, so the stock functions can be compared wholesale.
    pub clean: Vec<PathBuf>,
    /// A path entry whose distributions make importlib raise (a line
    /// without `=`, non-UTF-8 bytes), plus ones it silently skips
    /// (directories and dangling links where files belong, mode 000).
    pub faulty: PathBuf,
    /// `faulty` with every offending line or byte removed, and nothing else
    /// changed: what epcache must report for `faulty`.
    pub faulty_fixed: PathBuf,
    /// Path entries holding a distribution with no `Name` that importlib
    /// de-duplicates by Name, so that it raises `TypeError`: an upper-case
    /// `.DIST-INFO` directory, and a dist-info directory inside a zip.
    pub nameless: Vec<PathBuf>,
    /// A child whose file name is not UTF-8.
    #[cfg(unix)]
    pub bad_file_name: PathBuf,
}

/// Distributions of `faulty` and what is wrong with each.
pub const FAULTY: &[(&str, Fault)] = &[
    ("noeq-1.0.dist-info", Fault::NoEquals),
    ("badutf-1.0.dist-info", Fault::EntryPointsUtf8),
    ("badmeta-1.0.dist-info", Fault::MetadataUtf8),
    ("badsingle-1.0.egg-info", Fault::MetadataUtf8),
    ("badbody-1.0.dist-info", Fault::BodyUtf8),
    ("mixed-1.0.dist-info", Fault::NoEquals),
    ("dirmeta-1.0.dist-info", Fault::Silent),
    ("direps-1.0.dist-info", Fault::Silent),
    ("dangling-1.0.dist-info", Fault::Silent),
    ("locked-1.0.dist-info", Fault::Locked),
    ("fine-1.0.dist-info", Fault::None),
];

/// What is wrong with a distribution of the faulty path entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `entry_points.txt` has a line without `=`: importlib raises
    /// `ValueError`; epcache drops the line with a diagnostic.
    NoEquals,
    /// `entry_points.txt` has non-UTF-8 bytes: importlib raises
    /// `UnicodeDecodeError`; epcache drops those lines with a diagnostic.
    EntryPointsUtf8,
    /// A METADATA header line has non-UTF-8 bytes: importlib raises on
    /// `name` and `version`; epcache skips that line with a diagnostic.
    MetadataUtf8,
    /// Non-UTF-8 bytes after `Name` and `Version`, in a later header and in
    /// the body: importlib raises; epcache never reads that far
    /// (documented divergence), so no diagnostic.
    BodyUtf8,
    /// A directory or dangling symlink where a file belongs: importlib
    /// silently treats it as absent, and so does epcache.
    Silent,
    /// `entry_points.txt` has mode 000: readable anyway when running as
    /// root; otherwise importlib suppresses the `PermissionError` and
    /// epcache records a diagnostic.
    Locked,
    /// Nothing: a control.
    None,
}

impl Fault {
    /// Whether importlib raises for this distribution (on `name`,
    /// `version` or `entry_points`).
    pub fn importlib_raises(self) -> bool {
        matches!(
            self,
            Fault::NoEquals | Fault::EntryPointsUtf8 | Fault::MetadataUtf8 | Fault::BodyUtf8
        )
    }

    /// Whether epcache must record a diagnostic for this distribution.
    pub fn needs_diagnostic(self, running_as_root: bool) -> bool {
        match self {
            Fault::NoEquals | Fault::EntryPointsUtf8 | Fault::MetadataUtf8 => true,
            Fault::Locked => !running_as_root,
            Fault::BodyUtf8 | Fault::Silent | Fault::None => false,
        }
    }
}

/// Picks the faulty or the repaired spelling.
fn pick<'a>(fixed: bool, faulty: &'a [u8], repaired: &'a [u8]) -> &'a [u8] {
    if fixed {
        repaired
    } else {
        faulty
    }
}

fn make_faulty(entry: &Path, fixed: bool) {
    fs::create_dir_all(entry).unwrap();
    info(
        entry,
        "noeq-1.0.dist-info",
        &[
            ("METADATA", &meta("noeq", "1.0")),
            (
                "entry_points.txt",
                pick(
                    fixed,
                    b"[console_scripts]\nok1 = noeq:a\nthis line has no equals sign\nok2 = noeq:b\n[other]\nok3 = noeq:c\n",
                    b"[console_scripts]\nok1 = noeq:a\nok2 = noeq:b\n[other]\nok3 = noeq:c\n",
                ),
            ),
        ],
    );
    info(
        entry,
        "badutf-1.0.dist-info",
        &[
            ("METADATA", &meta("badutf", "1.0")),
            (
                "entry_points.txt",
                pick(
                    fixed,
                    b"[console_scripts]\ngood = badutf:a\nbad = caf\xe9:main\n[gr\xffoup]\nafter = badutf:b\r\n[other]\nlast = badutf:c",
                    b"[console_scripts]\ngood = badutf:a\nafter = badutf:b\r\n[other]\nlast = badutf:c",
                ),
            ),
        ],
    );
    info(
        entry,
        "badmeta-1.0.dist-info",
        &[
            (
                "METADATA",
                pick(
                    fixed,
                    b"Metadata-Version: 2.1\nName: badmeta\nAuthor: Jos\xe9\nVersion: 1.0\n\nbody\n",
                    b"Metadata-Version: 2.1\nName: badmeta\nVersion: 1.0\n\nbody\n",
                ),
            ),
            ("entry_points.txt", b"[console_scripts]\nbadmeta = badmeta:main\n"),
        ],
    );
    write(
        &entry.join("badsingle-1.0.egg-info"),
        pick(
            fixed,
            b"Metadata-Version: 1.0\nName: badsingle\nSummary: \xff\xfe\nVersion: 1.0\n",
            b"Metadata-Version: 1.0\nName: badsingle\nVersion: 1.0\n",
        ),
    );
    info(
        entry,
        "badbody-1.0.dist-info",
        &[
            (
                "METADATA",
                pick(
                    fixed,
                    b"Metadata-Version: 2.1\nName: badbody\nVersion: 1.0\nSummary: caf\xe9\n\nLatin-1 in the body: caf\xe9\n",
                    b"Metadata-Version: 2.1\nName: badbody\nVersion: 1.0\nSummary: caf\n\nLatin-1 in the body: caf\n",
                ),
            ),
            ("entry_points.txt", b"[console_scripts]\nbadbody = badbody:main\n"),
        ],
    );
    // Both faults at once, and a de-duplication partner in `fine`'s entry.
    info(
        entry,
        "mixed-1.0.dist-info",
        &[
            (
                "METADATA",
                pick(
                    fixed,
                    b"Metadata-Version: 2.1\nName: Mixed\nKeywords: \x80\nVersion: 1.0\n\n",
                    b"Metadata-Version: 2.1\nName: Mixed\nVersion: 1.0\n\n",
                ),
            ),
            (
                "entry_points.txt",
                pick(
                    fixed,
                    b"[g]\nfirst = mixed:a\n[g2]\nbroken\n\xc3\x28 = bad\nsecond = mixed:b\n",
                    b"[g]\nfirst = mixed:a\n[g2]\nsecond = mixed:b\n",
                ),
            ),
        ],
    );
    // A directory named METADATA: importlib falls back to PKG-INFO.
    info(
        entry,
        "dirmeta-1.0.dist-info",
        &[
            ("METADATA/README", b"not metadata"),
            ("PKG-INFO", &meta("dirmeta", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\ndirmeta = dirmeta:main\n",
            ),
        ],
    );
    // A directory named entry_points.txt: no entry points.
    info(
        entry,
        "direps-1.0.dist-info",
        &[
            ("METADATA", &meta("direps", "1.0")),
            ("entry_points.txt/x", b"[g]\nx = y\n"),
        ],
    );
    let dangling = info(
        entry,
        "dangling-1.0.dist-info",
        &[("PKG-INFO", &meta("dangling", "1.0"))],
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("does-not-exist", dangling.join("METADATA")).unwrap();
        std::os::unix::fs::symlink(
            "nowhere/entry_points.txt",
            dangling.join("entry_points.txt"),
        )
        .unwrap();
    }
    #[cfg(not(unix))]
    let _ = dangling;
    let locked = info(
        entry,
        "locked-1.0.dist-info",
        &[
            ("METADATA", &meta("locked", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nlocked = locked:main\n",
            ),
        ],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            locked.join("entry_points.txt"),
            fs::Permissions::from_mode(0o000),
        )
        .unwrap();
    }
    #[cfg(not(unix))]
    let _ = locked;
    info(
        entry,
        "fine-1.0.dist-info",
        &[
            ("METADATA", &meta("fine", "1.0")),
            ("entry_points.txt", b"[console_scripts]\nfine = fine:main\n"),
        ],
    );
}

/// The clean directory entries, the zip and the eggs.
fn make_clean(root: &Path) -> Vec<PathBuf> {
    let site1 = root.join("site1");
    let site2 = root.join("site2");
    fs::create_dir_all(&site1).unwrap();
    fs::create_dir_all(&site2).unwrap();

    // --- site1 -------------------------------------------------------------
    // Every grammar rule of entry_points.txt in one file: comments (also
    // indented), a line without `=` before the first section (ignored),
    // duplicate names, names with spaces, `;` and inline `#` kept in the
    // value, indented lines (no continuation), `[ spaced group ]`,
    // `[[doubled]]`, `==`, empty values, extras with and without a space.
    info(
        &site1,
        "grammar-1.0.dist-info",
        &[
            ("METADATA", &meta("grammar", "1.0")),
            (
                "entry_points.txt",
                b"# leading comment\ngarbage before any section\n\n[console_scripts]\nfoo-bar = foo_bar.cli:main\nfoo-bar = foo_bar.cli:again\nbeta thing = foo_bar.mod:fn\n    indented = foo_bar:indented\n\t  # indented comment\nx = y ; # not a comment\nCaSe = foo_bar:CaSe\n[ spaced group ]\nk == v\nwith extras = jinja2.ext:babel_extract[i18n]\nblackd = blackd:patched_main [d]\nmany = m:f [a, b]\n[[doubled]]\nn=\n=nameless\n[console_scripts]\nagain = foo_bar:again\n",
            ),
            ("RECORD", b"foo_bar/__init__.py,,\n"),
        ],
    );
    info(
        &site1,
        "Foo_Bar-1.0.dist-info",
        &[
            ("METADATA", &meta("Foo_Bar", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nfoo-bar = foo_bar.cli:main\n[foo.plugins]\nfoo-bar = foo_bar.plugin\n",
            ),
        ],
    );
    // Same normalized name, another spelling, same directory: a duplicate
    // inside one entry (listing order decides who is first).
    info(
        &site1,
        "foo.bar-2.0.dist-info",
        &[
            ("METADATA", &meta("foo.bar", "2.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nfoo-bar = foo_dot_bar:main\n",
            ),
        ],
    );
    // Upper-case extension: discovered, and de-duplicated by its Name.
    info(
        &site1,
        "UPPER-2.0.DIST-INFO",
        &[
            ("METADATA", &meta("Upper_Case", "2.0")),
            ("entry_points.txt", b"[upper]\nu = upper:main\n"),
        ],
    );
    // CRLF everywhere, and no final newline in entry_points.txt.
    info(
        &site1,
        "crlf-1.0.dist-info",
        &[
            (
                "METADATA",
                b"Metadata-Version: 2.1\r\nName: crlf\r\nVersion: 1.0\r\n\r\nbody\r\n",
            ),
            (
                "entry_points.txt",
                b"[console_scripts]\r\ncrlf = crlf:main\r\n\r\n[gui_scripts]\r\nlast = crlf:last",
            ),
        ],
    );
    // Lone CR line ends, no final newline anywhere.
    info(
        &site1,
        "nonl-1.0.dist-info",
        &[
            ("METADATA", b"Name: nonl\rVersion: 1.0"),
            ("entry_points.txt", b"[g]\ra = nonl:a\rb = nonl:b"),
        ],
    );
    // Python's str.splitlines also breaks at \x0b, \x0c, \x1c-\x1e, \x85,
    // U+2028 and U+2029; str.strip also strips \x1c-\x1f and U+00A0.
    info(
        &site1,
        "splitter-1.0.dist-info",
        &[
            ("METADATA", &meta("splitter", "1.0")),
            (
                "entry_points.txt",
                "[g]\na = s:a\x0cb = s:b\x0bc = s:c\x1cd = s:d\u{2028}e = s:e\u{85}f = s:f\u{2029}\x1fg = s:g\u{a0}\n[gr\u{fc}ppe]\nn\u{e4}me = m\u{f6}d:fn\n"
                    .as_bytes(),
            ),
        ],
    );
    // An egg-info directory with PKG-INFO only.
    info(
        &site1,
        "legacy-0.5-py3.11.egg-info",
        &[
            ("PKG-INFO", &meta("legacy", "0.5")),
            ("SOURCES.txt", b"setup.py\n"),
            (
                "entry_points.txt",
                b"[console_scripts]\nlegacy = legacy:main\n",
            ),
        ],
    );
    // A mixed-case egg-info directory.
    info(
        &site1,
        "Mixed_Case-1.0.Egg-Info",
        &[
            ("PKG-INFO", &meta("Mixed_Case", "1.0")),
            ("entry_points.txt", b"[mixed]\nm = mixed:main\n"),
        ],
    );
    // A single-file egg-info (distutils) and a dist-info that is a file.
    write(
        &site1.join("single-1.2.egg-info"),
        b"Metadata-Version: 1.0\nName: single\nVersion: 1.2\nSummary: one file\n",
    );
    write(
        &site1.join("distfile-1.0.dist-info"),
        b"Metadata-Version: 2.1\nName: distfile\nVersion: 1.0\n",
    );
    // Name differs from the directory: de-duplicated as `abc`.
    info(
        &site1,
        "abc-1.0.dist-info",
        &[
            ("METADATA", &meta("xyz", "1.0")),
            ("entry_points.txt", b"[console_scripts]\nabc = abc:main\n"),
        ],
    );
    // Continuation lines in METADATA headers.
    info(
        &site1,
        "cont-1.0.dist-info",
        &[
            (
                "METADATA",
                b"Metadata-Version: 2.1\nName: cont\nSummary: first line\n  continued summary\nVersion: 1.0\n\t.post1\nAuthor: A\n\nbody\n",
            ),
            ("entry_points.txt", b"[console_scripts]\ncont = cont:main\n"),
        ],
    );
    // importlib dedents multi-line header values (`_adapters.Message`'s
    // `redent`): a common indent, blank continuation lines.
    info(
        &site1,
        "indent8-1.0.dist-info",
        &[(
            "METADATA",
            b"Metadata-Version: 2.1\nName: indent8\nVersion: 2.0\n        .post1\n \t\n\nbody\n",
        )],
    );
    info(
        &site1,
        "contname-1.0.dist-info",
        &[(
            "METADATA",
            b"Metadata-Version: 2.1\nName:\n  contname\nVersion: \n\t3.0\n\n",
        )],
    );
    // An empty METADATA falls back to PKG-INFO.
    info(
        &site1,
        "emptymeta-1.0.dist-info",
        &[
            ("METADATA", b""),
            ("PKG-INFO", &meta("emptymeta", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nemptymeta = emptymeta:main\n",
            ),
        ],
    );
    // A METADATA whose header block is empty (it starts with a blank line)
    // is still not an empty file: importlib parses it, finds no headers,
    // and never reads PKG-INFO.
    info(
        &site1,
        "bodyfirst-1.0.dist-info",
        &[
            ("METADATA", b"\nName: bodyfirst\nVersion: 1.0\n"),
            ("PKG-INFO", &meta("bodyfirst", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nbodyfirst = bodyfirst:main\n",
            ),
        ],
    );
    // An empty dist-info.
    fs::create_dir_all(site1.join("hollow-0.0.dist-info")).unwrap();
    // No Name header: de-duplicated by its directory name.
    info(
        &site1,
        "noname-1.0.dist-info",
        &[
            ("METADATA", b"Metadata-Version: 2.1\nVersion: 1.0\n\n"),
            (
                "entry_points.txt",
                b"[console_scripts]\nnoname = noname:main\n",
            ),
        ],
    );
    // A byte-order mark makes the first line a non-header: no Name, no
    // Version.
    info(
        &site1,
        "bom-1.0.dist-info",
        &[
            ("METADATA", b"\xef\xbb\xbfName: bom\nVersion: 1.0\n"),
            ("entry_points.txt", b"[console_scripts]\nbom = bom:main\n"),
        ],
    );
    // Header edge cases: the first Name wins, case-insensitive header
    // names, a line that is not a header ends the block.
    info(
        &site1,
        "headers-1.0.dist-info",
        &[
            (
                "METADATA",
                b"Metadata-Version: 2.1\nNAME: Headers\nname: second\nversion:   3.0  \nnot a header line\nVersion: 9\n",
            ),
            ("entry_points.txt", b"[console_scripts]\nheaders = headers:main\n"),
        ],
    );
    // Dots and non-ASCII in names.
    info(
        &site1,
        "dotted.name-1.0.dist-info",
        &[
            ("METADATA", &meta("Dotted.Name", "1.0")),
            (
                "entry_points.txt",
                b"[dotted.group]\na.b:c = dotted.name:main\n",
            ),
        ],
    );
    info(
        &site1,
        "unicode_pkg-1.0.dist-info",
        &[("METADATA", &meta("Unicode_Pkg", "1.0\u{e9}"))],
    );
    // A symlinked dist-info directory (os.listdir lists it; it is read
    // through the link).
    #[cfg(unix)]
    {
        let target = info(
            root,
            "elsewhere/linked-1.0.dist-info",
            &[
                ("METADATA", &meta("linked", "1.0")),
                (
                    "entry_points.txt",
                    b"[console_scripts]\nlinked = linked:main\n",
                ),
            ],
        );
        std::os::unix::fs::symlink(target, site1.join("linked-1.0.dist-info")).unwrap();
    }
    // An empty name before the first `-`: importlib falls back to the
    // metadata Name for de-duplication (`'' or name`).
    info(
        &site1,
        "-1.0.dist-info",
        &[
            ("METADATA", &meta("dashless", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\ndashless = dashless:first\n",
            ),
        ],
    );
    // Children that do not qualify.
    write(&site1.join("foo_bar/__init__.py"), b"");
    write(&site1.join("module.py"), b"");
    write(&site1.join("something.pth"), b"import os\n");
    write(
        &site1.join("foo-1.0.dist-info.bak/METADATA"),
        meta("bak", "1.0"),
    );
    write(&site1.join("EGG-INFO/PKG-INFO"), meta("not-an-egg", "1.0"));

    // --- site2: duplicates of site1's names ---------------------------------
    info(
        &site2,
        "FOO_BAR-3.0.dist-info",
        &[
            ("METADATA", &meta("FOO_BAR", "3.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nfoo-bar = shadowed:main\n",
            ),
        ],
    );
    info(
        &site2,
        "upper_case-9.dist-info",
        &[
            ("METADATA", &meta("upper-case", "9")),
            ("entry_points.txt", b"[upper]\nu = shadowed:main\n"),
        ],
    );
    info(
        &site2,
        "xyz-5.0.dist-info",
        &[
            ("METADATA", &meta("xyz", "5.0")),
            ("entry_points.txt", b"[console_scripts]\nxyz = xyz:main\n"),
        ],
    );
    info(
        &site2,
        "abc-3.0.dist-info",
        &[
            ("METADATA", &meta("abc", "3.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nabc = shadowed:main\n",
            ),
        ],
    );
    info(
        &site2,
        "legacy-0.9.dist-info",
        &[
            ("METADATA", &meta("legacy", "0.9")),
            (
                "entry_points.txt",
                b"[console_scripts]\nlegacy = shadowed:main\n",
            ),
        ],
    );
    info(
        &site2,
        "dashless-2.0.dist-info",
        &[
            ("METADATA", &meta("dashless", "2.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\ndashless = dashless:second\n",
            ),
        ],
    );
    info(
        &site2,
        "Foo_Egg-0.1.dist-info",
        &[
            ("METADATA", &meta("Foo_Egg", "0.1")),
            (
                "entry_points.txt",
                b"[console_scripts]\nfoo-egg = foo_egg_dist:main\n",
            ),
        ],
    );
    info(
        &site2,
        "only2-1.0.dist-info",
        &[
            ("METADATA", &meta("only2", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nonly2 = only2:main\n",
            ),
        ],
    );

    // --- a zip on sys.path ---------------------------------------------------
    let app_zip = root.join("app.zip");
    let zipped_meta = meta("zipped", "1.0");
    let zipegg_meta = meta("zipegg", "1.0");
    let foo7_meta = meta("Foo_Bar", "7.0");
    let zipupper_meta = meta("ZipUpper", "1.0");
    let renamed_meta = meta("only2", "1.0");
    let zipxyz_meta = meta("zipxyz", "1.0");
    zip_file(
        &app_zip,
        &[
            ("pkg/__init__.py", b""),
            ("zipped-1.0.dist-info/METADATA", &zipped_meta),
            (
                "zipped-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\r\nzipped = zipped:main\r\n[ spaced ]\r\nz = zipped:z [extra]",
            ),
            ("zipegg-1.0.egg-info/", b""),
            ("zipegg-1.0.egg-info/PKG-INFO", &zipegg_meta),
            (
                "zipegg-1.0.egg-info/entry_points.txt",
                b"[zipegg]\ne = zipegg:main\n",
            ),
            // importlib cannot read single-file metadata out of a zip.
            (
                "zipsingle-1.0.egg-info",
                b"Metadata-Version: 1.0\nName: zipsingle\nVersion: 1.0\n",
            ),
            ("Foo_Bar-7.0.dist-info/METADATA", &foo7_meta),
            (
                "Foo_Bar-7.0.dist-info/entry_points.txt",
                b"[console_scripts]\nfoo-bar = zipped_shadow:main\n",
            ),
            ("ZipUpper-1.0.DIST-INFO/METADATA", &zipupper_meta),
            (
                "ZipUpper-1.0.DIST-INFO/entry_points.txt",
                b"[zipupper]\nzu = zipupper:main\n",
            ),
            // In a zip, str(dist._path) of a directory ends in `/`, so
            // importlib de-duplicates by the metadata Name, never by the
            // directory name: `renamed` is hidden behind site2's `only2`,
            // and this `xyz` is not hidden behind site2's `xyz`.
            ("renamed-1.0.dist-info/METADATA", &renamed_meta),
            (
                "renamed-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\nrenamed = zip_renamed:main\n",
            ),
            ("xyz-1.0.dist-info/METADATA", &zipxyz_meta),
            (
                "xyz-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\nzipxyz = zipxyz:main\n",
            ),
        ],
    );

    // --- an unzipped .egg with EGG-INFO, and dist-info beside it ---------------
    let egg_dir = root.join("Foo_Egg-1.0-py3.11.egg");
    info(
        &egg_dir,
        "EGG-INFO",
        &[
            ("PKG-INFO", &meta("Foo_Egg", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nfoo-egg = foo_egg:main\n[egg.group]\ne = foo_egg:e\n",
            ),
        ],
    );
    write(&egg_dir.join("foo_egg/__init__.py"), b"");
    info(
        &egg_dir,
        "inner-1.0.dist-info",
        &[
            ("METADATA", &meta("inner", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\ninner = inner:main\n",
            ),
        ],
    );

    // --- a zipped .egg --------------------------------------------------------
    let zipped_egg = root.join("Zipped_Egg-2.0-py3.11.egg");
    let zipped_egg_meta = meta("Zipped-Egg", "2.0");
    zip_file(
        &zipped_egg,
        &[
            ("zipped_egg/__init__.py", b""),
            ("EGG-INFO/PKG-INFO", &zipped_egg_meta),
            (
                "EGG-INFO/entry_points.txt",
                b"[console_scripts]\nzipped-egg = zipped_egg:main\n",
            ),
        ],
    );

    // --- an egg whose metadata directory is spelled in lower case -------------
    let lower_egg = root.join("lower.case-0.1.egg");
    info(
        &lower_egg,
        "egg-info",
        &[
            ("PKG-INFO", &meta("lower.case", "0.1")),
            ("entry_points.txt", b"[lower]\nl = lower_case:main\n"),
        ],
    );

    // --- entries that hold nothing ------------------------------------------
    let missing = root.join("missing");
    let not_a_zip = root.join("notazip.egg");
    write(&not_a_zip, b"this is not a zip file\n");

    vec![
        site1, site2, app_zip, egg_dir, zipped_egg, lower_egg, missing, not_a_zip,
    ]
}

/// Builds the whole tree in a new temporary directory.
pub fn build() -> Tree {
    let mut root = tempfile::Builder::new()
        .prefix("epcache-conformance-")
        .tempdir()
        .unwrap();
    // For debugging: EPCACHE_KEEP_TREE=1 leaves the tree in place.
    if std::env::var_os("EPCACHE_KEEP_TREE").is_some() {
        root.disable_cleanup(true);
        eprintln!("keeping the generated tree at {}", root.path().display());
    }
    let clean = make_clean(root.path());
    let faulty = root.path().join("faulty");
    let faulty_fixed = root.path().join("faulty-fixed");
    make_faulty(&faulty, false);
    make_faulty(&faulty_fixed, true);

    let nameless_upper = root.path().join("nameless-upper");
    info(
        &nameless_upper,
        "NONAME-1.0.DIST-INFO",
        &[
            ("METADATA", b"Metadata-Version: 2.1\nVersion: 1.0\n\n"),
            (
                "entry_points.txt",
                b"[console_scripts]\nnoname = noname:main\n",
            ),
        ],
    );
    info(
        &nameless_upper,
        "named-1.0.dist-info",
        &[
            ("METADATA", &meta("named", "1.0")),
            (
                "entry_points.txt",
                b"[console_scripts]\nnamed = named:main\n",
            ),
        ],
    );

    #[cfg(unix)]
    let bad_file_name = {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let entry = root.path().join("bad-file-name");
        let child = entry.join(OsStr::from_bytes(b"caf\xe9-1.0.dist-info"));
        fs::create_dir_all(&child).unwrap();
        write(&child.join("METADATA"), meta("cafe", "1.0"));
        info(
            &entry,
            "ok-1.0.dist-info",
            &[("METADATA", &meta("ok", "1.0"))],
        );
        entry
    };

    let nameless_zip = root.path().join("nameless.zip");
    let named_meta = meta("named", "1.0");
    zip_file(
        &nameless_zip,
        &[
            ("named-1.0.dist-info/METADATA", &named_meta),
            (
                "named-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\nnamed = named:main\n",
            ),
            ("zipempty-1.0.dist-info/", b""),
            (
                "zipempty-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\nzipempty = zipempty:main\n",
            ),
        ],
    );

    Tree {
        root,
        clean,
        faulty,
        faulty_fixed,
        nameless: vec![nameless_upper, nameless_zip],
        #[cfg(unix)]
        bad_file_name,
    }
}

/// One path entry big enough to be read by several threads while it is
/// listed, in blocks: `count` distributions among as many plain modules,
/// with a second distribution for every 23rd name (different kind and
/// case, so grouping must move it next to the first wherever the listing
/// put it), symlinked metadata, and METADATA whose `Name` and `Version` lie
/// past the first read or continue on the next line. Returns the entry and
/// the lookup keys that appear twice.
pub fn build_large(root: &Path, count: usize) -> (PathBuf, Vec<String>) {
    let entry = root.join("large");
    let elsewhere = root.join("large-targets");
    let mut repeated = Vec::new();
    for i in 0..count {
        let name = format!("pkg{i}");
        write(&entry.join(format!("{name}_mod.py")), b"");
        let eps = format!(
            "[console_scripts]\n{name} = {name}:main\n[group{}]\nx{i} = m:f\n",
            i % 7
        );
        let metadata = match i % 41 {
            // Name and Version after 2 KB of other headers.
            5 => {
                let classifiers = "Classifier: Programming Language :: Python :: 3\n".repeat(50);
                format!("Metadata-Version: 2.1\n{classifiers}Name: {name}\nVersion: 1.{i}\n\nbody\n")
                    .into_bytes()
            }
            // CRLF, and a Version that continues on the next line.
            6 => format!("Metadata-Version: 2.1\r\nName: {name}\r\nVersion: 1.{i}\r\n\t.post1\r\nSummary: s\r\n\r\n")
                .into_bytes(),
            _ => meta(&name, &format!("1.{i}")),
        };
        let files: &[(&str, &[u8])] = if i % 3 == 0 {
            &[("METADATA", &metadata)]
        } else {
            &[
                ("METADATA", &metadata),
                ("entry_points.txt", eps.as_bytes()),
            ]
        };
        let child = format!("{name}-1.{i}.dist-info");
        #[cfg(unix)]
        if i % 50 == 7 {
            info(&elsewhere, &child, files);
            std::os::unix::fs::symlink(elsewhere.join(&child), entry.join(&child)).unwrap();
            continue;
        }
        info(&entry, &child, files);
        if i % 23 == 11 {
            repeated.push(name.clone());
            info(
                &entry,
                &format!("PKG{i}-0.{i}.egg-info"),
                &[
                    ("PKG-INFO", &meta(&format!("PKG{i}"), &format!("0.{i}"))),
                    (
                        "entry_points.txt",
                        format!("[console_scripts]\nold{i} = old:main\n").as_bytes(),
                    ),
                ],
            );
        }
    }
    let _ = &elsewhere;
    (entry, repeated)
}

/// Whether the tests run as root (mode 000 does not stop root's reads).
pub fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // The owner of a file we just created is our effective uid.
        let probe = tempfile::NamedTempFile::new().unwrap();
        probe.as_file().metadata().unwrap().uid() == 0
    }
    #[cfg(not(unix))]
    {
        false
    }
}
