//! `glassbox-fuzz`: the fuzzing campaign over glassbox's loaders (see the library's docs).
//!
//! ```text
//! glassbox-fuzz [--target NAME|all] [--iters N] [--seed S] [--threads T] [--only INDEX] [--save DIR]
//! ```
//! Runs inputs 0..N of each target (seeded: the same inputs on every machine), on T threads,
//! under a memory cap, and prints a table. Findings (panics, contained or not) are written to
//! DIR (default `fixtures/robustness/`) and make the exit status 1. `--only` replays one input.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use glassbox_fuzz::{alloc, campaign, make_input, prepare, run_input, save_finding, seeds, Report, Target};

#[global_allocator]
static ALLOC: alloc::Capped = alloc::Capped;

fn usage(msg: &str) -> ! {
    eprintln!("glassbox-fuzz: {msg}\nusage: glassbox-fuzz [--target gguf|safetensors|config|tokenizer|vocab|experiment|link|all] [--iters N] [--seed S] [--threads T] [--only INDEX [--keep MESSAGE]] [--save DIR]");
    std::process::exit(2);
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut targets: Vec<Target> = Target::ALL.to_vec();
    let (mut iters, mut seed, mut only, mut save) = (20_000u64, 1u64, None::<u64>, root.join("fixtures/robustness"));
    let mut keep: Option<String> = None;
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{a} needs a value")));
        match a.as_str() {
            "--target" => {
                let v = value();
                targets = if v == "all" { Target::ALL.to_vec() } else { vec![Target::parse(&v).unwrap_or_else(|| usage(&format!("no target {v}")))] };
            }
            "--iters" => iters = value().parse().unwrap_or_else(|_| usage("--iters takes a number")),
            "--seed" => seed = value().parse().unwrap_or_else(|_| usage("--seed takes a number")),
            "--threads" => threads = value().parse::<usize>().unwrap_or_else(|_| usage("--threads takes a number")).max(1),
            "--only" => only = Some(value().parse().unwrap_or_else(|_| usage("--only takes a number"))),
            "--save" => save = PathBuf::from(value()),
            // With --only: keep the input as a regression file whatever happens now (an input
            // that hit the memory cap aborted before it could be saved), with this message.
            "--keep" => keep = Some(value()),
            "--help" | "-h" => usage("structure-aware mutation fuzzing of the model loaders"),
            other => usage(&format!("unknown argument {other}")),
        }
    }

    if let Some(index) = only {
        for t in targets {
            let s = prepare(seeds(&root, t));
            let input = make_input(t, &s, seed, index);
            let (r, finding) = run_input(t, &input, index);
            println!("{} #{index} ({}): {:?}", t.name(), input.name, r.as_ref().map_err(|e| e.chars().take(300).collect::<String>()));
            let finding =
                finding.or_else(|| keep.clone().map(|message| glassbox_fuzz::Finding { target: t, index, input: input.clone(), message, contained: false }));
            if let Some(f) = finding {
                println!("FINDING: {}", f.message);
                let dir = save_finding(&save, &f, seed).expect("writing the finding");
                println!("saved to {}", dir.display());
            }
        }
        return;
    }

    // Work: chunks of each target's range, shared by the threads.
    const CHUNK: u64 = 250;
    let mut work = Vec::new();
    let mut seed_sets = BTreeMap::new();
    for &t in &targets {
        let s = prepare(seeds(&root, t));
        if s.is_empty() {
            usage(&format!("no seeds found for target {} under {}", t.name(), root.display()));
        }
        seed_sets.insert(t.name(), Arc::new(s));
        let mut start = 0;
        while start < iters {
            work.push((t, start..(start + CHUNK).min(iters)));
            start += CHUNK;
        }
    }
    work.reverse();
    let work = Arc::new(Mutex::new(work));
    let reports: Arc<Mutex<BTreeMap<&'static str, Report>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let t0 = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (work, reports, seed_sets, save) = (work.clone(), reports.clone(), seed_sets.clone(), save.clone());
            std::thread::spawn(move || loop {
                let Some((t, range)) = work.lock().unwrap_or_else(|e| e.into_inner()).pop() else { break };
                let s = seed_sets[t.name()].clone();
                let r = campaign(t, &s, seed, range, |f| {
                    eprintln!("FINDING in {} #{}: {}", t.name(), f.index, f.message);
                    match save_finding(&save, f, seed) {
                        Ok(d) => eprintln!("  saved to {}", d.display()),
                        Err(e) => eprintln!("  could not save it: {e}"),
                    }
                });
                let mut all = reports.lock().unwrap_or_else(|e| e.into_inner());
                let acc = all.entry(t.name()).or_default();
                acc.inputs += r.inputs;
                acc.loaded += r.loaded;
                acc.refused += r.refused;
                acc.seconds += r.seconds;
                if r.slowest_ms > acc.slowest_ms {
                    acc.slowest_ms = r.slowest_ms;
                    acc.slowest_index = r.slowest_index;
                }
                acc.findings.extend(r.findings);
                // A long run reports each target as soon as it is done (the table comes at the
                // end; a run stopped early still says what it finished).
                if acc.inputs == iters {
                    eprintln!(
                        "glassbox-fuzz: {} done: {} inputs, {} loaded, {} refused, {} finding(s)",
                        t.name(),
                        acc.inputs,
                        acc.loaded,
                        acc.refused,
                        acc.findings.len()
                    );
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let reports = reports.lock().unwrap_or_else(|e| e.into_inner());
    println!("glassbox-fuzz: seed {seed}, {iters} inputs per target, {threads} threads, {:.1} s wall", t0.elapsed().as_secs_f64());
    println!("{:<12} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12}", "target", "inputs", "loaded", "refused", "panics", "cpu s", "slowest ms");
    let mut total_findings = 0;
    for t in &targets {
        let r = &reports[t.name()];
        total_findings += r.findings.len();
        println!(
            "{:<12} {:>9} {:>9} {:>9} {:>9} {:>10.1} {:>8.1} (#{})",
            t.name(),
            r.inputs,
            r.loaded,
            r.refused,
            r.findings.len(),
            r.seconds,
            r.slowest_ms,
            r.slowest_index
        );
    }
    println!("largest single allocation: {:.1} MB (cap {} MB)", alloc::peak_allocation() as f64 / 1e6, alloc::MAX_ONE >> 20);
    if total_findings > 0 {
        eprintln!("glassbox-fuzz: {total_findings} finding(s), saved under {}", save.display());
        std::process::exit(1);
    }
}
