//! epcache codec benchmark: postcard vs bitcode vs rkyv vs wincode, plus checksums.
//!
//! `cargo run --release`            -> steady-state tables (median µs/op, hand-timed loop)
//! `cargo run --release -- oneshot` -> also: first call in a fresh process (what a warm
//!                                     consult really pays), median over many processes
//!
//! The payload types are epcache's in-memory index shape, verbatim, plus the
//! extra derives each native codec needs.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

macro_rules! all_derives {
    ($($item:item)*) => {$(
        #[derive(serde::Serialize, serde::Deserialize)]
        #[derive(bitcode::Encode, bitcode::Decode)]
        #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
        #[derive(wincode::SchemaWrite, wincode::SchemaRead)]
        #[derive(Debug, PartialEq)]
        $item
    )*};
}

all_derives! {
    #[derive(Clone, Copy)] pub struct Span { pub start: u32, pub len: u32 }
    #[derive(Clone, Copy)] pub enum Kind { DistInfo, DistInfoFile, EggInfoDir, EggInfoFile, Egg }
    pub struct DistRecord {
        pub kind: Kind, pub child: Span, pub name: Option<Span>, pub version: Option<Span>,
        pub normalized_name: Option<Span>, pub unique_key: Option<Span>, pub lookup_key: Span,
        pub entry_points: (u32, u32), pub diagnostics: (u32, u32),
    }
    pub struct EntryPointRecord { pub group: Span, pub name: Span, pub value: Span }
    pub struct IndexData {
        pub strings: String,
        pub dists: Vec<DistRecord>,
        pub entry_points: Vec<EntryPointRecord>,
        pub diagnostics: Vec<Span>,
        pub entry_diagnostics: (u32, u32),
    }
}

// ---------------------------------------------------------------- payload

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64: deterministic, no dependency
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 { self.next() % n }
    fn chance(&mut self, pct: u64) -> bool { self.below(100) < pct }
    /// Lowercase pseudo-word of `min + below(spread)` chars.
    fn word(&mut self, min: u64, spread: u64) -> String {
        let len = (min + self.below(spread)) as usize;
        const SYL: [&str; 16] = ["py", "ta", "lo", "ex", "ma", "ri", "on", "co", "de", "ns", "ut", "il", "go", "ke", "ar", "st"];
        let mut s = String::new();
        while s.len() < len { s.push_str(SYL[self.below(16) as usize]); }
        s.truncate(len);
        s
    }
}

#[derive(Default)]
struct Arena { strings: String, interned: HashMap<String, Span> }
impl Arena {
    fn add(&mut self, s: &str) -> Span {
        if let Some(sp) = self.interned.get(s) { return *sp; }
        let sp = Span { start: self.strings.len() as u32, len: s.len() as u32 };
        self.strings.push_str(s);
        self.interned.insert(s.to_owned(), sp);
        sp
    }
}

const GROUPS: [(&str, u64); 8] = [
    ("console_scripts", 55), ("pytest11", 10), ("flake8.extension", 8), ("gui_scripts", 5),
    ("sphinx.builders", 6), ("distutils.commands", 6), ("jupyter_serverproxy_servers", 4),
    ("setuptools.finalize_distribution_options", 6),
];

fn build(n_dists: usize, seed: u64) -> IndexData {
    let mut r = Rng(seed);
    let mut a = Arena::default();
    let mut dists = Vec::with_capacity(n_dists);
    let mut eps = Vec::new();
    let mut diags = Vec::new();
    for i in 0..n_dists {
        // ~12-char project name, sometimes with capitals / separators
        let base = r.word(6, 9);
        let name = match r.below(10) {
            0 => format!("{}{}", base[..1].to_uppercase(), &base[1..]),
            1 => format!("{}-{}", &base[..base.len() / 2], &base[base.len() / 2..]),
            2 => format!("{}_{}", &base[..base.len() / 2], &base[base.len() / 2..]),
            _ => base.clone(),
        } + &format!("{i}");
        let normalized = name.to_lowercase().replace('-', "_");
        let version = match r.below(4) {
            0 => format!("{}.{}", r.below(30), r.below(20)),
            1 => format!("{}.{}.{}", r.below(10), r.below(40), r.below(12)),
            2 => format!("20{}.{}.{}", 20 + r.below(6), 1 + r.below(12), r.below(30)),
            _ => format!("{}.{}.{}", r.below(3), r.below(9), r.below(99)),
        };
        let kind = match r.below(100) {
            0..=87 => Kind::DistInfo,
            88..=93 => Kind::EggInfoDir,
            94..=96 => Kind::EggInfoFile,
            97..=98 => Kind::Egg,
            _ => Kind::DistInfoFile,
        };
        let child = match kind {
            Kind::DistInfo | Kind::DistInfoFile => format!("{normalized}-{version}.dist-info"),
            Kind::EggInfoDir | Kind::EggInfoFile => format!("{normalized}-{version}-py3.12.egg-info"),
            Kind::Egg => format!("{normalized}-{version}-py3.12.egg"),
        };
        let child = a.add(&child);
        let has_version = !r.chance(3);
        let name_sp = a.add(&name);
        let norm_sp = a.add(&normalized);
        let ver_sp = if has_version { Some(a.add(&version)) } else { None };
        let ep_start = eps.len() as u32;
        if r.chance(60) {
            let n = 1 + r.below(7); // 1..=7, mean 4
            for _ in 0..n {
                let mut pick = r.below(100);
                let group = GROUPS.iter().find(|(_, w)| if pick < *w { true } else { pick -= w; false }).unwrap().0;
                let ep_name = r.word(6, 8);
                let mut value = format!("{}.{}:{}", normalized, r.word(3, 6), r.word(4, 6));
                if r.chance(15) { value.push_str(" [extra]"); }
                eps.push(EntryPointRecord { group: a.add(group), name: a.add(&ep_name), value: a.add(&value) });
            }
        }
        let ep_len = eps.len() as u32 - ep_start;
        let d_start = diags.len() as u32;
        if r.chance(2) { diags.push(a.add(&format!("{child:?}: METADATA has no Version field; skipped"))); }
        let d_len = diags.len() as u32 - d_start;
        dists.push(DistRecord {
            kind, child, name: Some(name_sp), version: ver_sp,
            normalized_name: Some(norm_sp), unique_key: Some(norm_sp), lookup_key: norm_sp,
            entry_points: (ep_start, ep_len), diagnostics: (d_start, d_len),
        });
    }
    let ed_start = diags.len() as u32;
    diags.push(a.add("entry_points.txt: line 7: missing '=' (ignored)"));
    IndexData { strings: a.strings, dists, entry_points: eps, diagnostics: diags, entry_diagnostics: (ed_start, 1) }
}

// ---------------------------------------------------------------- codecs

type RkyvErr = rkyv::rancor::Error;

#[derive(Clone, Copy, PartialEq)]
enum Codec { Postcard, BitcodeSerde, BitcodeNative, Rkyv, Wincode, WincodeVarint }
const CODECS: [Codec; 6] = [Codec::Postcard, Codec::BitcodeSerde, Codec::BitcodeNative, Codec::Rkyv, Codec::Wincode, Codec::WincodeVarint];

/// wincode with varint integers (smaller file; not bincode-1 compatible any more).
fn wincode_varint() -> impl wincode::config::Config {
    wincode::config::Configuration::default().with_varint_encoding()
}

impl Codec {
    fn name(self) -> &'static str {
        match self {
            Codec::Postcard => "postcard 1.1.3 (serde)",
            Codec::BitcodeSerde => "bitcode 0.6.9 (serde)",
            Codec::BitcodeNative => "bitcode 0.6.9 (derive)",
            Codec::Rkyv => "rkyv 0.8.18 (checked)",
            Codec::Wincode => "wincode 0.6.3 (derive)",
            Codec::WincodeVarint => "wincode 0.6.3 (derive, varint)",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Codec::Postcard => "postcard", Codec::BitcodeSerde => "bitcode-serde",
            Codec::BitcodeNative => "bitcode", Codec::Rkyv => "rkyv", Codec::Wincode => "wincode",
            Codec::WincodeVarint => "wincode-varint",
        }
    }
    fn from_key(k: &str) -> Codec { *CODECS.iter().find(|c| c.key() == k).expect("codec key") }
    fn encode(self, v: &IndexData) -> Vec<u8> {
        match self {
            Codec::Postcard => postcard::to_allocvec(v).unwrap(),
            Codec::BitcodeSerde => bitcode::serialize(v).unwrap(),
            Codec::BitcodeNative => bitcode::encode(v),
            Codec::Rkyv => rkyv::to_bytes::<RkyvErr>(v).unwrap().into_vec(),
            Codec::Wincode => wincode::serialize(v).unwrap(),
            Codec::WincodeVarint => wincode::config::serialize(v, wincode_varint()).unwrap(),
        }
    }
    /// Owned decode from bytes already in memory (rkyv: bytecheck validation + deserialize).
    fn decode(self, b: &[u8]) -> IndexData {
        match self {
            Codec::Postcard => postcard::from_bytes(b).unwrap(),
            Codec::BitcodeSerde => bitcode::deserialize(b).unwrap(),
            Codec::BitcodeNative => bitcode::decode(b).unwrap(),
            Codec::Rkyv => rkyv::from_bytes::<IndexData, RkyvErr>(b).unwrap(),
            Codec::Wincode => wincode::deserialize_exact(b).unwrap(),
            Codec::WincodeVarint => wincode::config::deserialize_exact(b, wincode_varint()).unwrap(),
        }
    }
}

/// Bytes with 16-byte alignment (rkyv needs it; harmless for the others).
fn aligned(b: &[u8]) -> rkyv::util::AlignedVec<16> {
    let mut v = rkyv::util::AlignedVec::<16>::with_capacity(b.len());
    v.extend_from_slice(b);
    v
}

// ---------------------------------------------------------------- timing

/// Median ns/op over `SAMPLES` samples; each sample runs enough iterations to last >= ~2 ms.
fn time<R>(mut f: impl FnMut() -> R) -> f64 {
    const SAMPLES: usize = 101;
    for _ in 0..3 { black_box(f()); }
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters { black_box(f()); }
        if t.elapsed().as_nanos() >= 2_000_000 || iters >= 1 << 24 { break; }
        iters *= 2;
    }
    let mut s: Vec<f64> = (0..SAMPLES).map(|_| {
        let t = Instant::now();
        for _ in 0..iters { black_box(f()); }
        t.elapsed().as_nanos() as f64 / iters as f64
    }).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[SAMPLES / 2]
}

fn us(ns: f64) -> String { format!("{:.1}", ns / 1000.0) }

fn floor_read(dir: &Path, file: &Path) -> usize {
    let m = std::fs::metadata(dir).unwrap();
    let b = std::fs::read(file).unwrap();
    black_box(m.modified().unwrap());
    b.len()
}

fn steady(inst: &str, v: &IndexData, dir: &Path) {
    println!("\n### {inst}: {} dists, {} entry points, arena {} B\n", v.dists.len(), v.entry_points.len(), v.strings.len());
    println!("| codec | size B | encode µs | decode µs (owned) | rkyv access µs | stat+read µs | blake3 µs | xxh3_64 µs | crc32fast µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in CODECS {
        let bytes = c.encode(v);
        let al = aligned(&bytes);
        let b: &[u8] = &al;
        assert!(c.decode(b) == *v, "round trip {}", c.name());
        let file = dir.join(format!("{inst}.{}", c.key()));
        std::fs::write(&file, &bytes).unwrap();
        let enc = time(|| c.encode(black_box(v)));
        let dec = time(|| c.decode(black_box(b)));
        let acc = if c == Codec::Rkyv {
            us(time(|| rkyv::access::<ArchivedIndexData, RkyvErr>(black_box(b)).unwrap().dists.len()))
        } else { "—".into() };
        let rd = time(|| floor_read(dir, &file));
        let h_b3 = time(|| blake3::hash(black_box(b)));
        let h_x3 = time(|| xxhash_rust::xxh3::xxh3_64(black_box(b)));
        let h_crc = time(|| crc32fast::hash(black_box(b)));
        println!("| {} | {} | {} | {} | {} | {} | {} | {} | {} |", c.name(), bytes.len(), us(enc), us(dec), acc, us(rd), us(h_b3), us(h_x3), us(h_crc));
    }
}

/// One fresh-process consult: stat(dir) + read(file) + xxh3 + decode, first call only.
fn oneshot_child(codec: &str, dir: &str, file: &str) {
    let c = Codec::from_key(codec);
    let t = Instant::now();
    let m = std::fs::metadata(dir).unwrap();
    let raw = std::fs::read(file).unwrap();
    let t_read = t.elapsed();
    // fs::read hands back a malloc'd Vec (16-aligned on glibc); copy only if rkyv would reject it.
    let al;
    let b: &[u8] = if c == Codec::Rkyv && raw.as_ptr() as usize % 16 != 0 { al = aligned(&raw); &al } else { &raw };
    let h = xxhash_rust::xxh3::xxh3_64(b);
    let t_hash = t.elapsed();
    let v = c.decode(b);
    let t_all = t.elapsed();
    black_box((m.len(), h, v.dists.len()));
    println!("{} {} {}", t_read.as_nanos(), (t_hash - t_read).as_nanos(), (t_all - t_hash).as_nanos());
}

fn oneshot(dir: &Path) {
    const RUNS: usize = 101;
    let exe = std::env::current_exe().unwrap();
    let insts = ["d400", "d40"];
    // samples[inst][codec] = per-process [read, hash, decode] ns; codecs interleaved per round
    let mut samples = vec![vec![Vec::<[u64; 3]>::new(); CODECS.len()]; insts.len()];
    for _ in 0..RUNS {
        for (i, inst) in insts.iter().enumerate() {
            for (j, c) in CODECS.iter().enumerate() {
                let file = dir.join(format!("{inst}.{}", c.key()));
                let out = std::process::Command::new(&exe)
                    .args(["child", c.key(), dir.to_str().unwrap(), file.to_str().unwrap()])
                    .output().unwrap();
                let s = String::from_utf8(out.stdout).unwrap();
                let n: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
                samples[i][j].push([n[0], n[1], n[2]]);
            }
        }
    }
    println!("\n### first call in a fresh process (median of {RUNS} processes, codecs interleaved; µs)\n");
    println!("| instance | codec | stat+read | xxh3_64 | decode (owned) | total |");
    println!("|---|---|---:|---:|---:|---:|");
    for (i, inst) in insts.iter().enumerate() {
        for (j, c) in CODECS.iter().enumerate() {
            let rows = &mut samples[i][j];
            let med = |f: &dyn Fn(&[u64; 3]) -> u64| {
                let mut v: Vec<u64> = rows.iter().map(f).collect();
                v.sort();
                v[v.len() / 2] as f64
            };
            let (r, h, d, t) = (med(&|x| x[0]), med(&|x| x[1]), med(&|x| x[2]), med(&|x| x.iter().sum()));
            println!("| {inst} | {} | {} | {} | {} | {} |", c.name(), us(r), us(h), us(d), us(t));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return oneshot_child(&args[2], &args[3], &args[4]);
    }
    let dir: PathBuf = std::env::temp_dir().join("epcache-codec-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let big = build(400, 0xE9CA_C4E0);
    let small = build(40, 0x5EED_0040);
    steady("d400", &big, &dir);
    steady("d40", &small, &dir);
    if args.get(1).map(String::as_str) == Some("oneshot") {
        oneshot(&dir);
    }
}
