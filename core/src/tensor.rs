//! `HostTensor`: a dense row-major f32 array in ordinary memory. It is what crosses every
//! boundary of the core (weights before upload, cached activations after read-back,
//! intervention values), so neither the app nor the tests ever see a backend's tensor type.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> HostTensor {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?} does not match {} values", data.len());
        HostTensor { shape, data }
    }

    pub fn zeros(shape: Vec<usize>) -> HostTensor {
        let n = shape.iter().product();
        HostTensor { shape, data: vec![0.0; n] }
    }

    pub fn full(shape: Vec<usize>, value: f32) -> HostTensor {
        let n = shape.iter().product();
        HostTensor { shape, data: vec![value; n] }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i` of the tensor seen as `[shape[0], rest]`.
    pub fn row(&self, i: usize) -> &[f32] {
        let w = self.data.len() / self.shape[0].max(1);
        &self.data[i * w..(i + 1) * w]
    }

    /// The transpose of a 2-d tensor.
    pub fn transpose2(&self) -> HostTensor {
        assert_eq!(self.shape.len(), 2, "transpose2 needs a 2-d tensor");
        let (r, c) = (self.shape[0], self.shape[1]);
        let mut out = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                out[j * r + i] = self.data[i * c + j];
            }
        }
        HostTensor::new(vec![c, r], out)
    }

    /// Columns `start..end` of a 2-d tensor.
    pub fn columns(&self, start: usize, end: usize) -> HostTensor {
        assert_eq!(self.shape.len(), 2, "columns needs a 2-d tensor");
        let (r, c) = (self.shape[0], self.shape[1]);
        let mut out = Vec::with_capacity(r * (end - start));
        for i in 0..r {
            out.extend_from_slice(&self.data[i * c + start..i * c + end]);
        }
        HostTensor::new(vec![r, end - start], out)
    }

    /// Largest absolute difference to `other`, treating equal infinities as equal.
    pub fn max_abs_diff(&self, other: &HostTensor) -> f32 {
        assert_eq!(self.shape, other.shape, "shapes differ");
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| if a == b { 0.0 } else { (a - b).abs() })
            .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) })
    }
}
