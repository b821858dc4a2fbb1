//! The elementwise template: one WGSL shell for every op that computes `out[i]` from the
//! inputs' values at `i` alone (add, affine, mul, gelu, gelu_new, silu). An op declares an
//! [`Elementwise`] in its own file: its inputs, its per-element expression and any WGSL helpers
//! the expression calls; [`Elementwise::render`] fills the template, and
//! [`Recorder::elementwise`] checks the sizes and dispatches it. Each op's CPU reference stays
//! in its own file.
//!
//! Every input and the output have the same number of elements n; one invocation per element,
//! 1D dispatch split into a 2D grid past 65535 workgroups.

use super::{groups_for, KernelDef, Wgsl, ELEMENTWISE_WG};
use crate::{GpuTensor, Recorder};

/// An elementwise op: `out[i] = expr`, where `expr` reads each input's value at `i` by the
/// input's name.
#[derive(Debug)]
pub(crate) struct Elementwise {
    /// Entry point (and op) name.
    pub name: &'static str,
    /// One line saying what the op computes (the rendered file's first comment line).
    pub summary: &'static str,
    /// Names of the inputs, in binding order; each is an f32 `let` in the expression's scope.
    pub inputs: &'static [&'static str],
    /// Module-scope WGSL (constants, functions) the expression uses; may be empty.
    pub helpers: &'static str,
    /// The f32 expression of `out[i]`.
    pub expr: &'static str,
}

/// Placeholders: {NAME}, {SUMMARY}, {EXPR}, {WG}, {BINDINGS}, {HELPERS}, {LOADS}.
const TEMPLATE: &str = r#"// {NAME}.wgsl: {SUMMARY}
//
//   out[i] = {EXPR}        every input and out: [n]
//
// Rendered from the elementwise template (kernels/src/ops/elementwise.rs); the expression and
// helpers come from kernels/src/ops/{NAME}.rs.
//
// One invocation per element; 1D dispatch split into a 2D grid past 65535 workgroups:
// i = (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and i >= n exits (bounds check for n not
// a multiple of WG and for the spare workgroups of the 2D grid). No workgroup memory, no barriers.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = {WG}u;

@group(0) @binding(0) var<uniform> p: Params;
{BINDINGS}
{HELPERS}
@compute @workgroup_size({WG}, 1, 1)
fn {NAME}(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= p.n) {
        return;
    }
{LOADS}
    out[i] = {EXPR};
}
"#;

impl Elementwise {
    /// The op's WGSL module.
    pub(crate) fn render(&self) -> String {
        let n = self.inputs.len();
        let mut bindings = String::new();
        let mut loads = String::new();
        for (k, name) in self.inputs.iter().enumerate() {
            bindings.push_str(&format!("@group(0) @binding({}) var<storage, read> in_{name}: array<f32>;\n", k + 1));
            loads.push_str(&format!("    let {name} = in_{name}[i];\n"));
        }
        bindings.push_str(&format!("@group(0) @binding({}) var<storage, read_write> out: array<f32>;\n", n + 1));
        let helpers = if self.helpers.is_empty() { String::new() } else { format!("{}\n", self.helpers.trim_end()) };
        TEMPLATE
            .replace("{NAME}", self.name)
            .replace("{SUMMARY}", self.summary)
            .replace("{EXPR}", self.expr)
            .replace("{WG}", &ELEMENTWISE_WG.to_string())
            .replace("{BINDINGS}", &bindings)
            .replace("{HELPERS}", &helpers)
            .replace("{LOADS}", loads.trim_end_matches('\n'))
    }
}

/// The kernel of an elementwise op (for its `KERNELS`).
pub(crate) const fn kernel(op: &'static Elementwise) -> KernelDef {
    KernelDef { entry: op.name, wgsl: Wgsl::Elementwise(op), n_inputs: op.inputs.len() as u32, n_outputs: 1 }
}

impl Recorder<'_> {
    /// Records `op` over `inputs` (one per name in `op.inputs`) -> a tensor of the first
    /// input's shape. Panics if the element counts differ.
    pub(crate) fn elementwise(&mut self, op: &'static Elementwise, inputs: &[&GpuTensor]) -> GpuTensor {
        assert_eq!(inputs.len(), op.inputs.len(), "{}: wrong input count", op.name);
        let first = inputs[0];
        for (name, t) in op.inputs.iter().zip(inputs).skip(1) {
            assert_eq!(t.len(), first.len(), "{}: {} {:?} and {name} {:?} differ in size", op.name, op.inputs[0], first.shape, t.shape);
        }
        let out = self.output(&first.shape);
        let n = first.len();
        let grid = self.ctx.grid_1d(groups_for(n, ELEMENTWISE_WG));
        let buffers: Vec<&wgpu::Buffer> = inputs.iter().map(|t| &**t.buffer).collect();
        self.dispatch(kernel(op), &[n as u32], &buffers, &[&out.buffer], grid);
        out
    }
}
