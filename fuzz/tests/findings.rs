//! Every file the fuzzing campaign (or an earlier one) found is a regression test: each folder of
//! fixtures/robustness/ is replayed through its target, and none may panic (not even a panic
//! contained natively: in the browser it would have been a trap). Also: inputs are a function of
//! (seed, target, index) alone, so a finding reported by `glassbox-fuzz` replays exactly.

use std::path::PathBuf;

use glassbox_fuzz::{alloc, load_finding, make_input, prepare, run_input, seeds, Target};

#[global_allocator]
static ALLOC: alloc::Capped = alloc::Capped;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_saved_finding_replays_without_a_panic() {
    let dir = root().join("fixtures/robustness");
    let mut replayed = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (target, input) = load_finding(&path).unwrap();
        // The reproductions: tokenizer-* through the tokenizer target, safetensors-*
        // (a bundle) through the safetensors target.
        let target = if name.starts_with("safetensors-") {
            Target::Safetensors
        } else if name.starts_with("tokenizer-") {
            Target::Tokenizer
        } else {
            target
        };
        let (result, finding) = run_input(target, &input, 0);
        assert!(finding.is_none(), "{name}: {}", finding.map(|f| f.message).unwrap_or_default());
        assert!(result.is_err() || name.starts_with("fuzz-"), "{name}: the issue's reproductions are all refused, yet this one loaded");
        replayed += 1;
    }
    assert!(replayed >= 11, "only {replayed} findings under {}", dir.display());
}

#[test]
fn inputs_are_a_function_of_seed_target_and_index() {
    for t in Target::ALL {
        let s = prepare(seeds(&root(), t));
        assert!(!s.is_empty(), "no seeds for {}", t.name());
        let a = make_input(t, &s, 7, 12345);
        let b = make_input(t, &s, 7, 12345);
        assert_eq!(a.files, b.files, "{}", t.name());
        // And the mutations change something: most inputs differ from every seed.
        let changed = (0..50).filter(|&i| {
            let m = make_input(t, &s, 7, i);
            !s.iter().any(|p| p.seed.files == m.files && p.seed.quantize == m.quantize)
        });
        assert!(changed.count() >= 40, "{}: the mutations rarely change the input", t.name());
    }
}

#[test]
fn a_short_campaign_finds_nothing() {
    // A few hundred inputs per target here (the full short run, 20,000 per target, is a step of
    // scripts/test.sh; scripts/fuzz.sh is the long run).
    for t in Target::ALL {
        let s = prepare(seeds(&root(), t));
        let r = glassbox_fuzz::campaign(t, &s, 20_260_101, 0..300, |_| {});
        assert_eq!(r.inputs, 300);
        assert!(r.findings.is_empty(), "{}: {:?}", t.name(), r.findings.iter().map(|f| &f.message).collect::<Vec<_>>());
        // The loaders are reached: some inputs load, most are refused with a message.
        assert!(r.refused > 0, "{}: nothing was refused", t.name());
    }
}
