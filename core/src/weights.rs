//! The weights of a GPT-2-architecture model, named as TransformerLens names them, and their
//! loading from (and saving to) Hugging Face GPT-2 safetensors.
//!
//! Layouts are the ones the forward pass multiplies with: every matrix is `[in, out]`
//! (`x @ W`), like Hugging Face's GPT-2 `Conv1D`. Hugging Face's fused `c_attn` is split into
//! `W_Q`, `W_K`, `W_V` at load time so that each of q, k, v is one matmul and one hook.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};

use crate::config::Config;
use crate::tensor::HostTensor;
use crate::{Error, Result};

/// One block's weights. `T` is a backend tensor, or [`HostTensor`] before upload.
#[derive(Clone, Debug)]
pub struct BlockWeights<T> {
    pub ln1_w: T, // [d_model]
    pub ln1_b: T, // [d_model]
    pub W_Q: T,   // [d_model, n_heads * d_head]
    pub b_Q: T,   // [n_heads * d_head]
    pub W_K: T,   // [d_model, n_heads * d_head]
    pub b_K: T,   // [n_heads * d_head]
    pub W_V: T,   // [d_model, n_heads * d_head]
    pub b_V: T,   // [n_heads * d_head]
    pub W_O: T,   // [n_heads * d_head, d_model]
    pub b_O: T,   // [d_model]
    /// `None` in an attention-only model.
    pub mlp: Option<MlpWeights<T>>,
}

/// One block's MLP and the LayerNorm before it.
#[derive(Clone, Debug)]
pub struct MlpWeights<T> {
    pub ln2_w: T, // [d_model]
    pub ln2_b: T, // [d_model]
    pub W_in: T,  // [d_model, d_mlp]
    pub b_in: T,  // [d_mlp]
    pub W_out: T, // [d_mlp, d_model]
    pub b_out: T, // [d_model]
}

/// All weights of a model.
#[derive(Clone, Debug)]
pub struct ModelWeights<T> {
    pub W_E: T,   // [d_vocab, d_model]
    pub W_pos: T, // [n_ctx, d_model]
    pub blocks: Vec<BlockWeights<T>>,
    pub ln_final_w: T, // [d_model]
    pub ln_final_b: T, // [d_model]
    /// `[d_model, d_vocab_out]`; the transpose of `W_E` when the embeddings are tied.
    pub W_U: T,
}

impl<T> ModelWeights<T> {
    /// Applies `f` to every tensor (for example: upload to a backend), in a fixed order.
    pub fn try_map<U, E>(&self, mut f: impl FnMut(&str, &T) -> std::result::Result<U, E>) -> std::result::Result<ModelWeights<U>, E> {
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            let mut g = |n: &str, t: &T| f(&format!("blocks.{i}.{n}"), t);
            blocks.push(BlockWeights {
                ln1_w: g("ln1.w", &b.ln1_w)?,
                ln1_b: g("ln1.b", &b.ln1_b)?,
                W_Q: g("attn.W_Q", &b.W_Q)?,
                b_Q: g("attn.b_Q", &b.b_Q)?,
                W_K: g("attn.W_K", &b.W_K)?,
                b_K: g("attn.b_K", &b.b_K)?,
                W_V: g("attn.W_V", &b.W_V)?,
                b_V: g("attn.b_V", &b.b_V)?,
                W_O: g("attn.W_O", &b.W_O)?,
                b_O: g("attn.b_O", &b.b_O)?,
                mlp: match &b.mlp {
                    None => None,
                    Some(m) => Some(MlpWeights {
                        ln2_w: g("ln2.w", &m.ln2_w)?,
                        ln2_b: g("ln2.b", &m.ln2_b)?,
                        W_in: g("mlp.W_in", &m.W_in)?,
                        b_in: g("mlp.b_in", &m.b_in)?,
                        W_out: g("mlp.W_out", &m.W_out)?,
                        b_out: g("mlp.b_out", &m.b_out)?,
                    }),
                },
            });
        }
        Ok(ModelWeights {
            W_E: f("embed.W_E", &self.W_E)?,
            W_pos: f("pos_embed.W_pos", &self.W_pos)?,
            blocks,
            ln_final_w: f("ln_final.w", &self.ln_final_w)?,
            ln_final_b: f("ln_final.b", &self.ln_final_b)?,
            W_U: f("unembed.W_U", &self.W_U)?,
        })
    }
}

/// Reads one tensor of a safetensors file as f32, whatever its float dtype.
fn to_f32(name: &str, view: &safetensors::tensor::TensorView<'_>) -> Result<HostTensor> {
    let bytes = view.data();
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        other => return Err(Error::Weights(format!("tensor {name} has unsupported dtype {other:?}"))),
    };
    Ok(HostTensor::new(view.shape().to_vec(), data))
}

/// Parses a safetensors file into named f32 host tensors. Malformed input is an error, never
/// a panic: the header parser of the `safetensors` crate bounds every offset by the file size.
pub fn read_safetensors(bytes: &[u8]) -> Result<HashMap<String, HostTensor>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Weights(format!("not a valid safetensors file ({e})")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        out.insert(name.clone(), to_f32(&name, &view)?);
    }
    Ok(out)
}

impl ModelWeights<HostTensor> {
    /// Builds the weights from Hugging Face GPT-2 tensors (with or without the `transformer.`
    /// prefix), checking every shape against the config.
    pub fn from_hf_gpt2(cfg: &Config, mut tensors: HashMap<String, HostTensor>) -> Result<ModelWeights<HostTensor>> {
        let mut take = |name: &str, shape: &[usize]| -> Result<HostTensor> {
            let t = tensors
                .remove(&format!("transformer.{name}"))
                .or_else(|| tensors.remove(name))
                .ok_or_else(|| Error::Weights(format!("tensor {name} is missing")))?;
            if t.shape != shape {
                return Err(Error::Weights(format!("tensor {name} has shape {:?}, the config expects {shape:?}", t.shape)));
            }
            Ok(t)
        };
        let (d, v) = (cfg.d_model, cfg.d_vocab);
        let hd = cfg.n_heads * cfg.d_head;
        let w_e = take("wte.weight", &[v, d])?;
        let w_pos = take("wpe.weight", &[cfg.n_ctx, d])?;
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let p = |s: &str| format!("h.{l}.{s}");
            let c_attn = take(&p("attn.c_attn.weight"), &[d, 3 * hd])?;
            let c_attn_b = take(&p("attn.c_attn.bias"), &[3 * hd])?;
            let bias = |i: usize| HostTensor::new(vec![hd], c_attn_b.data[i * hd..(i + 1) * hd].to_vec());
            let mlp = match cfg.d_mlp {
                None => None,
                Some(m) => Some(MlpWeights {
                    ln2_w: take(&p("ln_2.weight"), &[d])?,
                    ln2_b: take(&p("ln_2.bias"), &[d])?,
                    W_in: take(&p("mlp.c_fc.weight"), &[d, m])?,
                    b_in: take(&p("mlp.c_fc.bias"), &[m])?,
                    W_out: take(&p("mlp.c_proj.weight"), &[m, d])?,
                    b_out: take(&p("mlp.c_proj.bias"), &[d])?,
                }),
            };
            blocks.push(BlockWeights {
                ln1_w: take(&p("ln_1.weight"), &[d])?,
                ln1_b: take(&p("ln_1.bias"), &[d])?,
                W_Q: c_attn.columns(0, hd),
                W_K: c_attn.columns(hd, 2 * hd),
                W_V: c_attn.columns(2 * hd, 3 * hd),
                b_Q: bias(0),
                b_K: bias(1),
                b_V: bias(2),
                W_O: take(&p("attn.c_proj.weight"), &[hd, d])?,
                b_O: take(&p("attn.c_proj.bias"), &[d])?,
                mlp,
            });
        }
        let ln_final_w = take("ln_f.weight", &[d])?;
        let ln_final_b = take("ln_f.bias", &[d])?;
        // An untied model stores its unembedding as nn.Linear's [d_vocab_out, d_model].
        let w_u = if cfg.tied_embeddings {
            w_e.transpose2()
        } else {
            take("lm_head.weight", &[cfg.d_vocab_out, d])?.transpose2()
        };
        Ok(ModelWeights { W_E: w_e, W_pos: w_pos, blocks, ln_final_w, ln_final_b, W_U: w_u })
    }

    /// The tensors in Hugging Face GPT-2 naming and layout (the inverse of [`from_hf_gpt2`]).
    pub fn to_hf_gpt2(&self, cfg: &Config) -> Vec<(String, HostTensor)> {
        let mut out = vec![
            ("transformer.wte.weight".to_string(), self.W_E.clone()),
            ("transformer.wpe.weight".to_string(), self.W_pos.clone()),
        ];
        for (l, b) in self.blocks.iter().enumerate() {
            let p = |s: &str| format!("transformer.h.{l}.{s}");
            let (d, hd) = (cfg.d_model, cfg.n_heads * cfg.d_head);
            let mut c_attn = Vec::with_capacity(d * 3 * hd);
            for r in 0..d {
                for w in [&b.W_Q, &b.W_K, &b.W_V] {
                    c_attn.extend_from_slice(&w.data[r * hd..(r + 1) * hd]);
                }
            }
            let c_attn_b: Vec<f32> = [&b.b_Q, &b.b_K, &b.b_V].iter().flat_map(|t| t.data.iter().copied()).collect();
            out.push((p("ln_1.weight"), b.ln1_w.clone()));
            out.push((p("ln_1.bias"), b.ln1_b.clone()));
            out.push((p("attn.c_attn.weight"), HostTensor::new(vec![d, 3 * hd], c_attn)));
            out.push((p("attn.c_attn.bias"), HostTensor::new(vec![3 * hd], c_attn_b)));
            out.push((p("attn.c_proj.weight"), b.W_O.clone()));
            out.push((p("attn.c_proj.bias"), b.b_O.clone()));
            if let Some(m) = &b.mlp {
                out.push((p("ln_2.weight"), m.ln2_w.clone()));
                out.push((p("ln_2.bias"), m.ln2_b.clone()));
                out.push((p("mlp.c_fc.weight"), m.W_in.clone()));
                out.push((p("mlp.c_fc.bias"), m.b_in.clone()));
                out.push((p("mlp.c_proj.weight"), m.W_out.clone()));
                out.push((p("mlp.c_proj.bias"), m.b_out.clone()));
            }
        }
        out.push(("transformer.ln_f.weight".to_string(), self.ln_final_w.clone()));
        out.push(("transformer.ln_f.bias".to_string(), self.ln_final_b.clone()));
        if !cfg.tied_embeddings {
            out.push(("lm_head.weight".to_string(), self.W_U.transpose2()));
        }
        out
    }
}

/// Serializes named f32 tensors as a safetensors file.
pub fn write_safetensors(tensors: &[(String, HostTensor)]) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.data.iter().flat_map(|x| x.to_le_bytes()).collect(), t.shape.clone()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, b, s)| Ok((n.clone(), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| Error::Weights(e.to_string()))?)))
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::Weights(e.to_string()))
}
