//! Bad model files give clear errors, never panics.

mod common;
use common::*;
use glassbox_core::weights::read_safetensors;
use glassbox_core::{Config, ModelWeights};

#[test]
fn truncated_and_garbage_weights_are_errors() {
    let bytes = std::fs::read(repo_root().join("fixtures/gpt2-tiny/model.safetensors")).unwrap();
    for cut in [0, 3, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = read_safetensors(&bytes[..cut]).unwrap_err().to_string();
        assert!(err.contains("not a valid safetensors file"), "cut at {cut}: {err}");
    }
    assert!(read_safetensors(b"<html>404 Not Found</html>").is_err());
}

#[test]
fn weights_that_do_not_fit_the_config_are_named() {
    let dir = repo_root().join("fixtures/gpt2-tiny");
    let json = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let tensors = read_safetensors(&std::fs::read(dir.join("model.safetensors")).unwrap()).unwrap();
    let mut cfg = Config::from_hf_json(&json).unwrap();
    cfg.n_layers = 4;
    let err = ModelWeights::from_hf_gpt2(&cfg, tensors.clone()).unwrap_err().to_string();
    assert!(err.contains("h.3.") && err.contains("missing"), "{err}");
    let mut cfg = Config::from_hf_json(&json).unwrap();
    cfg.d_vocab = 100;
    let err = ModelWeights::from_hf_gpt2(&cfg, tensors).unwrap_err().to_string();
    assert!(err.contains("wte.weight") && err.contains("shape"), "{err}");
}

#[test]
fn bad_configs_are_errors() {
    assert!(Config::from_hf_json("{").is_err());
    // A Llama config with GPT-2's keys lacks Llama's: the message names the missing key.
    assert!(Config::from_hf_json(r#"{"model_type":"llama","n_layer":1,"n_embd":8,"n_head":2,"n_positions":8,"vocab_size":8}"#)
        .unwrap_err()
        .to_string()
        .contains("hidden_size"));
    // An unsupported family is named.
    assert!(Config::from_hf_json(r#"{"model_type":"bert","hidden_size":8}"#).unwrap_err().to_string().contains("\"bert\""));
    // RoPE scaling is refused by name.
    let scaled = r#"{"model_type":"llama","hidden_size":8,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":16,"vocab_size":8,"max_position_embeddings":8,"rope_scaling":{"rope_type":"yarn","factor":4.0}}"#;
    assert!(Config::from_hf_json(scaled).unwrap_err().to_string().contains("yarn"));
    // Heads that do not share key/value heads evenly.
    let gqa = r#"{"model_type":"llama","hidden_size":12,"num_attention_heads":3,"num_key_value_heads":2,"num_hidden_layers":1,"intermediate_size":16,"vocab_size":8,"max_position_embeddings":8}"#;
    assert!(Config::from_hf_json(gqa).unwrap_err().to_string().contains("key/value heads"));
    assert!(Config::from_hf_json(r#"{"n_layer":1,"n_embd":9,"n_head":2,"n_positions":8,"vocab_size":8}"#).is_err());
    assert!(Config::from_hf_json(r#"{"n_layer":100000,"n_embd":8,"n_head":2,"n_positions":8,"vocab_size":8}"#).unwrap_err().to_string().contains("n_layers"));
}

#[test]
fn config_round_trips_through_hf_json() {
    let cfg = Config::from_hf_json(&std::fs::read_to_string(repo_root().join("fixtures/attn-only-tiny/config.json")).unwrap()).unwrap();
    assert!(cfg.attn_only() && !cfg.tied_embeddings);
    assert_eq!(Config::from_hf_json(&cfg.to_hf_json()).unwrap(), cfg);
}

#[test]
fn weights_round_trip_through_safetensors() {
    let f = fixture("attn-only-tiny");
    let bytes = glassbox_core::weights::write_safetensors(&f.weights.to_hf_gpt2(&f.cfg)).unwrap();
    let back = ModelWeights::from_hf_gpt2(&f.cfg, read_safetensors(&bytes).unwrap()).unwrap();
    assert_eq!(back.W_U, f.weights.W_U);
    assert_eq!(back.blocks[1].W_V, f.weights.blocks[1].W_V);
}
