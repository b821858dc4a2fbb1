// embed.wgsl: row gathers from an embedding table.
//
//   embed:     out[p, :] = table[tokens[p], :]   (W_E, token embedding)   out: [n_pos, d_model]
//   pos_embed: out[b, p, :] = table[p, :]        (W_pos, rows 0..n_pos)   out: [n_batch, n_pos, d_model]
//
// One invocation per output element i = p * d_model + c (flat index over [n_pos, d_model]).
// Both entry points share one bind group layout; pos_embed does not read `tokens` (the host
// binds a 4-byte placeholder buffer there).
//
// Dispatch: 1D over ceil(n_pos * d_model / WG) workgroups, split into a 2D grid when that
// exceeds 65535 workgroups per dimension: group = wid.y * num_workgroups.x + wid.x.
// Bounds: i >= n_pos * d_model exits (the last workgroup and the spare ones of the 2D grid).
// Token ids >= n_rows (outside the table) produce 0.0 rather than reading out of bounds.
// No workgroup memory, no barriers.

struct Params {
    n_pos: u32,    // rows of the output
    d_model: u32,  // row length
    n_rows: u32,   // rows of the table (d_vocab for W_E, n_ctx for W_pos)
    n_batch: u32,  // pos_embed: copies of rows 0..n_pos, one per sequence (embed ignores it)
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;    // [n_pos]
@group(0) @binding(2) var<storage, read> table: array<f32>;     // [n_rows, d_model]
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [n_pos, d_model]

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

@compute @workgroup_size(256, 1, 1)
fn embed(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.n_pos * p.d_model) {
        return;
    }
    let pos = i / p.d_model;
    let c = i % p.d_model;
    let tok = tokens[pos];
    var v = 0.0;
    if (tok < p.n_rows) {
        v = table[tok * p.d_model + c];
    }
    out[i] = v;
}

@compute @workgroup_size(256, 1, 1)
fn pos_embed(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = flat_index(wid, nwg, lid);
    // n_pos <= n_rows is checked on the host, so i % (n_pos * d_model) indexes inside the table.
    let per_seq = p.n_pos * p.d_model;
    if (i >= p.n_batch * per_seq) {
        return;
    }
    out[i] = table[i % per_seq];
}
