//! One module per op. An op registers its kernels beside its WGSL: `<op>.rs` holds the
//! kernel's WGSL (an `<op>.wgsl` file it includes, or an expression rendered by the
//! [`elementwise`] template), its `pub(crate) const KERNELS: &[KernelDef]` (every entry point
//! with its binding counts), its dispatch (a method on [`crate::Recorder`]) and its CPU
//! reference `<op>_cpu`.
//!
//! Adding an op touches its own file and one name in the `ops!` list below; `GpuContext::new`
//! compiles everything in [`ALL`].

use std::borrow::Cow;

pub(crate) mod elementwise;

/// Declares the op modules and [`ALL`], the list of every op's `KERNELS`.
macro_rules! ops {
    ($($op:ident),* $(,)?) => {
        $(pub mod $op;)*

        /// Every op's kernels, by op name (the module's name), in declaration order.
        pub(crate) const ALL: &[(&str, &[KernelDef])] = &[$((stringify!($op), $op::KERNELS)),*];
    };
}

ops! {
    add,
    affine,
    attn_scores,
    attn_scores_cached,
    attn_z,
    attn_z_cached,
    attention,
    concat_cols,
    embed,
    embed_quant,
    gelu,
    gelu_new,
    layer_norm,
    linear,
    linear_epilogue,
    linear_q4_k,
    linear_q6_k,
    linear_quant,
    mul,
    norm_scale_shift,
    rms_norm,
    rotary,
    scale_shift,
    silu,
    softmax,
}

/// Where a kernel's WGSL comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wgsl {
    /// A whole module, usually `include_str!("<op>.wgsl")`.
    Source(&'static str),
    /// Rendered from the elementwise template with the op's expression.
    Elementwise(&'static elementwise::Elementwise),
    /// Assembled by a function of the op's (a module plus WGSL helpers shared with other ops).
    Composed(fn() -> String),
}

impl Wgsl {
    /// The WGSL module's text.
    pub(crate) fn render(&self) -> Cow<'static, str> {
        match self {
            Wgsl::Source(s) => Cow::Borrowed(s),
            Wgsl::Elementwise(op) => Cow::Owned(op.render()),
            Wgsl::Composed(f) => Cow::Owned(f()),
        }
    }
}

/// One compute entry point: what `GpuContext::new` needs to build its pipeline and what
/// `Recorder::dispatch` checks a call against. Bindings follow the crate's convention
/// (see `context.rs`): uniform params, then `n_inputs` read-only and `n_outputs` read-write
/// storage buffers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KernelDef {
    /// The entry point's name in the WGSL; unique in the crate (the key of its pipeline).
    pub entry: &'static str,
    pub wgsl: Wgsl,
    pub n_inputs: u32,
    pub n_outputs: u32,
}

impl KernelDef {
    /// A kernel whose WGSL is a whole module.
    pub(crate) const fn new(entry: &'static str, wgsl: &'static str, n_inputs: u32, n_outputs: u32) -> KernelDef {
        KernelDef { entry, wgsl: Wgsl::Source(wgsl), n_inputs, n_outputs }
    }

    /// A kernel whose WGSL a function assembles.
    pub(crate) const fn composed(entry: &'static str, wgsl: fn() -> String, n_inputs: u32, n_outputs: u32) -> KernelDef {
        KernelDef { entry, wgsl: Wgsl::Composed(wgsl), n_inputs, n_outputs }
    }
}

/// Every kernel of the crate, flattened.
pub(crate) fn all_kernels() -> impl Iterator<Item = &'static KernelDef> {
    ALL.iter().flat_map(|(_, kernels)| kernels.iter())
}

/// The WGSL of every op as `(file name, source)`: `<op>.wgsl`, or `<op>.<entry>.wgsl` where one
/// op's entry points come from different sources. Rendered templates included.
pub fn wgsl_sources() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (op, kernels) in ALL {
        let mut sources: Vec<(&str, String)> = Vec::new();
        for k in kernels.iter() {
            let src = k.wgsl.render().into_owned();
            if !sources.iter().any(|(_, s)| *s == src) {
                sources.push((k.entry, src));
            }
        }
        let single = sources.len() == 1;
        for (entry, src) in sources {
            let name = if single { format!("{op}.wgsl") } else { format!("{op}.{entry}.wgsl") };
            out.push((name, src));
        }
    }
    out
}

/// Threads per workgroup of the elementwise kernels (embed, the [`elementwise`] template,
/// scale_shift). Must equal `WG` in their WGSL (the template takes it from here).
pub(crate) const ELEMENTWISE_WG: u32 = 256;

/// Workgroups needed to cover `n` items with `per_group` items per workgroup.
pub(crate) fn groups_for(n: usize, per_group: u32) -> u32 {
    let g = n.div_ceil(per_group as usize);
    u32::try_from(g).expect("dispatch too large for u32 workgroup count")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_are_unique_and_present() {
        let mut seen = std::collections::HashSet::new();
        for k in all_kernels() {
            assert!(seen.insert(k.entry), "two kernels are named {}", k.entry);
            let src = k.wgsl.render();
            assert!(src.contains(&format!("fn {}(", k.entry)), "{}: no such entry point in its WGSL", k.entry);
        }
    }
}
