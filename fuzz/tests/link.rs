//! The share-link decoder (`glassbox_core::share::parse_fragment`) on 100,000 mutated links: no
//! panic, every link that opens is written back and opens the same, and the mutations reach
//! every stage (base64, inflate, the JSON decoder, the limits, the parameters). Seconds, not
//! minutes: `glassbox-fuzz --target link` is the long run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use glassbox_fuzz::{alloc, make_input, prepare, run_input, seeds, Target};

#[global_allocator]
static ALLOC: alloc::Capped = alloc::Capped;

#[test]
fn a_hundred_thousand_mutated_links_decode_without_a_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let s = prepare(seeds(&root, Target::Link));
    // The committed fixtures/links/v1 links and the experiment target's seeds.
    assert!(s.len() >= 8, "only {} link seeds", s.len());
    let seed_links: Vec<&[u8]> = s.iter().map(|p| p.seed.files[0].1.as_slice()).collect();
    let n = 100_000u64;
    let t0 = Instant::now();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut unchanged = 0;
    for i in 0..n {
        let input = make_input(Target::Link, &s, 20_260_401, i);
        unchanged += seed_links.contains(&input.files[0].1.as_slice()) as u64;
        let (r, finding) = run_input(Target::Link, &input, i);
        if let Some(f) = finding {
            panic!("input #{i} panicked: {}\n{:?}", f.message, String::from_utf8_lossy(&input.files[0].1).chars().take(400).collect::<String>());
        }
        let kind = match &r {
            Ok(()) => "ok".to_string(),
            Err(m) => m.split(':').next().unwrap_or_default().to_string(),
        };
        assert_ne!(kind, "round trip", "input #{i}: {r:?}\n{:?}", String::from_utf8_lossy(&input.files[0].1));
        *kinds.entry(kind).or_default() += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("{n} links in {secs:.1} s ({:.1} us each): {kinds:?}", secs * 1e6 / n as f64);
    assert!(unchanged < n / 20, "{unchanged} inputs are unmutated seeds");
    // Every stage is reached, and a fair share of links still open (the JSON decoder's ground).
    let stages = [
        "ok",
        "no_prefix",
        "unknown_format",
        "too_large",
        "bad_base64",
        "truncated",
        "not_deflate",
        "inflate_limit",
        "not_experiment",
        "future_experiment",
        "too_long",
        "bad_value",
        "unknown_widget",
        "bad_parameter",
    ];
    for k in stages {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no input reached {k}: {kinds:?}");
    }
    assert!(kinds["ok"] > n / 20 && kinds["not_experiment"] > n / 20, "{kinds:?}");
}
