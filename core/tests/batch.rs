//! A batch of sequences run at once gives each sequence exactly what running it alone gives
//! (logits and every cached hook), on both backends: the batch axis must not leak attention
//! across sequences or mix up their positions.

mod common;
use common::*;
use glassbox_core::{hook_names, Backend, BatchRequest, CacheSpec, CpuBackend, HookedTransformer, Intervention, InterventionOp, RunRequest};

fn batch_equals_singles<B: Backend>(b: &B) {
    let f = fixture("gpt2-tiny");
    let model = HookedTransformer::new(b, f.cfg.clone(), &f.weights).unwrap();
    let n_pos = f.tokens.len();
    // Three different sequences: the fixture's prompt, its reverse, and a rotation.
    let mut seqs = vec![f.tokens.clone(), f.tokens.iter().rev().copied().collect::<Vec<_>>()];
    seqs.push(f.tokens.iter().cycle().skip(3).take(n_pos).copied().collect());
    let names = hook_names(&f.cfg);
    let tokens: Vec<u32> = seqs.concat();
    let batch = pollster::block_on(model.run_batch(b, &BatchRequest::uniform(&tokens, seqs.len(), &CacheSpec::Names(names.clone())).unwrap())).unwrap();
    assert_eq!(batch.len(), seqs.len());
    for (i, seq) in seqs.iter().enumerate() {
        let single = pollster::block_on(model.run(b, &RunRequest::new(seq.clone()).cache_all())).unwrap();
        let item = &batch[i];
        assert_eq!(item.logits.shape, vec![n_pos, f.cfg.d_vocab_out]);
        assert_eq!(item.cache.len(), names.len());
        let tol = |x: &[f32], y: &[f32], what: &str| {
            let scale = y.iter().fold(0f32, |m, v| if v.is_finite() { m.max(v.abs()) } else { m });
            for (a, c) in x.iter().zip(y) {
                let same = a == c || (a - c).abs() <= 1e-5 + 1e-5 * scale;
                assert!(same, "{what} of sequence {i}: {a} vs {c}");
            }
        };
        tol(&item.logits.data, &single.logits.data, "logits");
        for (name, t) in &item.cache {
            let one = single.get(name).unwrap();
            assert_eq!(t.shape, one.shape, "{name} shape");
            tol(&t.data, &one.data, name);
        }
    }
    // A batch that does not split evenly, or has an id outside the vocabulary, is an error.
    assert!(model.forward_batch(b, &tokens[..tokens.len() - 1], 3).is_err());
    assert!(model.forward_batch(b, &[f.cfg.d_vocab as u32, 0], 1).is_err());
}

/// Each item of a batch carries its own interventions and cache spec (a patching sweep: item
/// i patches its own position): the batch gives each item what running it alone gives.
fn items_keep_their_own_interventions<B: Backend>(b: &B) {
    let f = fixture("gpt2-tiny");
    let model = HookedTransformer::new(b, f.cfg.clone(), &f.weights).unwrap();
    let n_pos = f.tokens.len();
    let corrupted: Vec<u32> = f.tokens.iter().rev().copied().collect();
    let hook = "blocks.0.hook_resid_pre";
    let clean = pollster::block_on(model.run(b, &RunRequest::new(f.tokens.clone()).cache(&[hook]))).unwrap();
    let clean_resid = clean.get(hook).unwrap().clone();
    // Item p patches the clean residual stream into the corrupted run at position p; item
    // n_pos zeroes head 1's z everywhere and caches the pattern; one item does nothing.
    let mut items: Vec<RunRequest> = (0..n_pos)
        .map(|p| {
            RunRequest::new(corrupted.clone())
                .cache(&[hook])
                .intervene(Intervention::new(hook, InterventionOp::Replace(clean_resid.clone())).at_positions(vec![p]))
        })
        .collect();
    items.push(
        RunRequest::new(corrupted.clone())
            .cache(&["blocks.1.attn.hook_z", "blocks.1.attn.hook_pattern"])
            .intervene(Intervention::new("blocks.1.attn.hook_z", InterventionOp::Zero).at_head(1)),
    );
    items.push(RunRequest::new(corrupted.clone()));
    let batch = pollster::block_on(model.run_batch(b, &BatchRequest::new(items.clone()))).unwrap();
    assert_eq!(batch.len(), items.len());
    for (i, (req, got)) in items.iter().zip(&batch).enumerate() {
        let alone = pollster::block_on(model.run(b, req)).unwrap();
        assert_eq!(
            got.cache.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            alone.cache.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "item {i} caches what it asked for"
        );
        let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(a, c)| a == c || (a - c).abs() <= 1e-4 + 1e-4 * c.abs());
        assert!(close(&got.logits.data, &alone.logits.data), "item {i} logits");
        for ((name, t), (_, u)) in got.cache.iter().zip(&alone.cache) {
            assert!(close(&t.data, &u.data), "item {i} {name}");
        }
    }
    // The patches really differ between items: position 0's patch changes little at the end,
    // patching every position reproduces the clean run at the patched hook.
    let last = n_pos - 1;
    assert_eq!(batch[last].get(hook).unwrap().row(last), clean_resid.row(last));
    assert_ne!(batch[0].logits.data, batch[last].logits.data);
    // Items of different lengths are refused with a message.
    let err = pollster::block_on(model.run_batch(b, &BatchRequest::new(vec![RunRequest::new(vec![1, 2]), RunRequest::new(vec![1])]))).unwrap_err();
    assert!(err.to_string().contains("equal lengths"), "{err}");
}

#[test]
fn items_keep_their_own_interventions_cpu() {
    items_keep_their_own_interventions(&CpuBackend);
}

#[test]
fn items_keep_their_own_interventions_gpu() {
    let _g = gpu_lock();
    items_keep_their_own_interventions(gpu());
}

#[test]
fn batch_equals_singles_cpu() {
    batch_equals_singles(&CpuBackend);
}

#[test]
fn batch_equals_singles_gpu() {
    let _g = gpu_lock();
    batch_equals_singles(gpu());
}
