//! A batch of sequences run at once gives each sequence exactly what running it alone gives
//! (logits and every cached hook), on both backends: the batch axis must not leak attention
//! across sequences or mix up their positions.

mod common;
use common::*;
use glassbox_core::{hook_names, Backend, CpuBackend, HookedTransformer, RunRequest};

fn batch_equals_singles<B: Backend>(b: &B) {
    let f = fixture("gpt2-tiny");
    let model = HookedTransformer::new(b, f.cfg.clone(), &f.weights).unwrap();
    let n_pos = f.tokens.len();
    // Three different sequences: the fixture's prompt, its reverse, and a rotation.
    let mut seqs = vec![f.tokens.clone(), f.tokens.iter().rev().copied().collect::<Vec<_>>()];
    seqs.push(f.tokens.iter().cycle().skip(3).take(n_pos).copied().collect());
    let names = hook_names(&f.cfg);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let tokens: Vec<u32> = seqs.concat();
    let batch = pollster::block_on(model.run_batch(b, &tokens, seqs.len(), &refs)).unwrap();
    assert_eq!(batch.logits.shape, vec![seqs.len(), n_pos, f.cfg.d_vocab_out]);
    for (i, seq) in seqs.iter().enumerate() {
        let single = pollster::block_on(model.run(b, &RunRequest::new(seq.clone()).cache_all())).unwrap();
        let part = |t: &glassbox_core::HostTensor| {
            let n = t.data.len() / seqs.len();
            t.data[i * n..(i + 1) * n].to_vec()
        };
        let tol = |x: &[f32], y: &[f32], what: &str| {
            let scale = y.iter().fold(0f32, |m, v| if v.is_finite() { m.max(v.abs()) } else { m });
            for (a, c) in x.iter().zip(y) {
                let same = a == c || (a - c).abs() <= 1e-5 + 1e-5 * scale;
                assert!(same, "{what} of sequence {i}: {a} vs {c}");
            }
        };
        tol(&part(&batch.logits), &single.logits.data, "logits");
        for (name, t) in &batch.cache {
            let one = single.get(name).unwrap();
            assert_eq!(&t.shape[1..], &one.shape[..], "{name} shape");
            tol(&part(t), &one.data, name);
        }
    }
    // A batch that does not split evenly, or has an id outside the vocabulary, is an error.
    assert!(model.forward_batch(b, &tokens[..tokens.len() - 1], 3).is_err());
    assert!(model.forward_batch(b, &[f.cfg.d_vocab as u32, 0], 1).is_err());
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
