//! Device setup, tensors, the pipelines (one per kernel registered in `ops::ALL`), the command
//! recorder and read-back.
//!
//! Binding convention shared by every kernel (see each `.wgsl`):
//!   @binding(0)                     uniform `Params` (shapes, flags; a few u32/f32, 16-byte multiple)
//!   @binding(1 ..= n_inputs)        read-only storage inputs, in the order of the Rust call
//!   @binding(n_inputs+1 ..)         read_write storage outputs
//! One bind group (group 0) per dispatch. Params are a fresh uniform buffer per dispatch, made with
//! `create_buffer_init` while recording, so every dispatch of one submission sees its own values
//! (`queue.write_buffer` could not change a buffer between two dispatches of one submission).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use wgpu::util::DeviceExt;

use crate::ops::{self, KernelDef};

/// Errors from device setup and read-back. Shape mismatches in [`Recorder`] calls are programming
/// errors and panic instead, with a message naming the op.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    #[error("could not create a GPU device: {0}")]
    RequestDevice(String),
    #[error("a compute kernel failed to compile: {0}")]
    Shader(String),
    #[error("could not map a read-back buffer: {0}")]
    Map(String),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("GPU validation error: {0}")]
    Validation(String),
}

/// Bytes of storage buffers (tensors, weights, token ids) in use in this process: added when one
/// is created or taken from a pool, subtracted when its last handle is dropped. Staging and
/// uniform buffers, which live for one submission, are not counted, nor are buffers idle in a
/// pool ([`GpuContext::pooled_buffer_bytes`]).
static LIVE_BUFFER_BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes of op outputs whose tensors were dropped, kept by their context's [`BufferPool`] for
/// the next output of the same size.
static POOLED_BUFFER_BYTES: AtomicU64 = AtomicU64::new(0);

/// The most a context keeps idle in its pool. A run that would pool more empties it first (a
/// prompt of another length needs buffers of other sizes: the old ones go).
pub const MAX_POOLED_BYTES: u64 = 128 << 20;

/// Storage buffers of dropped op outputs, by size in bytes. An op's output takes one of its size
/// instead of creating a buffer (which on a real device allocates memory and on the web is a
/// call to the GPU process); it is cleared first, as a new buffer would be. Ordering is safe:
/// every use of a buffer before it returned here was recorded, and so runs, before the use
/// that takes it again.
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<FreeBuffers>,
    /// Set by [`GpuContext::set_buffer_pool`]`(false)`: every output is a new buffer.
    off: std::sync::atomic::AtomicBool,
}

/// The idle buffers of one pool, by size, and their total bytes.
#[derive(Default)]
struct FreeBuffers {
    by_size: HashMap<u64, Vec<wgpu::Buffer>>,
    bytes: u64,
}

impl FreeBuffers {
    /// Frees every idle buffer.
    fn empty(&mut self) {
        POOLED_BUFFER_BYTES.fetch_sub(self.bytes, Ordering::SeqCst);
        *self = FreeBuffers::default();
    }
}

impl BufferPool {
    fn free(&self) -> std::sync::MutexGuard<'_, FreeBuffers> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, size: u64) -> Option<wgpu::Buffer> {
        if self.off.load(Ordering::Relaxed) {
            return None;
        }
        let mut free = self.free();
        let buffer = free.by_size.get_mut(&size)?.pop()?;
        free.bytes -= size;
        POOLED_BUFFER_BYTES.fetch_sub(size, Ordering::SeqCst);
        Some(buffer)
    }

    fn put(&self, buffer: wgpu::Buffer) {
        let size = buffer.size();
        if size > MAX_POOLED_BYTES || self.off.load(Ordering::Relaxed) {
            return;
        }
        let mut free = self.free();
        if free.bytes + size > MAX_POOLED_BYTES {
            free.empty();
        }
        free.by_size.entry(size).or_default().push(buffer);
        free.bytes += size;
        POOLED_BUFFER_BYTES.fetch_add(size, Ordering::SeqCst);
    }

    /// Bytes idle in this pool.
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.free().bytes
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        self.free().empty();
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool").finish_non_exhaustive()
    }
}

/// A storage buffer counted in [`GpuContext::live_buffer_bytes`] while it exists. Dereferences to
/// the `wgpu::Buffer`. An op output goes back to its context's pool when dropped.
#[derive(Debug)]
pub struct TrackedBuffer {
    /// `Some` until dropped.
    buffer: Option<wgpu::Buffer>,
    pool: Option<Weak<BufferPool>>,
}

impl TrackedBuffer {
    fn new(buffer: wgpu::Buffer) -> Arc<TrackedBuffer> {
        Self::with_pool(buffer, None)
    }

    fn with_pool(buffer: wgpu::Buffer, pool: Option<Weak<BufferPool>>) -> Arc<TrackedBuffer> {
        LIVE_BUFFER_BYTES.fetch_add(buffer.size(), Ordering::SeqCst);
        Arc::new(TrackedBuffer { buffer: Some(buffer), pool })
    }
}

impl std::ops::Deref for TrackedBuffer {
    type Target = wgpu::Buffer;

    fn deref(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("a TrackedBuffer's buffer is taken only when it is dropped")
    }
}

impl Drop for TrackedBuffer {
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else { return };
        LIVE_BUFFER_BYTES.fetch_sub(buffer.size(), Ordering::SeqCst);
        if let Some(pool) = self.pool.as_ref().and_then(Weak::upgrade) {
            pool.put(buffer);
        }
    }
}

/// A contiguous, row-major f32 tensor living in a GPU storage buffer.
/// Cloning shares the buffer (an `Arc`), it does not copy data.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    pub buffer: Arc<TrackedBuffer>,
    pub shape: Vec<usize>,
}

impl GpuTensor {
    /// Number of f32 elements (product of the shape; 1 for shape `[]`).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Same buffer, new shape. Panics if the element count differs.
    pub fn reshape(&self, shape: &[usize]) -> GpuTensor {
        let n: usize = shape.iter().product();
        assert_eq!(n, self.len(), "reshape {:?} -> {:?}: element counts differ", self.shape, shape);
        GpuTensor { buffer: self.buffer.clone(), shape: shape.to_vec() }
    }

    /// Size of the last axis (1 for a scalar).
    pub(crate) fn last_dim(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }
}

/// A u32 storage buffer (token ids; packed bytes from [`GpuContext::upload_bytes`]).
#[derive(Clone, Debug)]
pub struct GpuBuffer {
    pub buffer: Arc<TrackedBuffer>,
    /// Number of u32 elements.
    pub len: usize,
}

struct Kernel {
    def: KernelDef,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// The device, its queue and every compiled kernel. Natively `Send + Sync` (share one per
/// process); on wasm32 wgpu types are neither, and nothing here requires it.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    /// The kernels built so far, by entry point: each is compiled the first time a recorder
    /// dispatches it (a model compiles only the kernels it uses), or all at once by
    /// [`GpuContext::compile_all`].
    kernels: Mutex<HashMap<&'static str, Arc<Kernel>>>,
    /// A 4-byte buffer bound where a kernel's binding is unused (no bias, no tokens).
    pub(crate) dummy: wgpu::Buffer,
    max_groups_per_dim: u32,
    /// First uncaptured wgpu error since the last read (reported by [`GpuContext::read`]).
    error: Arc<Mutex<Option<String>>>,
    /// Set by the device-lost callback.
    lost: Arc<Mutex<Option<String>>>,
    /// Buffers of dropped op outputs, reused by later outputs of the same size.
    pool: Arc<BufferPool>,
}

/// Op outputs that took a pooled buffer instead of creating one, in this process.
static POOL_REUSES: AtomicU64 = AtomicU64::new(0);
/// Contexts created and not yet dropped, in this process.
static LIVE_CONTEXTS: AtomicUsize = AtomicUsize::new(0);
/// Compute dispatches recorded in this process (every context), for the dispatches-per-forward-
/// pass figure (`glassbox bench --backend gpu`, BENCHMARKS.md).
static DISPATCHES: AtomicU64 = AtomicU64::new(0);

impl Drop for GpuContext {
    fn drop(&mut self) {
        LIVE_CONTEXTS.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.info).finish_non_exhaustive()
    }
}

/// An adapter, before any device exists: enough to decide whether to use it (a software
/// adapter is slower than the CPU path; the app then never creates a device on it).
pub struct GpuAdapter {
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
}

impl GpuAdapter {
    /// Requests an adapter.
    ///
    /// Backends: natively any backend compiled in (Vulkan here), overridable with the
    /// `WGPU_BACKEND` environment variable (e.g. `WGPU_BACKEND=vulkan` for lavapipe); on wasm32 the
    /// browser's WebGPU.
    pub async fn request() -> Result<GpuAdapter, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance),
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        };
        let adapter = instance.request_adapter(&options).await.map_err(|e| {
            GpuError::NoAdapter(format!(
                "{e} (backends compiled in: {:?}, WGPU_BACKEND={:?}; natively install \
                 mesa-vulkan-drivers + libvulkan1 and set WGPU_BACKEND=vulkan for lavapipe; \
                 in a browser WebGPU must be enabled)",
                wgpu::Instance::enabled_backend_features(),
                option_env_var("WGPU_BACKEND"),
            ))
        })?;
        let info = adapter.get_info();
        Ok(GpuAdapter { adapter, info })
    }

    /// Whether the adapter runs on the CPU (SwiftShader, lavapipe, WARP).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The adapter's name, as [`GpuContext::adapter_name`].
    pub fn name(&self) -> String {
        adapter_name(&self.info)
    }
}

/// The adapter's name, or (where the browser gives none) its backend and device type.
fn adapter_name(info: &wgpu::AdapterInfo) -> String {
    if info.name.is_empty() {
        format!("{:?} adapter ({:?})", info.backend, info.device_type)
    } else {
        info.name.clone()
    }
}

impl GpuContext {
    /// Requests an adapter and device and compiles every kernel.
    pub async fn new() -> Result<GpuContext, GpuError> {
        Self::with_adapter(GpuAdapter::request().await?).await
    }

    /// A device on `adapter`, with every kernel compiled. Limits are the WebGPU defaults, except
    /// the storage-buffer binding size and buffer size, raised to the adapter's when larger.
    pub async fn with_adapter(adapter: GpuAdapter) -> Result<GpuContext, GpuError> {
        let GpuAdapter { adapter, info } = adapter;

        let adapter_limits = adapter.limits();
        let mut limits = wgpu::Limits::default();
        limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.max(adapter_limits.max_storage_buffer_binding_size);
        limits.max_buffer_size = limits.max_buffer_size.max(adapter_limits.max_buffer_size);

        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("glassbox-kernels"),
                required_features: wgpu::Features::empty(),
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;

        let error = Arc::new(Mutex::new(None::<String>));
        {
            let error = error.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let mut slot = error.lock().unwrap_or_else(|p| p.into_inner());
                if slot.is_none() {
                    *slot = Some(e.to_string());
                }
            }));
        }
        let lost = Arc::new(Mutex::new(None::<String>));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, msg| {
                *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{reason:?}: {msg}"));
            });
        }

        // Kernels are compiled when first used, not here: compiling all of them made a
        // context's start 0.3-0.6 s on lavapipe and seconds on SwiftShader, most of it for
        // kernels the loaded model never runs. Their names must still be unique.
        let mut names = std::collections::HashSet::new();
        for def in ops::all_kernels() {
            if !names.insert(def.entry) {
                return Err(GpuError::Shader(format!("two kernels are named {}", def.entry)));
            }
        }
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 4,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let max_groups_per_dim = device.limits().max_compute_workgroups_per_dimension;

        LIVE_CONTEXTS.fetch_add(1, Ordering::SeqCst);
        Ok(GpuContext { device, queue, info, kernels: Mutex::new(HashMap::new()), dummy, max_groups_per_dim, error, lost, pool: Arc::default() })
    }

    /// Compiles every kernel of [`ops::ALL`] not yet built, inside an error scope: a WGSL or
    /// layout error comes back as [`GpuError::Shader`] with the compiler's message (the kernel
    /// tests call it; a model's kernels are otherwise compiled at their first dispatch, where an
    /// error is reported by the next [`GpuContext::read`]).
    pub async fn compile_all(&self) -> Result<(), GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        for def in ops::all_kernels() {
            self.kernel(def);
        }
        match scope.pop().await {
            Some(e) => Err(GpuError::Shader(e.to_string())),
            None => Ok(()),
        }
    }

    /// How many kernels there are ([`ops::ALL`]'s entry points).
    pub fn registered_kernels() -> usize {
        ops::all_kernels().count()
    }

    /// How many kernels have been compiled in this context.
    pub fn compiled_kernels(&self) -> usize {
        self.kernels.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// `def`'s kernel, compiled now if this is its first use (checked then, once, to be one of
    /// [`ops::ALL`]'s: a forward pass's dispatches only look it up).
    fn kernel(&self, def: &KernelDef) -> Arc<Kernel> {
        let mut built = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        built
            .entry(def.entry)
            .or_insert_with(|| {
                assert!(ops::all_kernels().any(|d| d.entry == def.entry), "{}: kernel not registered in ops::ALL", def.entry);
                Arc::new(build_kernel(&self.device, def))
            })
            .clone()
    }

    /// How many contexts exist in this process (made by [`GpuContext::new`], not yet dropped).
    /// Dropping a context releases its device, pipelines and own buffers; buffers of tensors
    /// made with it are released as the last of them is dropped.
    pub fn live_contexts() -> usize {
        LIVE_CONTEXTS.load(Ordering::SeqCst)
    }

    /// Bytes of GPU storage buffers in use in this process (every context's tensors, weights and
    /// token buffers; not the short-lived staging and uniform buffers, nor buffers idle in a
    /// pool). The engine reports it so that tests can check GPU memory stays bounded over many
    /// runs and model swaps.
    pub fn live_buffer_bytes() -> u64 {
        LIVE_BUFFER_BYTES.load(Ordering::SeqCst)
    }

    /// Bytes of op-output buffers idle in every context's pool, waiting to be reused (at most
    /// [`MAX_POOLED_BYTES`] per context; freed with the context).
    pub fn pooled_buffer_bytes() -> u64 {
        POOLED_BUFFER_BYTES.load(Ordering::SeqCst)
    }

    /// Whether op outputs reuse the buffers of dropped ones (`true`, the default) or are each a
    /// new buffer (`false`, which also frees the pool: `glassbox bench --no-pool` compares).
    pub fn set_buffer_pool(&self, on: bool) {
        self.pool.off.store(!on, Ordering::Relaxed);
        if !on {
            self.pool.free().empty();
        }
    }

    /// Op outputs in this process that reused a pooled buffer instead of creating one.
    pub fn pool_reuses() -> u64 {
        POOL_REUSES.load(Ordering::Relaxed)
    }

    /// Compute dispatches recorded so far in this process (empty grids are not dispatched).
    pub fn dispatch_count() -> u64 {
        DISPATCHES.load(Ordering::Relaxed)
    }

    /// The largest storage buffer a kernel can bind, in bytes (the device's limit).
    pub fn max_binding_bytes(&self) -> u64 {
        self.device.limits().max_storage_buffer_binding_size
    }

    /// The adapter's name, e.g. "llvmpipe (LLVM 15.0.7, 256 bits)"; on the web the browser's
    /// adapter description (may be empty there, then a generic description).
    pub fn adapter_name(&self) -> String {
        adapter_name(&self.info)
    }

    /// Full adapter information (backend, device type, driver).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Uploads f32 data as a tensor (usage STORAGE | COPY_SRC | COPY_DST).
    pub fn upload(&self, data: &[f32], shape: &[usize]) -> GpuTensor {
        let n: usize = shape.iter().product();
        assert_eq!(data.len(), n, "upload: data has {} values, shape {:?} needs {n}", data.len(), shape);
        let buffer = self.storage_buffer_init("tensor", bytemuck::cast_slice(data));
        GpuTensor { buffer: TrackedBuffer::new(buffer), shape: shape.to_vec() }
    }

    /// A storage buffer holding `bytes`; an empty one gets 4 zero bytes, since a zero-sized
    /// binding is invalid in WebGPU.
    fn storage_buffer_init(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let contents: &[u8] = if bytes.is_empty() { &[0u8; 4] } else { bytes };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage: tensor_usage() })
    }

    /// Uploads u32 data (token ids) as a storage buffer.
    pub fn upload_u32(&self, data: &[u32]) -> GpuBuffer {
        let buffer = self.storage_buffer_init("u32 buffer", bytemuck::cast_slice(data));
        GpuBuffer { buffer: TrackedBuffer::new(buffer), len: data.len() }
    }

    /// Uploads raw bytes (e.g. GGUF quantized blocks) as a u32 storage buffer, little-endian,
    /// zero-padded to a multiple of 4 bytes; `len` is the number of u32 words.
    pub fn upload_bytes(&self, bytes: &[u8]) -> GpuBuffer {
        let words = bytes.len().div_ceil(4);
        let buffer = if bytes.len().is_multiple_of(4) {
            self.storage_buffer_init("byte buffer", bytes)
        } else {
            let mut padded = Vec::with_capacity(words * 4);
            padded.extend_from_slice(bytes);
            padded.resize(words * 4, 0);
            self.storage_buffer_init("byte buffer", &padded)
        };
        GpuBuffer { buffer: TrackedBuffer::new(buffer), len: words }
    }

    /// Starts recording: all ops of the returned recorder go into one command encoder, submitted
    /// by [`Recorder::submit`].
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder { encoder: self.ops_encoder(), ctx: ContextRef::Borrowed(self) }
    }

    /// [`GpuContext::recorder`] for a shared context: the recorder holds its own reference,
    /// so it can be kept (e.g. beside the context in a backend) without borrowing.
    pub fn shared_recorder(self: &Arc<Self>) -> Recorder<'static> {
        Recorder { encoder: self.ops_encoder(), ctx: ContextRef::Shared(self.clone()) }
    }

    fn ops_encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("glassbox ops") })
    }

    /// Copies the tensors into mappable buffers in ONE submission, maps them and returns their
    /// data (one `Vec<f32>` per tensor, in order). Natively this blocks in `device.poll`; on
    /// wasm32 it awaits the browser's map callbacks and never blocks.
    ///
    /// Also reports (once) the first uncaptured wgpu error since the previous read, and device loss.
    pub async fn read(&self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<f32>>, GpuError> {
        self.check_lost()?;
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read-back") });
        let staging: Vec<Option<wgpu::Buffer>> = tensors
            .iter()
            .map(|t| {
                let size = (t.len() * 4) as u64;
                if size == 0 {
                    return None;
                }
                let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("read-back staging"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                encoder.copy_buffer_to_buffer(&t.buffer, 0, &b, 0, size);
                Some(b)
            })
            .collect();
        self.queue.submit(Some(encoder.finish()));

        let mut receivers = Vec::new();
        for b in staging.iter().flatten() {
            let (tx, rx) = futures_channel::oneshot::channel();
            b.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            receivers.push(rx);
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Map(format!("device.poll: {e}")))?;
        for rx in receivers {
            rx.await.map_err(|_| GpuError::Map("map_async callback was dropped".into()))?.map_err(|e| GpuError::Map(e.to_string()))?;
        }
        self.check_lost()?;
        if let Some(e) = self.take_error() {
            return Err(GpuError::Validation(e));
        }

        let mut out = Vec::with_capacity(tensors.len());
        for b in &staging {
            match b {
                None => out.push(Vec::new()),
                Some(b) => {
                    let data = {
                        let view = b.slice(..).get_mapped_range().map_err(|e| GpuError::Map(e.to_string()))?;
                        view.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>()
                    };
                    b.unmap();
                    out.push(data);
                }
            }
        }
        Ok(out)
    }

    /// Takes the first uncaptured wgpu error (validation, out of memory) recorded since the last
    /// call, if any. [`GpuContext::read`] calls this and returns it as [`GpuError::Validation`].
    pub fn take_error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn check_lost(&self) -> Result<(), GpuError> {
        match &*self.lost.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(msg) => Err(GpuError::DeviceLost(msg.clone())),
            None => Ok(()),
        }
    }

    /// Splits `n_groups` workgroups into an (x, y) grid within the per-dimension limit (65535 by
    /// default). Kernels using it rebuild the linear index as `wid.y * num_workgroups.x + wid.x`
    /// and bounds-check it (the grid may have up to x-1 spare workgroups).
    pub(crate) fn grid_1d(&self, n_groups: u32) -> [u32; 3] {
        if n_groups <= self.max_groups_per_dim {
            [n_groups, 1, 1]
        } else {
            let x = self.max_groups_per_dim;
            let y = n_groups.div_ceil(x);
            assert!(y <= self.max_groups_per_dim, "dispatch of {n_groups} workgroups is too large");
            [x, y, 1]
        }
    }

    /// True for software adapters (lavapipe natively; on the web, a fallback adapter such as
    /// SwiftShader).
    pub(crate) fn is_cpu_adapter(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub(crate) fn check_grid(&self, grid: [u32; 3], op: &str) {
        for g in grid {
            assert!(g <= self.max_groups_per_dim, "{op}: {g} workgroups in one dimension exceeds the limit {}", self.max_groups_per_dim);
        }
    }
}

fn option_env_var(name: &str) -> Option<String> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::env::var(name).ok()
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = name;
        None
    }
}

fn tensor_usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
}

fn build_kernel(device: &wgpu::Device, spec: &KernelDef) -> Kernel {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(spec.entry), source: wgpu::ShaderSource::Wgsl(spec.wgsl.render()) });
    let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Storage { read_only }, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    }];
    for i in 0..spec.n_inputs {
        entries.push(storage(1 + i, true));
    }
    for i in 0..spec.n_outputs {
        entries.push(storage(1 + spec.n_inputs + i, false));
    }
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(spec.entry), entries: &entries });
    let pipeline_layout =
        device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor { label: Some(spec.entry), bind_group_layouts: &[Some(&layout)], immediate_size: 0 });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(spec.entry),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(spec.entry),
        compilation_options: Default::default(),
        cache: None,
    });
    Kernel { def: *spec, pipeline, layout }
}

/// The context a [`Recorder`] records for: borrowed, or shared (an `Arc`).
pub(crate) enum ContextRef<'a> {
    Borrowed(&'a GpuContext),
    Shared(Arc<GpuContext>),
}

impl std::ops::Deref for ContextRef<'_> {
    type Target = GpuContext;

    fn deref(&self) -> &GpuContext {
        match self {
            ContextRef::Borrowed(c) => c,
            ContextRef::Shared(c) => c,
        }
    }
}

/// Records ops into one command encoder. Every op allocates its output(s) and returns them;
/// nothing runs until [`Recorder::submit`].
pub struct Recorder<'a> {
    pub(crate) ctx: ContextRef<'a>,
    encoder: wgpu::CommandEncoder,
}

impl Recorder<'_> {
    /// Finishes the encoder and submits it to the queue.
    pub fn submit(self) {
        self.ctx.queue.submit(Some(self.encoder.finish()));
    }

    /// A new zero-filled tensor (at least 4 bytes, so it can always be bound): a buffer of its
    /// size from the context's pool, cleared, or a new one.
    pub(crate) fn output(&mut self, shape: &[usize]) -> GpuTensor {
        let size = (shape.iter().product::<usize>().max(1) * 4) as u64;
        let buffer = match self.ctx.pool.take(size) {
            Some(buffer) => {
                self.encoder.clear_buffer(&buffer, 0, None);
                POOL_REUSES.fetch_add(1, Ordering::Relaxed);
                buffer
            }
            None => self.ctx.device.create_buffer(&wgpu::BufferDescriptor { label: Some("op output"), size, usage: tensor_usage(), mapped_at_creation: false }),
        };
        GpuTensor { buffer: TrackedBuffer::with_pool(buffer, Some(Arc::downgrade(&self.ctx.pool))), shape: shape.to_vec() }
    }

    /// Records one dispatch of `kernel` in its own compute pass. `params` are u32 words (f32s
    /// passed as `to_bits()`), padded here to a 16-byte multiple. Skipped when the grid is empty.
    pub(crate) fn dispatch(&mut self, kernel: KernelDef, params: &[u32], inputs: &[&wgpu::Buffer], outputs: &[&wgpu::Buffer], grid: [u32; 3]) {
        if grid.contains(&0) {
            return;
        }
        let k = self.ctx.kernel(&kernel);
        let spec = &k.def;
        assert_eq!(inputs.len(), spec.n_inputs as usize, "{}: wrong input count", spec.entry);
        assert_eq!(outputs.len(), spec.n_outputs as usize, "{}: wrong output count", spec.entry);
        self.ctx.check_grid(grid, spec.entry);

        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let uniform = self.ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(&words),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        for (i, b) in inputs.iter().chain(outputs.iter()).enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: 1 + i as u32, resource: b.as_entire_binding() });
        }
        let bind_group = self.ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(spec.entry), layout: &k.layout, entries: &entries });
        let mut pass = self.encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(spec.entry), timestamp_writes: None });
        pass.set_pipeline(&k.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        DISPATCHES.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An op output reuses the buffer of a dropped one of the same size, cleared as a new
    /// buffer would be; one of another size, or with the pool off, is a new buffer; the pool
    /// is freed with its context.
    #[test]
    fn a_dropped_output_is_reused_cleared_and_freed_with_its_context() {
        let ctx = pollster::block_on(GpuContext::new()).expect("a GPU adapter (WGPU_BACKEND=vulkan on lavapipe)");
        let read = |t: &GpuTensor| pollster::block_on(ctx.read(&[t])).expect("read-back").pop().unwrap();
        let mut rec = ctx.recorder();
        let dirty = rec.output(&[3, 5]);
        rec.submit();
        ctx.queue.write_buffer(&dirty.buffer, 0, bytemuck::cast_slice(&[7f32; 15]));
        assert_eq!(read(&dirty), vec![7.0; 15]);
        let (reuses, pooled) = (GpuContext::pool_reuses(), ctx.pool.bytes());
        drop(dirty);
        assert_eq!(ctx.pool.bytes(), pooled + 60, "the dropped output went to the pool");

        let mut rec = ctx.recorder();
        let other_size = rec.output(&[16]);
        let reused = rec.output(&[15]);
        rec.submit();
        assert!(GpuContext::pool_reuses() > reuses, "an output of the same size took the pooled buffer");
        assert_eq!(ctx.pool.bytes(), pooled, "the pool gave its buffer away");
        assert_eq!(read(&reused), vec![0.0; 15], "a reused buffer starts zero-filled");
        assert_eq!(read(&other_size), vec![0.0; 16]);

        ctx.set_buffer_pool(false);
        drop(reused);
        assert_eq!(ctx.pool.bytes(), 0, "with the pool off nothing is kept");
        ctx.set_buffer_pool(true);
        drop(other_size);
        assert_eq!(ctx.pool.bytes(), 64);
        let weak = Arc::downgrade(&ctx.pool);
        drop(ctx);
        assert!(weak.upgrade().is_none(), "the pool went with its context");
    }
}
