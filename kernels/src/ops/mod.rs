//! One module per op: `<op>.wgsl` (the kernel), and in `<op>.rs` its dispatch (a method on
//! [`crate::Recorder`]) and its CPU reference `<op>_cpu`.

pub mod add;
pub mod affine;
pub mod attn_scores;
pub mod attn_z;
pub mod concat_cols;
pub mod embed;
pub mod embed_quant;
pub mod gelu;
pub mod gelu_new;
pub mod layer_norm;
pub mod linear;
pub mod linear_q4_k;
pub mod linear_q6_k;
pub mod linear_quant;
pub mod mul;
pub mod rms_norm;
pub mod rotary;
pub mod scale_shift;
pub mod silu;
pub mod softmax;

/// Threads per workgroup of the elementwise kernels (embed, gelu_new, add, affine, scale_shift).
/// Must equal `WG` in their WGSL.
pub(crate) const ELEMENTWISE_WG: u32 = 256;

/// Workgroups needed to cover `n` items with `per_group` items per workgroup.
pub(crate) fn groups_for(n: usize, per_group: u32) -> u32 {
    let g = n.div_ceil(per_group as usize);
    u32::try_from(g).expect("dispatch too large for u32 workgroup count")
}
