//! A run's cached activations as files numpy reads: one `.npy` per hook (written by the `npyz`
//! crate: format 1.0, dtype `<f4`, C order), named by its TransformerLens hook name, and all of
//! them together as an `.npz` (a zip of `<hook>.npy` entries, as `numpy.savez` writes), so that
//! `np.load("run.npz")["blocks.0.attn.hook_pattern"]` is that hook's array.
//!
//! **Shapes keep TransformerLens's batch axis**: every array is `[1, ...]` followed by the hook's
//! shape (`hooks::HookPoint::shape`, e.g. `[1, n_heads, pos, pos]` for `hook_pattern`), exactly
//! the shape of `cache[name]` after `model.run_with_cache(prompt)`, so that code written for a
//! TransformerLens `ActivationCache` reads these arrays unchanged. Entries are stored, not
//! deflated: float activations barely compress, and storing keeps the archive readable by any
//! zip reader.

use std::io::{Cursor, Write};

use npyz::WriterBuilder;

use crate::run::RunOutput;
use crate::{Error, Result};

/// The batch axis every exported array starts with (one prompt is a batch of one).
pub const BATCH: usize = 1;

/// The `.npz` entry of a hook: `<hook>.npy`.
pub fn npy_name(hook: &str) -> String {
    format!("{hook}.npy")
}

fn fail(e: impl std::fmt::Display) -> Error {
    Error::Export(e.to_string())
}

/// Writes one array as `.npy` (f32, little-endian, C order) into `w`.
fn write_npy<W: Write>(w: W, shape: &[usize], data: &[f32]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::Export(format!("an array of shape {shape:?} needs {n} values, not {}", data.len())));
    }
    let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    let mut writer = npyz::WriteOptions::<f32>::new().default_dtype().shape(&shape).writer(w).begin_nd().map_err(fail)?;
    writer.extend(data.iter().copied()).map_err(fail)?;
    writer.finish().map_err(fail)
}

/// One array as the bytes of an `.npy` file.
pub fn npy(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128 + 4 * data.len());
    write_npy(&mut out, shape, data)?;
    Ok(out)
}

/// Arrays `(name, shape, values)` as the bytes of an `.npz` archive, one `<name>.npy` entry each,
/// in the order given.
pub fn npz<'a>(arrays: impl IntoIterator<Item = (&'a str, &'a [usize], &'a [f32])>) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, shape, data) in arrays {
        let big = 4 * data.len() as u64 + 1024 >= u32::MAX as u64;
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(big);
        zip.start_file(npy_name(name), options).map_err(fail)?;
        write_npy(&mut zip, shape, data)?;
    }
    Ok(zip.finish().map_err(fail)?.into_inner())
}

/// A hook's shape with the batch axis in front.
fn batched(shape: &[usize]) -> Vec<usize> {
    std::iter::once(BATCH).chain(shape.iter().copied()).collect()
}

/// Every hook a run cached, in the forward pass's order, as an `.npz` (`[1, ...]` shapes).
pub fn cache_npz(out: &RunOutput) -> Result<Vec<u8>> {
    if out.cache.is_empty() {
        return Err(Error::Export("the run cached no activations".into()));
    }
    let shapes: Vec<Vec<usize>> = out.cache.iter().map(|(_, t)| batched(&t.shape)).collect();
    npz(out.cache.iter().zip(&shapes).map(|((name, t), shape)| (name.as_str(), shape.as_slice(), t.data.as_slice())))
}

/// One cached hook as an `.npy` (`[1, ...]` shape).
pub fn hook_npy(out: &RunOutput, hook: &str) -> Result<Vec<u8>> {
    let t = out.get(hook).ok_or_else(|| Error::Export(format!("the run has no cached activation named \u{201c}{hook}\u{201d}")))?;
    npy(&batched(&t.shape), &t.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostTensor;
    use std::io::Read;

    fn cache() -> RunOutput {
        let pattern = HostTensor::new(vec![2, 3, 3], (0..18).map(|i| i as f32 / 10.0).collect());
        let resid = HostTensor::new(vec![3, 4], (0..12).map(|i| -(i as f32)).collect());
        RunOutput {
            cache: vec![("hook_embed".into(), resid.clone()), ("blocks.0.attn.hook_pattern".into(), pattern)],
            logits: HostTensor::new(vec![3, 5], vec![0.0; 15]),
        }
    }

    fn read_npy(bytes: &[u8]) -> (Vec<u64>, String, Vec<f32>) {
        let f = npyz::NpyFile::new(bytes).unwrap();
        let shape = f.shape().to_vec();
        let descr = f.dtype().descr();
        (shape, descr, f.into_vec::<f32>().unwrap())
    }

    #[test]
    fn npz_holds_every_hook_by_name_with_the_batch_axis() {
        let out = cache();
        let bytes = cache_npz(&out).unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<String> = (0..zip.len()).map(|i| zip.by_index(i).unwrap().name().unwrap().to_string()).collect();
        assert_eq!(names, ["hook_embed.npy", "blocks.0.attn.hook_pattern.npy"]);
        for (name, t) in &out.cache {
            let mut buf = Vec::new();
            let mut entry = zip.by_name(&npy_name(name)).unwrap();
            assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
            entry.read_to_end(&mut buf).unwrap();
            let (shape, descr, data) = read_npy(&buf);
            let want: Vec<u64> = std::iter::once(1).chain(t.shape.iter().map(|&s| s as u64)).collect();
            assert_eq!(shape, want, "{name}");
            assert_eq!(descr, "'<f4'");
            assert_eq!(data, t.data, "{name}");
        }
    }

    #[test]
    fn one_hook_as_npy_and_bad_requests_are_errors() {
        let out = cache();
        let (shape, _, data) = read_npy(&hook_npy(&out, "blocks.0.attn.hook_pattern").unwrap());
        assert_eq!(shape, [1, 2, 3, 3]);
        let bytes = hook_npy(&out, "blocks.0.attn.hook_pattern").unwrap();
        let header = String::from_utf8_lossy(&bytes[..128]).to_string();
        assert!(header.contains("'shape': (1, 2, 3, 3"), "{header}");
        assert_eq!(data[17], 1.7);
        // The header is numpy's: magic, version 1.0, a dict padded so the data is 64-byte aligned.
        let bytes = npy(&[2], &[1.0, 2.0]).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!((bytes.len() - 8) % 64, 0);
        let header = String::from_utf8_lossy(&bytes[10..bytes.len() - 8]);
        assert!(header.contains("'descr': '<f4'") && header.contains("'shape': (2, )"), "{header}");
        assert!(hook_npy(&out, "blocks.9.hook_resid_pre").unwrap_err().to_string().contains("blocks.9.hook_resid_pre"));
        assert!(npy(&[2, 2], &[1.0]).is_err());
        assert!(cache_npz(&RunOutput::default()).is_err());
    }
}
