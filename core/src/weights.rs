//! The weights of a hooked transformer, named as TransformerLens names them, and their loading
//! from (and saving to) Hugging Face safetensors (GPT-2, Llama, Qwen2, GPT-NeoX; f32, f16, bf16;
//! sharded). GGUF files are read by `gguf_model.rs` into the same structure.
//!
//! Dense layouts are the ones the forward pass multiplies with: every matrix is `[in, out]`
//! (`x @ W`), like Hugging Face's GPT-2 `Conv1D`; nn.Linear weights are transposed at load.
//! Fused q/k/v matrices (GPT-2's `c_attn`, GPT-NeoX's `query_key_value`) are split into `W_Q`,
//! `W_K`, `W_V` so that each of q, k, v is one matmul and one hook. Quantized matrices
//! ([`HostMatrix::Quant`]) keep GGUF's layout; the backend decides whether to keep them so.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};

use crate::config::{Arch, Config};
use crate::gguf::GgmlType;
use crate::tensor::HostTensor;
use crate::{Error, Result};

/// A weight matrix on the host, before upload: dense f32, or GGUF blocks kept as they are so
/// that a backend can keep them quantized.
#[derive(Clone, Debug, PartialEq)]
pub enum HostMatrix {
    /// f32 in the orientation the forward pass multiplies with: `[in, out]` for a linear layer
    /// (`x @ W`), `[d_vocab, d_model]` for the embedding table.
    Dense(HostTensor),
    /// GGUF blocks of a matrix stored as GGUF stores it (see [`QuantMatrix`]).
    Quant(QuantMatrix),
}

/// GGUF blocks of a `[rows, cols]` matrix quantized along `cols`: for a linear layer rows are
/// its outputs and cols its inputs (nn.Linear's layout, the transpose of our dense `[in, out]`);
/// for the embedding table rows are tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantMatrix {
    pub ggml_type: GgmlType,
    pub rows: usize,
    pub cols: usize,
    /// The blocks, shared (a tied unembedding is the same table).
    pub bytes: Arc<[u8]>,
}

/// How a matrix is used, which fixes how a quantized one is read (see [`HostMatrix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixRole {
    /// `x @ W`, dense `[in, out]`.
    Linear,
    /// Rows gathered by token id, `[d_vocab, d_model]`.
    Table,
}

impl QuantMatrix {
    /// The blocks dequantized to f32 `[rows, cols]`.
    pub fn dequantize(&self) -> Result<HostTensor> {
        let mut out = vec![0f32; self.rows * self.cols];
        crate::gguf::dequantize(self.ggml_type, &self.bytes, &mut out)?;
        Ok(HostTensor::new(vec![self.rows, self.cols], out))
    }
}

impl HostMatrix {
    /// The dense f32 form in the forward pass's orientation for `role`.
    pub fn dense(&self, role: MatrixRole) -> Result<HostTensor> {
        match (self, role) {
            (HostMatrix::Dense(t), _) => Ok(t.clone()),
            (HostMatrix::Quant(q), MatrixRole::Table) => q.dequantize(),
            (HostMatrix::Quant(q), MatrixRole::Linear) => Ok(q.dequantize()?.transpose2()),
        }
    }

    /// The shape in the forward pass's orientation for `role`.
    pub fn shape(&self, role: MatrixRole) -> Vec<usize> {
        match (self, role) {
            (HostMatrix::Dense(t), _) => t.shape.clone(),
            (HostMatrix::Quant(q), MatrixRole::Table) => vec![q.rows, q.cols],
            (HostMatrix::Quant(q), MatrixRole::Linear) => vec![q.cols, q.rows],
        }
    }

    /// Bytes this matrix takes on the host (and, kept as it is, on a backend).
    pub fn n_bytes(&self) -> usize {
        match self {
            HostMatrix::Dense(t) => 4 * t.len(),
            HostMatrix::Quant(q) => q.bytes.len(),
        }
    }

    /// The storage format's name: "F32" or the ggml type.
    pub fn format_name(&self) -> &'static str {
        match self {
            HostMatrix::Dense(_) => "F32",
            HostMatrix::Quant(q) => q.ggml_type.name(),
        }
    }
}

/// Something that can stand for a host matrix: a [`HostMatrix`], or a dense [`HostTensor`]
/// (training and the small shipped models work with dense tensors only).
pub trait MatrixSource {
    fn to_matrix(&self) -> Cow<'_, HostMatrix>;
    fn n_bytes(&self) -> usize;
    /// The GGUF blocks, when the matrix is kept quantized.
    fn as_quant(&self) -> Option<&QuantMatrix> {
        None
    }
}

/// Whether `u` reads the very blocks of `e` (a tied, quantized unembedding).
pub fn shares_blocks<M: MatrixSource>(e: &M, u: &M) -> bool {
    matches!((e.as_quant(), u.as_quant()), (Some(e), Some(u)) if Arc::ptr_eq(&e.bytes, &u.bytes))
}

impl MatrixSource for HostMatrix {
    fn to_matrix(&self) -> Cow<'_, HostMatrix> {
        Cow::Borrowed(self)
    }
    fn n_bytes(&self) -> usize {
        HostMatrix::n_bytes(self)
    }
    fn as_quant(&self) -> Option<&QuantMatrix> {
        match self {
            HostMatrix::Quant(q) => Some(q),
            HostMatrix::Dense(_) => None,
        }
    }
}

impl MatrixSource for HostTensor {
    fn to_matrix(&self) -> Cow<'_, HostMatrix> {
        Cow::Owned(HostMatrix::Dense(self.clone()))
    }
    fn n_bytes(&self) -> usize {
        4 * self.len()
    }
}

/// One block's weights. `T` is a backend tensor (vectors: norm weights, biases), or
/// [`HostTensor`] before upload; `M` the type of its matrices (a backend's matrix, or
/// [`HostMatrix`] / [`HostTensor`] on the host). Biases and norm biases are `None` where the
/// family has none (Llama: no biases; RMSNorm: no bias).
#[derive(Clone, Debug)]
pub struct BlockWeights<T, M = T> {
    pub ln1_w: T,         // [d_model]
    pub ln1_b: Option<T>, // [d_model]
    pub W_Q: M,           // [d_model, n_heads * d_head]
    pub b_Q: Option<T>,   // [n_heads * d_head]
    pub W_K: M,           // [d_model, n_kv_heads * d_head]
    pub b_K: Option<T>,   // [n_kv_heads * d_head]
    pub W_V: M,           // [d_model, n_kv_heads * d_head]
    pub b_V: Option<T>,   // [n_kv_heads * d_head]
    pub W_O: M,           // [n_heads * d_head, d_model]
    pub b_O: Option<T>,   // [d_model]
    /// `None` in an attention-only model.
    pub mlp: Option<MlpWeights<T, M>>,
}

/// One block's MLP and the norm before it.
#[derive(Clone, Debug)]
pub struct MlpWeights<T, M = T> {
    pub ln2_w: T,         // [d_model]
    pub ln2_b: Option<T>, // [d_model]
    /// The gate of a gated (SwiGLU) MLP: `act(x @ W_gate) * (x @ W_in)`.
    pub W_gate: Option<M>, // [d_model, d_mlp]
    pub W_in: M,          // [d_model, d_mlp]
    pub b_in: Option<T>,  // [d_mlp]
    pub W_out: M,         // [d_mlp, d_model]
    pub b_out: Option<T>, // [d_model]
}

/// All weights of a model.
#[derive(Clone, Debug)]
pub struct ModelWeights<T, M = T> {
    pub W_E: M, // [d_vocab, d_model]
    /// Learned positions `[n_ctx, d_model]`; `None` for rotary models.
    pub W_pos: Option<T>,
    pub blocks: Vec<BlockWeights<T, M>>,
    pub ln_final_w: T,         // [d_model]
    pub ln_final_b: Option<T>, // [d_model]
    /// `[d_model, d_vocab_out]`; the transpose of `W_E` when the embeddings are tied (a
    /// quantized tied model shares W_E's blocks).
    pub W_U: M,
}

impl<T, M> ModelWeights<T, M> {
    /// Applies `f` to every vector and `g` to every matrix (for example: upload to a backend),
    /// in a fixed order, with TransformerLens-style names (`blocks.0.attn.W_Q`).
    pub fn try_map<U, N, E>(
        &self,
        mut f: impl FnMut(&str, &T) -> std::result::Result<U, E>,
        mut g: impl FnMut(&str, &M) -> std::result::Result<N, E>,
    ) -> std::result::Result<ModelWeights<U, N>, E> {
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            let name = |n: &str| format!("blocks.{i}.{n}");
            let mut opt = |n: &str, t: &Option<T>| t.as_ref().map(|t| f(&name(n), t)).transpose();
            let (ln1_b, b_Q, b_K, b_V, b_O) =
                (opt("ln1.b", &b.ln1_b)?, opt("attn.b_Q", &b.b_Q)?, opt("attn.b_K", &b.b_K)?, opt("attn.b_V", &b.b_V)?, opt("attn.b_O", &b.b_O)?);
            let mlp = match &b.mlp {
                None => None,
                Some(m) => Some(MlpWeights {
                    ln2_w: f(&name("ln2.w"), &m.ln2_w)?,
                    ln2_b: m.ln2_b.as_ref().map(|t| f(&name("ln2.b"), t)).transpose()?,
                    W_gate: m.W_gate.as_ref().map(|t| g(&name("mlp.W_gate"), t)).transpose()?,
                    W_in: g(&name("mlp.W_in"), &m.W_in)?,
                    b_in: m.b_in.as_ref().map(|t| f(&name("mlp.b_in"), t)).transpose()?,
                    W_out: g(&name("mlp.W_out"), &m.W_out)?,
                    b_out: m.b_out.as_ref().map(|t| f(&name("mlp.b_out"), t)).transpose()?,
                }),
            };
            blocks.push(BlockWeights {
                ln1_w: f(&name("ln1.w"), &b.ln1_w)?,
                ln1_b,
                W_Q: g(&name("attn.W_Q"), &b.W_Q)?,
                b_Q,
                W_K: g(&name("attn.W_K"), &b.W_K)?,
                b_K,
                W_V: g(&name("attn.W_V"), &b.W_V)?,
                b_V,
                W_O: g(&name("attn.W_O"), &b.W_O)?,
                b_O,
                mlp,
            });
        }
        Ok(ModelWeights {
            W_E: g("embed.W_E", &self.W_E)?,
            W_pos: self.W_pos.as_ref().map(|t| f("pos_embed.W_pos", t)).transpose()?,
            blocks,
            ln_final_w: f("ln_final.w", &self.ln_final_w)?,
            ln_final_b: self.ln_final_b.as_ref().map(|t| f("ln_final.b", t)).transpose()?,
            W_U: g("unembed.W_U", &self.W_U)?,
        })
    }
}

impl<T> ModelWeights<T, T> {
    /// [`ModelWeights::try_map`] with one function for vectors and matrices alike.
    pub fn try_map_same<U, E>(&self, f: impl FnMut(&str, &T) -> std::result::Result<U, E>) -> std::result::Result<ModelWeights<U, U>, E> {
        let f = std::cell::RefCell::new(f);
        self.try_map(|n, t| (f.borrow_mut())(n, t), |n, t| (f.borrow_mut())(n, t))
    }
}

/// The role of the matrix named `name` by [`ModelWeights::try_map`].
pub fn matrix_role(name: &str) -> MatrixRole {
    if name == "embed.W_E" {
        MatrixRole::Table
    } else {
        MatrixRole::Linear
    }
}

impl<M: MatrixSource> ModelWeights<HostTensor, M> {
    /// Bytes of all weights as stored (quantized matrices at their block size).
    pub fn n_bytes(&self) -> usize {
        let total = std::cell::Cell::new(0usize);
        let _ = self.try_map(
            |_, t| {
                total.set(total.get() + 4 * t.len());
                Ok::<(), ()>(())
            },
            |name, m| {
                // A tied unembedding sharing W_E's blocks is stored once.
                let shared = name == "unembed.W_U" && shares_blocks(&self.W_E, m);
                total.set(total.get() + if shared { 0 } else { m.n_bytes() });
                Ok::<(), ()>(())
            },
        );
        total.get()
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
    /// prefix), checking every shape against the config. Dense: what the trainers and the
    /// small shipped models use.
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
                    ln2_b: Some(take(&p("ln_2.bias"), &[d])?),
                    W_gate: None,
                    W_in: take(&p("mlp.c_fc.weight"), &[d, m])?,
                    b_in: Some(take(&p("mlp.c_fc.bias"), &[m])?),
                    W_out: take(&p("mlp.c_proj.weight"), &[m, d])?,
                    b_out: Some(take(&p("mlp.c_proj.bias"), &[d])?),
                }),
            };
            blocks.push(BlockWeights {
                ln1_w: take(&p("ln_1.weight"), &[d])?,
                ln1_b: Some(take(&p("ln_1.bias"), &[d])?),
                W_Q: c_attn.columns(0, hd),
                W_K: c_attn.columns(hd, 2 * hd),
                W_V: c_attn.columns(2 * hd, 3 * hd),
                b_Q: Some(bias(0)),
                b_K: Some(bias(1)),
                b_V: Some(bias(2)),
                W_O: take(&p("attn.c_proj.weight"), &[hd, d])?,
                b_O: Some(take(&p("attn.c_proj.bias"), &[d])?),
                mlp,
            });
        }
        let ln_final_w = take("ln_f.weight", &[d])?;
        let ln_final_b = take("ln_f.bias", &[d])?;
        // An untied model stores its unembedding as nn.Linear's [d_vocab_out, d_model].
        let w_u = if cfg.tied_embeddings { w_e.transpose2() } else { take("lm_head.weight", &[cfg.d_vocab_out, d])?.transpose2() };
        Ok(ModelWeights { W_E: w_e, W_pos: Some(w_pos), blocks, ln_final_w, ln_final_b: Some(ln_final_b), W_U: w_u })
    }

    /// The tensors in Hugging Face GPT-2 naming and layout (the inverse of [`from_hf_gpt2`]).
    pub fn to_hf_gpt2(&self, cfg: &Config) -> Vec<(String, HostTensor)> {
        let some = |t: &Option<HostTensor>, what: &str| t.clone().unwrap_or_else(|| panic!("a GPT-2 model has {what}"));
        let mut out = vec![("transformer.wte.weight".to_string(), self.W_E.clone()), ("transformer.wpe.weight".to_string(), some(&self.W_pos, "W_pos"))];
        for (l, b) in self.blocks.iter().enumerate() {
            let p = |s: &str| format!("transformer.h.{l}.{s}");
            let (d, hd) = (cfg.d_model, cfg.n_heads * cfg.d_head);
            let mut c_attn = Vec::with_capacity(d * 3 * hd);
            for r in 0..d {
                for w in [&b.W_Q, &b.W_K, &b.W_V] {
                    c_attn.extend_from_slice(&w.data[r * hd..(r + 1) * hd]);
                }
            }
            let c_attn_b: Vec<f32> = [&b.b_Q, &b.b_K, &b.b_V].iter().flat_map(|t| some(t, "q, k, v biases").data).collect();
            out.push((p("ln_1.weight"), b.ln1_w.clone()));
            out.push((p("ln_1.bias"), some(&b.ln1_b, "ln1.b")));
            out.push((p("attn.c_attn.weight"), HostTensor::new(vec![d, 3 * hd], c_attn)));
            out.push((p("attn.c_attn.bias"), HostTensor::new(vec![3 * hd], c_attn_b)));
            out.push((p("attn.c_proj.weight"), b.W_O.clone()));
            out.push((p("attn.c_proj.bias"), some(&b.b_O, "b_O")));
            if let Some(m) = &b.mlp {
                out.push((p("ln_2.weight"), m.ln2_w.clone()));
                out.push((p("ln_2.bias"), some(&m.ln2_b, "ln2.b")));
                out.push((p("mlp.c_fc.weight"), m.W_in.clone()));
                out.push((p("mlp.c_fc.bias"), some(&m.b_in, "b_in")));
                out.push((p("mlp.c_proj.weight"), m.W_out.clone()));
                out.push((p("mlp.c_proj.bias"), some(&m.b_out, "b_out")));
            }
        }
        out.push(("transformer.ln_f.weight".to_string(), self.ln_final_w.clone()));
        out.push(("transformer.ln_f.bias".to_string(), some(&self.ln_final_b, "ln_final.b")));
        if !cfg.tied_embeddings {
            out.push(("lm_head.weight".to_string(), self.W_U.transpose2()));
        }
        out
    }
}

/// Serializes named f32 tensors as a safetensors file.
pub fn write_safetensors(tensors: &[(String, HostTensor)]) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> =
        tensors.iter().map(|(n, t)| (n.clone(), t.data.iter().flat_map(|x| x.to_le_bytes()).collect(), t.shape.clone())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, b, s)| Ok((n.clone(), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| Error::Weights(e.to_string()))?)))
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::Weights(e.to_string()))
}

impl<T, M> ModelWeights<T, M> {
    /// The same weights with every matrix mapped by `g` (vectors cloned).
    pub fn map_matrices<N>(&self, mut g: impl FnMut(&M) -> N) -> ModelWeights<T, N>
    where
        T: Clone,
    {
        self.try_map(|_, t| Ok::<T, std::convert::Infallible>(t.clone()), |_, m| Ok(g(m))).unwrap_or_else(|e| match e {})
    }
}

/// Tensors by name, taken one by one with their shapes checked against the config.
struct Take {
    tensors: HashMap<String, HostTensor>,
    /// Prefix of the model's tensors (`model.`, `gpt_neox.`), tried first.
    prefix: &'static str,
}

impl Take {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self
            .tensors
            .remove(&format!("{}{name}", self.prefix))
            .or_else(|| self.tensors.remove(name))
            .ok_or_else(|| Error::Weights(format!("tensor {}{name} is missing", self.prefix)))?;
        if t.shape != shape {
            return Err(Error::Weights(format!("tensor {name} has shape {:?}, the config expects {shape:?}", t.shape)));
        }
        Ok(t)
    }

    /// An nn.Linear weight `[out, in]`, as our dense `[in, out]`.
    fn linear(&mut self, name: &str, n_out: usize, n_in: usize) -> Result<HostMatrix> {
        Ok(HostMatrix::Dense(self.get(name, &[n_out, n_in])?.transpose2()))
    }

    fn opt(&mut self, name: &str, shape: &[usize], present: bool) -> Result<Option<HostTensor>> {
        present.then(|| self.get(name, shape)).transpose()
    }
}

/// Builds the weights of any supported family from Hugging Face tensors (as named by
/// `transformers`' `save_pretrained`), checking every shape against the config.
pub fn from_hf_tensors(cfg: &Config, tensors: HashMap<String, HostTensor>) -> Result<ModelWeights<HostTensor, HostMatrix>> {
    match cfg.arch {
        Arch::Gpt2 => Ok(ModelWeights::from_hf_gpt2(cfg, tensors)?.map_matrices(|t| HostMatrix::Dense(t.clone()))),
        Arch::Llama => from_hf_llama(cfg, Take { tensors, prefix: "model." }),
        Arch::NeoX => from_hf_neox(cfg, Take { tensors, prefix: "gpt_neox." }),
    }
}

/// Llama, Qwen2 (and the models that share their layout): `model.layers.N.self_attn.q_proj`, ...
fn from_hf_llama(cfg: &Config, mut t: Take) -> Result<ModelWeights<HostTensor, HostMatrix>> {
    let (d, v) = (cfg.d_model, cfg.d_vocab);
    let (hq, hkv) = (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head);
    let m = cfg.d_mlp.ok_or_else(|| Error::Config("a Llama-family model has an MLP".into()))?;
    let w_e = t.get("embed_tokens.weight", &[v, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let p = |s: &str| format!("layers.{l}.{s}");
        blocks.push(BlockWeights {
            ln1_w: t.get(&p("input_layernorm.weight"), &[d])?,
            ln1_b: None,
            W_Q: t.linear(&p("self_attn.q_proj.weight"), hq, d)?,
            b_Q: t.opt(&p("self_attn.q_proj.bias"), &[hq], cfg.attn_qkv_bias)?,
            W_K: t.linear(&p("self_attn.k_proj.weight"), hkv, d)?,
            b_K: t.opt(&p("self_attn.k_proj.bias"), &[hkv], cfg.attn_qkv_bias)?,
            W_V: t.linear(&p("self_attn.v_proj.weight"), hkv, d)?,
            b_V: t.opt(&p("self_attn.v_proj.bias"), &[hkv], cfg.attn_qkv_bias)?,
            W_O: t.linear(&p("self_attn.o_proj.weight"), d, hq)?,
            b_O: t.opt(&p("self_attn.o_proj.bias"), &[d], cfg.attn_out_bias)?,
            mlp: Some(MlpWeights {
                ln2_w: t.get(&p("post_attention_layernorm.weight"), &[d])?,
                ln2_b: None,
                W_gate: Some(t.linear(&p("mlp.gate_proj.weight"), m, d)?),
                W_in: t.linear(&p("mlp.up_proj.weight"), m, d)?,
                b_in: t.opt(&p("mlp.up_proj.bias"), &[m], cfg.mlp_bias)?,
                W_out: t.linear(&p("mlp.down_proj.weight"), d, m)?,
                b_out: t.opt(&p("mlp.down_proj.bias"), &[d], cfg.mlp_bias)?,
            }),
        });
        if cfg.mlp_bias {
            // A gate bias would need one more bias slot; no supported model has one.
            t.tensors.remove(&format!("model.{}", p("mlp.gate_proj.bias")));
        }
    }
    let ln_final_w = t.get("norm.weight", &[d])?;
    let w_u = if cfg.tied_embeddings { w_e.transpose2() } else { t.get("lm_head.weight", &[cfg.d_vocab_out, d])?.transpose2() };
    Ok(ModelWeights { W_E: HostMatrix::Dense(w_e), W_pos: None, blocks, ln_final_w, ln_final_b: None, W_U: HostMatrix::Dense(w_u) })
}

/// GPT-NeoX (Pythia): `gpt_neox.layers.N.attention.query_key_value`, whose rows are grouped per
/// head as `[n_heads, (q, k, v), d_head]`.
fn from_hf_neox(cfg: &Config, mut t: Take) -> Result<ModelWeights<HostTensor, HostMatrix>> {
    let (d, v, nh, dh) = (cfg.d_model, cfg.d_vocab, cfg.n_heads, cfg.d_head);
    let hd = nh * dh;
    let m = cfg.d_mlp.ok_or_else(|| Error::Config("a GPT-NeoX model has an MLP".into()))?;
    let w_e = t.get("embed_in.weight", &[v, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let p = |s: &str| format!("layers.{l}.{s}");
        let qkv = t.get(&p("attention.query_key_value.weight"), &[3 * hd, d])?;
        let qkv_b = t.opt(&p("attention.query_key_value.bias"), &[3 * hd], cfg.attn_qkv_bias)?;
        let (w, b) = split_neox_qkv(&qkv, qkv_b.as_ref(), nh, dh);
        let [w_q, w_k, w_v] = w;
        let [b_q, b_k, b_v] = b;
        blocks.push(BlockWeights {
            ln1_w: t.get(&p("input_layernorm.weight"), &[d])?,
            ln1_b: Some(t.get(&p("input_layernorm.bias"), &[d])?),
            W_Q: HostMatrix::Dense(w_q),
            b_Q: b_q,
            W_K: HostMatrix::Dense(w_k),
            b_K: b_k,
            W_V: HostMatrix::Dense(w_v),
            b_V: b_v,
            W_O: t.linear(&p("attention.dense.weight"), d, hd)?,
            b_O: t.opt(&p("attention.dense.bias"), &[d], cfg.attn_out_bias)?,
            mlp: Some(MlpWeights {
                ln2_w: t.get(&p("post_attention_layernorm.weight"), &[d])?,
                ln2_b: Some(t.get(&p("post_attention_layernorm.bias"), &[d])?),
                W_gate: None,
                W_in: t.linear(&p("mlp.dense_h_to_4h.weight"), m, d)?,
                b_in: Some(t.get(&p("mlp.dense_h_to_4h.bias"), &[m])?),
                W_out: t.linear(&p("mlp.dense_4h_to_h.weight"), d, m)?,
                b_out: Some(t.get(&p("mlp.dense_4h_to_h.bias"), &[d])?),
            }),
        });
    }
    let ln_final_w = t.get("final_layer_norm.weight", &[d])?;
    let ln_final_b = Some(t.get("final_layer_norm.bias", &[d])?);
    let w_u = if cfg.tied_embeddings { w_e.transpose2() } else { t.get("embed_out.weight", &[cfg.d_vocab_out, d])?.transpose2() };
    Ok(ModelWeights { W_E: HostMatrix::Dense(w_e), W_pos: None, blocks, ln_final_w, ln_final_b, W_U: HostMatrix::Dense(w_u) })
}

/// GPT-NeoX's fused `[n_heads * 3 * d_head, d_model]` (rows: head, then q/k/v, then d_head) ->
/// dense `W_Q`, `W_K`, `W_V` `[d_model, n_heads * d_head]` and their biases.
pub fn split_neox_qkv(w: &HostTensor, b: Option<&HostTensor>, n_heads: usize, d_head: usize) -> ([HostTensor; 3], [Option<HostTensor>; 3]) {
    let d = w.shape[1];
    let part = |s: usize| {
        let mut rows = Vec::with_capacity(n_heads * d_head * d);
        for h in 0..n_heads {
            let r0 = (h * 3 + s) * d_head;
            rows.extend_from_slice(&w.data[r0 * d..(r0 + d_head) * d]);
        }
        HostTensor::new(vec![n_heads * d_head, d], rows).transpose2()
    };
    let bias =
        |s: usize| b.map(|b| HostTensor::new(vec![n_heads * d_head], (0..n_heads).flat_map(|h| b.data[(h * 3 + s) * d_head..][..d_head].to_vec()).collect()));
    ([part(0), part(1), part(2)], [bias(0), bias(1), bias(2)])
}

/// The shard files named by a `model.safetensors.index.json`, in first-use order.
pub fn shard_files(index_json: &[u8]) -> Result<Vec<String>> {
    let v: serde_json::Value =
        serde_json::from_slice(index_json).map_err(|e| Error::Weights(format!("model.safetensors.index.json is not valid JSON ({e})")))?;
    let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| Error::Weights("model.safetensors.index.json has no weight_map".into()))?;
    let mut files: Vec<String> = Vec::new();
    for f in map.values() {
        let f = f.as_str().ok_or_else(|| Error::Weights("weight_map values must be file names".into()))?;
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            return Err(Error::Weights(format!("shard name {f:?} is not a plain file name")));
        }
        if !files.iter().any(|g| g == f) {
            files.push(f.to_string());
        }
    }
    if files.is_empty() {
        return Err(Error::Weights("model.safetensors.index.json lists no shards".into()));
    }
    Ok(files)
}

/// Parses several safetensors shards into one map of f32 tensors; a name in two shards is an error.
pub fn read_safetensors_shards(shards: &[&[u8]]) -> Result<HashMap<String, HostTensor>> {
    let mut out = HashMap::new();
    for (i, bytes) in shards.iter().enumerate() {
        for (name, t) in read_safetensors(bytes).map_err(|e| Error::Weights(format!("shard {}: {e}", i + 1)))? {
            if out.insert(name.clone(), t).is_some() {
                return Err(Error::Weights(format!("tensor {name} appears in two shards")));
            }
        }
    }
    Ok(out)
}
