//! The core's one error type. Every message names what was wrong in words a user can act on.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model config: {0}")]
    Config(String),
    #[error("model weights: {0}")]
    Weights(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("run request: {0}")]
    Request(String),
    #[error("CPU backend: {0}")]
    Cpu(String),
    #[error("GPU backend: {0}")]
    Gpu(String),
    #[error("export: {0}")]
    Export(String),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Error {
        // candle appends a backtrace when RUST_BACKTRACE is set: keep the message only.
        Error::Cpu(e.to_string().lines().next().unwrap_or_default().to_string())
    }
}

impl From<glassbox_kernels::GpuError> for Error {
    fn from(e: glassbox_kernels::GpuError) -> Error {
        Error::Gpu(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
