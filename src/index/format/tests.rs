use super::*;
use crate::index::file::{Damage, FileIndex};
use crate::index::{DistFacts, IndexBuilder, Kind, Part, Rec};
use crate::index::{Environment, Selection};
use crate::Index;
use std::path::{Path, PathBuf};

fn header(flags: u32) -> Header {
    Header {
        version: FORMAT_VERSION,
        flags,
        written_at_ns: 5,
        key: Key {
            mtime_ns: -1,
            ctime_ns: 2,
            inode: 3,
            size: 5,
        },
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const GROUPS: [&str; 6] = [
    "console_scripts",
    "pytest11",
    "épcache.plugins",
    "gui_scripts",
    "a",
    "z.last",
];

/// An index of `n` distributions with every feature of the layout: several
/// pages and buckets, groups with non-ASCII names, distributions that
/// shadow earlier ones, eggs, distributions without metadata, diagnostics
/// on the path entry and on distributions.
fn rich(n: usize, seed: u64) -> IndexData {
    let mut rng = Rng(seed | 1);
    let mut b = IndexBuilder::default();
    b.entry_diagnostic("a child name that is not UTF-8 was skipped".to_owned());
    for i in 0..n {
        // A name space small enough that some keys repeat.
        let stem = format!("pkg{}", rng.below(n as u64 * 3 / 4 + 1));
        let kind = match rng.below(20) {
            0 => Kind::Egg,
            1 => Kind::EggInfoFile,
            2 => Kind::EggInfoDir,
            _ => Kind::DistInfo,
        };
        let child = format!(
            "{stem}-{i}.{}",
            if kind == Kind::Egg {
                "egg"
            } else {
                "dist-info"
            }
        );
        let no_metadata = rng.below(15) == 0;
        let name = format!(
            "{}{}",
            stem.to_uppercase(),
            if rng.below(9) == 0 { "_Ünï" } else { "" }
        );
        let version = format!("{}.{}", rng.below(5), i);
        let lookup = crate::index::name::normalize_name(&name);
        let unique_from_stem = match rng.below(6) {
            0 => None,
            1 => Some(format!("{lookup}-other")),
            _ => Some(lookup.clone()),
        };
        let mut eps = Vec::new();
        let values: Vec<String> = (0..8).map(|k| format!("{stem}.mod{k}:f [x]")).collect();
        if rng.below(10) < 6 {
            for k in 0..rng.below(6) as usize + 1 {
                let group = GROUPS[rng.below(GROUPS.len() as u64) as usize];
                let ep_name = if rng.below(7) == 0 {
                    "dup"
                } else {
                    ["a", "b", "naïve", "c"][k % 4]
                };
                eps.push((group, ep_name, values[k].as_str()));
            }
        }
        let diagnostics = if rng.below(12) == 0 {
            vec![format!("entry_points.txt line {i}: no '='")]
        } else {
            vec![]
        };
        let (facts_name, facts_version) = if no_metadata {
            (None, None)
        } else {
            (Some(name.as_str()), Some(version.as_str()))
        };
        b.push(
            kind,
            &child,
            &lookup,
            unique_from_stem.as_deref(),
            DistFacts {
                name: facts_name,
                version: facts_version,
                entry_points: eps,
                diagnostics,
                incomplete: false,
            },
        );
    }
    b.finish_data().0
}

fn encode_plain(data: &IndexData, flags: u32, path: &[u8]) -> Vec<u8> {
    encode(&header(flags), path, b"fingerprint bytes", data).unwrap()
}

/// What a consult checks before trusting a file of these bytes.
fn consult_head(bytes: &[u8]) -> Result<Head, FormatError> {
    let (head, ok) = parse_head(bytes)?;
    if !ok {
        return Err(FormatError::Checksum);
    }
    if head.file_len != bytes.len() as u64 {
        return Err(FormatError::Truncated);
    }
    Ok(head)
}

fn file_index(bytes: &[u8], head: Head) -> FileIndex {
    FileIndex::in_memory(Arc::from(bytes), head)
}

/// An index read lazily from the encoding of `data`, for `path`.
fn lazy(data: &IndexData, path: &str) -> Index {
    let bytes = encode_plain(data, 0, path.as_bytes());
    let head = consult_head(&bytes).unwrap();
    Index::from_file(PathBuf::from(path), file_index(&bytes, head))
}

fn owned(data: &IndexData, path: &str) -> Index {
    Index::owned(PathBuf::from(path), data.clone(), true)
}

fn rendered_record(part: Part<'_>, d: Rec<'_>) -> String {
    let opt = |s: Option<crate::index::schema::Span>| s.map(|s| part.str(s).to_owned());
    let eps: Vec<_> = d
        .entry_points()
        .range()
        .map(|j| part.ep(j))
        .map(|e| (part.str(e.group), part.str(e.name), part.str(e.value)))
        .collect();
    let diags: Vec<_> = part.messages(d.diagnostics()).collect();
    format!(
        "{} {:?} {} {:?} {:?} {:?} {:?} {} {:?} {:?}",
        d.number(),
        d.kind(),
        part.str(d.child()),
        opt(d.name()),
        opt(d.version()),
        opt(d.normalized_name()),
        opt(d.unique_key()),
        part.str(d.lookup_key()),
        eps,
        diags
    )
}

fn raw(records: Vec<(&RawPart, usize)>) -> Vec<(Part<'_>, Rec<'_>)> {
    records
        .into_iter()
        .map(|(p, i)| (Part::Raw(p), Rec::Raw(p.dist(i))))
        .collect()
}

fn all(part: &RawPart) -> Vec<(Part<'_>, Rec<'_>)> {
    (0..part.dist_count())
        .map(|i| (Part::Raw(part), Rec::Raw(part.dist(i))))
        .collect()
}

/// A digest of everything a record shows (cheaper than rendering it, which
/// matters in the thousands of probes below).
fn digest_record(h: &mut impl std::hash::Hasher, part: Part<'_>, d: Rec<'_>) {
    use std::hash::Hash;
    let opt = |s: Option<crate::index::schema::Span>| s.map(|s| part.str(s));
    let strings = (part.str(d.child()), part.str(d.lookup_key()));
    (d.number(), d.kind(), d.shadowed(), strings).hash(h);
    (
        opt(d.name()),
        opt(d.version()),
        opt(d.normalized_name()),
        opt(d.unique_key()),
    )
        .hash(h);
    for j in d.entry_points().range() {
        let e = part.ep(j);
        (part.str(e.group), part.str(e.name), part.str(e.value)).hash(h);
    }
    for message in part.messages(d.diagnostics()) {
        message.hash(h);
    }
    d.diagnostics().range().len().hash(h);
}

type Probe = Vec<Result<u64, String>>;

/// Every query a lazily read file answers, one digest per query, in a
/// fixed order: equal bytes give equal lists, and a damaged file may turn
/// any entry into an error but never into another answer.
///
/// With `pages_first` the listing reads every page before anything else
/// (with one read for all of them); without, single pages come first.
fn probe(f: &FileIndex, keys: &[&str], pages_first: bool) -> Probe {
    use std::hash::{Hash, Hasher};
    let fail = |d: Damage| format!("{d:?}");
    let records = |records: Vec<(Part<'_>, Rec<'_>)>| {
        let mut h = rustc_hash::FxHasher::default();
        records.len().hash(&mut h);
        for (p, r) in records {
            digest_record(&mut h, p, r);
        }
        h.finish()
    };

    let listing = || {
        f.all_pages()
            .map_err(fail)
            .map(|pages| records(pages.into_iter().flat_map(all).collect()))
    };
    let early = pages_first.then(listing);
    let mut out = Vec::new();
    out.push(f.entry().map_err(fail).map(|e| {
        let mut h = rustc_hash::FxHasher::default();
        let e = Part::Raw(e);
        for message in e.messages(e.entry_diagnostics()) {
            message.hash(&mut h);
        }
        h.finish()
    }));
    out.push(f.diagnosed_records().map_err(fail).map(|r| records(raw(r))));
    for group in GROUPS.iter().chain(&["missing", ""]) {
        out.push(f.group_block(group).map_err(fail).map(|block| match block {
            None => 0,
            Some(block) => records(all(block)),
        }));
    }
    for key in keys {
        out.push(f.has_unique_key(key).map_err(fail).map(u64::from));
        out.push(
            f.named(Some(key), Some(key))
                .map_err(fail)
                .map(|r| records(raw(r))),
        );
    }
    let count = f.dist_count() as u32;
    for n in [0, count / 2, count.saturating_sub(1)]
        .into_iter()
        .filter(|&n| n < count)
    {
        out.push(
            f.page_record(n)
                .map_err(fail)
                .map(|(p, i)| records(vec![(Part::Raw(p), Rec::Raw(p.dist(i)))])),
        );
    }
    if f.is_provisional() {
        out.push(
            f.section(Section::Fingerprint)
                .map_err(fail)
                .map(|fingerprint| {
                    let mut h = rustc_hash::FxHasher::default();
                    fingerprint.hash(&mut h);
                    h.finish()
                }),
        );
    }
    out.push(early.unwrap_or_else(listing));
    out
}

/// Keys to look up in `data`: some found (eggs too), some not.
fn some_keys(data: &IndexData) -> Vec<&str> {
    let mut keys: Vec<&str> = data
        .dists
        .iter()
        .step_by(9)
        .flat_map(|d| [Some(d.lookup_key), d.unique_key])
        .flatten()
        .map(|s| data.str(s))
        .collect();
    keys.extend(
        data.dists
            .iter()
            .filter(|d| d.kind == Kind::Egg)
            .take(2)
            .map(|d| data.str(d.lookup_key)),
    );
    keys.extend(["missing", "", "pkg-nope"]);
    keys
}

/// The probe of `data`'s intact encoding, checked against the data itself.
fn golden_probe(data: &IndexData, bytes: &[u8]) -> Probe {
    let f = file_index(bytes, consult_head(bytes).unwrap());
    let expected = probe(&f, &some_keys(data), false);
    assert!(expected.iter().all(Result::is_ok), "the intact file fails");
    let f = file_index(bytes, consult_head(bytes).unwrap());
    assert_eq!(probe(&f, &some_keys(data), true), expected);
    for (n, d) in data.dists.iter().enumerate() {
        let (part, i) = f.page_record(n as u32).unwrap();
        assert_eq!(
            rendered_record(Part::Raw(part), Rec::Raw(part.dist(i))),
            rendered_record(Part::Owned(data), Rec::Owned(d)),
            "record {n}"
        );
    }
    expected
}

#[test]
fn round_trip_answers_like_the_data() {
    for n in [0, 1, 63, 64, 65, 200] {
        let data = rich(n, 7 + n as u64);
        let bytes = encode_plain(&data, 0, b"/site");
        let head = check_whole(&bytes).unwrap();
        assert_eq!(head.header, header(0));
        assert_eq!(head.path, b"/site");
        assert_eq!(head.dist_count as usize, n);
        assert_eq!(head.entry_point_count as usize, data.entry_points.len());
        assert_eq!(head.diagnostic_count as usize, data.diagnostics.len());
        golden_probe(&data, &bytes);
        let materialized = file_index(&bytes, head).materialize().unwrap();
        assert_eq!(
            Index::owned(PathBuf::from("/site"), materialized, true),
            owned(&data, "/site")
        );
    }
}

#[test]
fn provisional_files_carry_their_fingerprint() {
    let data = rich(10, 3);
    let bytes = encode_plain(&data, FLAG_PROVISIONAL, b"/site");
    let head = check_whole(&bytes).unwrap();
    assert!(head.header.is_provisional());
    let f = file_index(&bytes, head);
    assert_eq!(
        f.section(Section::Fingerprint).unwrap(),
        b"fingerprint bytes"
    );
    let plain = check_whole(&encode_plain(&data, 0, b"/site")).unwrap();
    assert!(plain.section(Section::Fingerprint).is_none());
}

/// Queries on a lazily read index answer exactly as on the scanned one,
/// alone and in environments of several entries (where an earlier entry
/// shadows distributions of a later one).
#[test]
fn lazy_indexes_answer_like_owned_ones() {
    let a = rich(150, 11);
    let b = rich(90, 12);
    let c = rich(0, 1);
    let owned_env =
        Environment::from_indexes(vec![owned(&a, "/a"), owned(&c, "/c"), owned(&b, "/b")]);
    let lazy_env = Environment::from_indexes(vec![lazy(&a, "/a"), lazy(&c, "/c"), lazy(&b, "/b")]);
    let mixed_env =
        Environment::from_indexes(vec![owned(&a, "/a"), lazy(&c, "/c"), lazy(&b, "/b")]);
    let mixed_env2 =
        Environment::from_indexes(vec![lazy(&a, "/a"), owned(&c, "/c"), owned(&b, "/b")]);
    let eps = |env: &Environment, sel: &Selection| -> Vec<String> {
        env.entry_points(sel)
            .map(|e| {
                format!(
                    "{} {} {} {:?} {} {}",
                    e.group,
                    e.name,
                    e.value,
                    e.dist.name(),
                    e.dist.position(),
                    e.dist.path_entry().display()
                )
            })
            .collect()
    };
    let mut selections = vec![Selection::all()];
    for group in GROUPS.iter().chain(&["missing"]) {
        selections.push(Selection::group(*group));
        selections.push(Selection {
            group: Some(group.to_string()),
            name: Some("dup".into()),
        });
    }
    selections.push(Selection {
        group: None,
        name: Some("naïve".into()),
    });
    for sel in &selections {
        let expected = eps(&owned_env, sel);
        assert_eq!(eps(&lazy_env, sel), expected, "{sel:?}");
        assert_eq!(eps(&mixed_env, sel), expected, "{sel:?}");
        assert_eq!(eps(&mixed_env2, sel), expected, "{sel:?}");
    }
    let found = |env: &Environment, name: &str| -> Vec<String> {
        env.distributions_named(name)
            .map(|d| {
                format!(
                    "{} {} {:?} {:?} {:?}",
                    d.path_entry().display(),
                    d.metadata_name(),
                    d.version(),
                    d.entry_points().map(|e| e.name).collect::<Vec<_>>(),
                    d.diagnostics().collect::<Vec<_>>()
                )
            })
            .collect()
    };
    let names: Vec<String> = a
        .dists
        .iter()
        .filter_map(|d| d.name.map(|s| a.str(s).to_owned()))
        .chain(["PKG1".into(), "pkg_1".into(), "nope".into(), String::new()])
        .collect();
    for name in &names {
        assert_eq!(found(&lazy_env, name), found(&owned_env, name), "{name}");
        assert_eq!(lazy_env.version(name), owned_env.version(name), "{name}");
    }
    for (l, o) in lazy_env.indexes().iter().zip(owned_env.indexes()) {
        assert_eq!(l, o);
        assert_eq!(l.len(), o.len());
        assert_eq!(l.entry_point_count(), o.entry_point_count());
        assert_eq!(l.diagnostic_count(), o.diagnostic_count());
        assert!(l.diagnostics().eq(o.diagnostics()));
        let diagnosed = |i: &Index| -> Vec<usize> { i.diagnosed().map(|d| d.position()).collect() };
        assert_eq!(diagnosed(l), diagnosed(o));
        for p in 0..l.len() + 1 {
            let at = |i: &Index| {
                i.distribution_at(p)
                    .map(|d| (d.metadata_name().to_owned(), d.entry_points().len()))
            };
            assert_eq!(at(l), at(o), "position {p}");
        }
        assert!(l.late_outcome().is_none());
    }
}

/// A file cut short: at every length the consult refuses it. Cut after
/// the consult checked its head, every query is the right answer or an
/// error, never another answer, never a panic. What a query can read of a
/// cut file depends only on which blocks end before the cut, so cutting
/// one byte before and at the end of every block covers every case.
#[test]
fn every_truncation_is_refused_or_an_error_or_the_answer() {
    let data = rich(150, 5);
    let bytes = encode_plain(&data, FLAG_PROVISIONAL, b"/site");
    let head = consult_head(&bytes).unwrap();
    let expected = golden_probe(&data, &bytes);
    let keys = some_keys(&data);
    for len in 0..bytes.len() {
        assert!(
            consult_head(&bytes[..len]).is_err(),
            "length {len} was trusted"
        );
        assert!(check_whole(&bytes[..len]).is_err());
    }
    let mut cuts: Vec<usize> = block_ends(&bytes, &head)
        .into_iter()
        .flat_map(|end| [end - 1, end])
        .filter(|&len| len >= head.head_len && len < bytes.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    assert!(cuts.len() > 30, "only {} cuts", cuts.len());
    for len in cuts {
        let f = file_index(&bytes[..len], head.clone());
        let got = probe(&f, &keys, len % 2 == 0);
        assert!(
            got.iter().any(Result::is_err),
            "length {len}: nothing failed"
        );
        for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
            if let Ok(got) = got {
                assert_eq!(Ok(got), want.as_ref(), "length {len}, query {i}");
            }
        }
    }
}

/// Where every section and block of a file ends.
fn block_ends(bytes: &[u8], head: &Head) -> Vec<usize> {
    let f = file_index(bytes, head.clone());
    let mut refs: Vec<Ref> = Section::ALL
        .iter()
        .filter_map(|&s| head.section(s))
        .collect();
    let groups = decode_group_dir(f.section(Section::Groups).unwrap(), head.body()).unwrap();
    refs.extend(groups.groups.iter().map(|g| g.1));
    refs.extend(
        decode_refs(&f.section(Section::Pages).unwrap(), head.body())
            .unwrap()
            .iter(),
    );
    refs.extend(
        decode_refs(&f.section(Section::Keys).unwrap(), head.body())
            .unwrap()
            .iter(),
    );
    refs.iter().map(|r| r.end() as usize).collect()
}

/// Random bit flips anywhere in a file of many sections: the consult
/// refuses the file, or every query is the right answer or an error.
#[test]
fn random_bit_flips_are_refused_or_errors_or_the_answer() {
    // Two pages, two buckets, every group: a quarter of the file a
    // 150-distribution index makes, which keeps 2,000 rounds (each reading
    // and checking every block) to a few seconds in a debug build.
    let data = rich(80, 9);
    let bytes = encode_plain(&data, FLAG_PROVISIONAL, b"/site");
    let expected = golden_probe(&data, &bytes);
    let keys = some_keys(&data);
    let mut rng = Rng(0x5eed_0fe9_cac4);
    let bits = bytes.len() as u64 * 8;
    let (mut refused, mut errors) = (0, 0);
    for round in 0..2000 {
        let mut damaged = bytes.clone();
        // Mostly one bit; sometimes a few, as a bad sector would.
        for _ in 0..if round % 10 == 0 { 3 } else { 1 } {
            let bit = rng.below(bits);
            damaged[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
        let Ok(head) = consult_head(&damaged) else {
            refused += 1;
            continue;
        };
        if round % 10 == 0 {
            assert!(
                check_whole(&damaged).is_err(),
                "the whole-file check missed it"
            );
        }
        let f = file_index(&damaged, head);
        let got = probe(&f, &keys, round % 2 == 0);
        assert_eq!(got.len(), expected.len());
        for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
            match got {
                Ok(got) => assert_eq!(Ok(got), want.as_ref(), "round {round}, query {i}"),
                Err(_) => errors += 1,
            }
        }
    }
    assert!(
        refused > 0 && errors > 0,
        "{refused} refused, {errors} errors"
    );
}

#[test]
fn every_bit_of_the_head_is_checked() {
    let data = rich(3, 1);
    let bytes = encode_plain(&data, 0, b"/site");
    let head = consult_head(&bytes).unwrap();
    for bit in 0..head.head_len * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(
            consult_head(&damaged).is_err(),
            "flip of bit {bit} went unnoticed"
        );
    }
}

/// A fixed index with a fingerprint, a diagnostic, a distribution
/// without metadata and non-ASCII text: every part of the layout.
fn golden_sample() -> (Header, Vec<u8>, IndexData) {
    let mut b = IndexBuilder::default();
    b.entry_diagnostic("a child name that is not UTF-8 was skipped".to_owned());
    b.push(
        Kind::DistInfo,
        "Zeta_Pkg-2.0.dist-info",
        "zeta-pkg",
        Some("zeta_pkg"),
        DistFacts {
            name: Some("Zeta.Pkg"),
            version: Some("2.0"),
            entry_points: vec![
                ("console_scripts", "zeta", "zeta.cli:main [extra]"),
                ("épcache.plugins", "naïve", "zeta.plug"),
            ],
            diagnostics: vec!["entry_points.txt line 3: no '='".to_owned()],
            incomplete: false,
        },
    );
    b.push(
        Kind::EggInfoFile,
        "empty-1.0.egg-info",
        "empty",
        Some("empty"),
        DistFacts {
            name: None,
            version: None,
            entry_points: vec![],
            diagnostics: vec![],
            incomplete: false,
        },
    );
    b.push(
        Kind::Egg,
        "Old.Egg-1.0-py3.9.egg",
        "old_egg",
        None,
        DistFacts {
            name: Some("Old.Egg"),
            version: Some("1.0"),
            entry_points: vec![("console_scripts", "old", "old:main")],
            diagnostics: vec![],
            incomplete: false,
        },
    );
    let header = Header {
        version: FORMAT_VERSION,
        flags: FLAG_PROVISIONAL,
        written_at_ns: 1_700_000_000_123_456_789,
        key: Key {
            mtime_ns: 1_690_000_000_000_000_001,
            ctime_ns: 1_690_000_000_000_000_002,
            inode: 4242,
            size: 4096,
        },
    };
    let fingerprint = b"fingerprint bytes".to_vec();
    (header, fingerprint, b.finish_data().0)
}

/// The layout is pinned: a change to any byte of a file epcache writes
/// must come with a new [`FORMAT_VERSION`] (and a new golden file, made
/// with `EPCACHE_BLESS=1 cargo test --lib golden`), never by accident.
#[test]
fn golden_bytes() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("index-v{FORMAT_VERSION}.bin"));
    let (header, fingerprint, data) = golden_sample();
    let bytes = encode(&header, b"/golden/site-packages", &fingerprint, &data).unwrap();
    if std::env::var_os("EPCACHE_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &bytes).unwrap();
    }
    let expected = std::fs::read(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; a new format version needs its golden file (EPCACHE_BLESS=1)",
            golden.display()
        )
    });
    assert!(
        bytes == expected,
        "the encoding of the golden index changed without a new FORMAT_VERSION \
         (first difference at byte {:?})",
        bytes.iter().zip(&expected).position(|(a, b)| a != b)
    );
    let head = check_whole(&expected).unwrap();
    assert_eq!(head.header, header);
    assert_eq!(head.path, b"/golden/site-packages");
    let f = file_index(&expected, head);
    assert_eq!(f.section(Section::Fingerprint).unwrap(), fingerprint);
    let materialized = f.materialize().unwrap();
    assert_eq!(
        Index::owned(PathBuf::new(), materialized, true),
        Index::owned(PathBuf::new(), data, true)
    );
}

#[test]
fn other_versions_and_magic_are_named() {
    let data = rich(2, 1);
    let mut bytes = encode_plain(&data, 0, b"");
    bytes[16] = 9;
    assert_eq!(
        parse_head(&bytes).err(),
        Some(FormatError::Version {
            found: 9,
            expected: FORMAT_VERSION
        })
    );
    bytes[16] = 2;
    assert_eq!(
        parse_head(&bytes).err(),
        Some(FormatError::Version {
            found: 2,
            expected: FORMAT_VERSION
        })
    );
    assert_eq!(
        parse_head(b"PK\x03\x04 not ours").err(),
        Some(FormatError::BadMagic)
    );
    assert_eq!(parse_head(b"").err(), Some(FormatError::BadMagic));
    assert_eq!(parse_head(&MAGIC).err(), Some(FormatError::Truncated));
}

#[test]
fn rewriting_the_key_keeps_the_file_whole() {
    let data = rich(5, 2);
    let bytes = encode_plain(&data, FLAG_PROVISIONAL, b"/site");
    let key = Key {
        mtime_ns: 9,
        ctime_ns: 8,
        inode: 7,
        size: 6,
    };
    let rewritten = rewrite_key(&bytes, key).unwrap();
    let head = check_whole(&rewritten).unwrap();
    assert_eq!(head.header.key, key);
    assert_eq!(
        file_index(&rewritten, head).materialize().unwrap(),
        file_index(&bytes, check_whole(&bytes).unwrap())
            .materialize()
            .unwrap()
    );
}

/// A part of the file whose checksum fails is damage for the query that
/// reads it: each lazily read kind of block in turn.
#[test]
fn each_damaged_block_is_reported() {
    let data = rich(200, 4);
    let bytes = encode_plain(&data, 0, b"/site");
    let head = consult_head(&bytes).unwrap();
    let good = file_index(&bytes, head.clone());
    // Where each kind of block is: the first byte of its reference's target.
    let groups = decode_group_dir(good.section(Section::Groups).unwrap(), head.body()).unwrap();
    let pages = decode_refs(&good.section(Section::Pages).unwrap(), head.body()).unwrap();
    let keys = decode_refs(&good.section(Section::Keys).unwrap(), head.body()).unwrap();
    let console = groups.groups[groups.find("console_scripts").unwrap()].1;
    let last_byte = |r: Ref| (r.end() - 1) as usize;
    let flip = |at: usize| {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        file_index(&damaged, consult_head(&damaged).unwrap())
    };
    let section = |s: Section| last_byte(head.section(s).unwrap());
    let is_damage = |r: Result<(), Damage>| {
        assert!(
            matches!(r, Err(Damage::Format(FormatError::SectionChecksum(_)))),
            "{r:?}"
        )
    };
    is_damage(flip(section(Section::Entry)).entry().map(drop));
    is_damage(
        flip(section(Section::Diagnosed))
            .diagnosed_records()
            .map(drop),
    );
    is_damage(flip(section(Section::Groups)).group_block("a").map(drop));
    is_damage(
        flip(last_byte(console))
            .group_block("console_scripts")
            .map(drop),
    );
    is_damage(flip(section(Section::Pages)).page_record(0).map(drop));
    is_damage(flip(last_byte(pages[1])).page_record(64).map(drop));
    is_damage(flip(section(Section::Keys)).has_unique_key("x").map(drop));
    let b = (key_hash("pkg1") & (keys.len() as u64 - 1)) as usize;
    is_damage(flip(last_byte(keys[b])).has_unique_key("pkg1").map(drop));
    // Other blocks stay readable.
    let f = flip(last_byte(console));
    assert!(f.group_block("pytest11").unwrap().is_some());
    assert!(f.page_record(0).is_ok());
}

/// An index of 100,000 distributions is written, opened through a real
/// file (positioned reads, as a consult does) and queried like any other.
#[test]
fn a_hundred_thousand_distributions_round_trip_through_a_file() {
    const N: usize = 100_000;
    let mut b = IndexBuilder::default();
    for i in 0..N {
        let name = format!("p{i}");
        let child = format!("p{i}-1.dist-info");
        let value = format!("p{i}:main");
        let mut eps = Vec::new();
        if i % 10 == 0 {
            eps.push(("console_scripts", name.as_str(), value.as_str()));
        }
        if i % 1000 == 7 {
            eps.push(("pytest11", name.as_str(), value.as_str()));
        }
        b.push(
            Kind::DistInfo,
            &child,
            &name,
            Some(&name),
            DistFacts {
                name: Some(&name),
                version: Some("1"),
                entry_points: eps,
                diagnostics: vec![],
                incomplete: false,
            },
        );
    }
    let data = b.finish_data().0;
    let bytes = encode_plain(&data, 0, b"/big");
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, &bytes).unwrap();
    let (reader, head) = crate::index::file::open(file, bytes.len() as u64).unwrap();
    assert_eq!(head.dist_count as usize, N);
    let lazy = Index::from_file(PathBuf::from("/big"), FileIndex::new(reader, head, None));
    let owned = owned(&data, "/big");
    let env = Environment::from_indexes(vec![lazy.clone()]);
    let group = |env: &Environment| -> Vec<(String, usize)> {
        env.entry_points(&Selection::group("pytest11"))
            .map(|e| (e.value.to_owned(), e.dist.position()))
            .collect()
    };
    let owned_env = Environment::from_indexes(vec![owned.clone()]);
    assert_eq!(group(&env).len(), N / 1000);
    assert_eq!(group(&env), group(&owned_env));
    assert_eq!(env.version("P54321"), Some("1"));
    assert_eq!(env.version("p100000"), None);
    let last = lazy.distribution_at(N - 1).unwrap();
    assert_eq!(last.name(), Some("p99999"));
    assert_eq!(lazy, owned);
    assert!(lazy.late_outcome().is_none());
}
