#!/usr/bin/env python3
"""Writes the GGUF fixtures for core/tests/gguf.rs into fixtures/gguf/.

One file per ggml type glassbox dequantizes (F32, F16, Q8_0, Q4_0, Q4_K, Q6_K), each with the
same metadata (every GGUF value type, a string array with non-ASCII tokens, a float array and
an array of arrays), plus `all_types.gguf`: every tensor again in one file with
`general.alignment = 64`.

Each quantized type has two tensors:
  - `<type>.smooth`: [8, 256] normal values whose rows span 1e-3..1e3, with a zero
    sub-block, an outlier, an all-positive and an all-negative row (a mix of scales);
  - `<type>.blocks`: [4, 512] random block bytes with random finite f16 scales (including
    0 and a subnormal), so every bit of every field is exercised (all 6-bit scales and mins
    of Q4_K, negative Q6_K scales).

The expected values are what the `gguf` package's numpy reference (`gguf.quants.dequantize`)
computes from the tensor bytes read back from the written file (`gguf.GGUFReader`), stored as
raw little-endian f32 (`<tensor>.f32`, row-major). `index.json` lists the files, their
metadata, their tensors (name, type, row-major shape, expected file) and ggml's type table.

The `gguf` package quantizes Q8_0 and Q4_0 but not the K-quants, so Q4_K and Q6_K are
quantized here with a plain min/max quantizer (not ggml's optimising one; the fixtures only
need valid blocks, and the round-trip error printed below shows they are sensible).

Usage: python python/make_gguf_fixtures.py   (numpy, gguf==0.19.0; see requirements.txt)
"""

import importlib.metadata
import json
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf.quants import dequantize, quantize

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "gguf"
QK_K = 256
rng = np.random.default_rng(20240611)


# --------------------------------------------------------------------------------------------
# K-quant packers (the inverse of ggml's dequantize_row_q4_K / dequantize_row_q6_K)
# --------------------------------------------------------------------------------------------


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """(n, 256k) f32 -> (n, 144k) u8. Per 32-value sub-block: scale = (max - min) / 15 with
    min <= 0 (as ggml), scales and mins quantized to 6 bits against the f16 d and dmin."""
    blocks = x.reshape(-1, 8, 32).astype(np.float32)
    n = blocks.shape[0]
    lo = np.minimum(blocks.min(-1), 0)
    scale = (blocks.max(-1) - lo) / 15
    d = (scale.max(-1) / 63).astype(np.float16)
    dmin = ((-lo).max(-1) / 63).astype(np.float16)
    d32, dmin32 = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d32 > 0, np.rint(scale / d32), 0).clip(0, 63).astype(np.uint8)
        mn = np.where(dmin32 > 0, np.rint(-lo / dmin32), 0).clip(0, 63).astype(np.uint8)
        step = (d32 * sc)[..., None]
        q = np.where(step > 0, np.rint((blocks + (dmin32 * mn)[..., None]) / step), 0)
    q = q.clip(0, 15).astype(np.uint8)
    scales = np.zeros((n, 12), np.uint8)  # see get_scale_min_k4
    scales[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = mn[:, 0:4] | ((mn[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 0x0F) | ((mn[:, 4:8] & 0x0F) << 4)
    q = q.reshape(n, 4, 2, 32)  # 64 values per 32 bytes: low nibbles first, then high
    qs = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(n, 128)
    out = np.concatenate([d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2), scales, qs], axis=1)
    return out.reshape(x.shape[0], -1)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """(n, 256k) f32 -> (n, 210k) u8. Per 16-value sub-block: an i8 scale against the f16 d,
    values in -32..31."""
    blocks = x.reshape(-1, 16, 16).astype(np.float32)
    n = blocks.shape[0]
    scale = np.abs(blocks).max(-1) / 31
    d = (scale.max(-1) / 127).astype(np.float16)
    d32 = d.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d32 > 0, np.rint(scale / d32), 0).clip(-128, 127).astype(np.int8)
        step = (d32 * sc)[..., None]
        q = np.where(step != 0, np.rint(blocks / step), 0)
    q = (q.clip(-32, 31) + 32).astype(np.uint8).reshape(n, 2, 4, 32)  # half, quarter, l
    q0, q1, q2, q3 = (q[:, :, k, :] for k in range(4))
    ql = np.concatenate([(q0 & 0xF) | ((q2 & 0xF) << 4), (q1 & 0xF) | ((q3 & 0xF) << 4)], axis=-1)
    qh = (q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6)
    out = np.concatenate(
        [ql.reshape(n, 128), qh.reshape(n, 64), sc.view(np.uint8), d.view(np.uint8).reshape(n, 2)], axis=1
    )
    return out.reshape(x.shape[0], -1)


def quantize_any(x: np.ndarray, qtype: T) -> np.ndarray:
    if qtype == T.Q4_K:
        return quantize_q4_k(x)
    if qtype == T.Q6_K:
        return quantize_q6_k(x)
    return quantize(x, qtype)


# --------------------------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------------------------


def smooth_matrix(rows: int = 8, cols: int = 256) -> np.ndarray:
    """Normal values with a mix of scales: row i has magnitude 10^(i - 3)..., a zero
    sub-block, an outlier, an all-positive and an all-negative row."""
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    x *= (10.0 ** np.linspace(-3, 3, rows)).astype(np.float32)[:, None]
    x[2, 32:64] = 0
    x[3, 7] = 40 * np.abs(x[3]).max()
    x[rows - 2] = np.abs(x[rows - 2])
    x[rows - 1] = -np.abs(x[rows - 1])
    return x


def random_f16_scales(count: int) -> np.ndarray:
    """Random finite f16 scales over several decades, both signs, with 0 and a subnormal."""
    s = rng.uniform(-2, 2, count) * 10.0 ** rng.uniform(-3, 1, count)
    s[0] = 0.0
    s[min(1, count - 1)] = 3.0e-6  # f16 subnormal
    return s.astype(np.float16)


def random_blocks(qtype: T, rows: int = 4, cols: int = 512) -> np.ndarray:
    """Random block bytes for a quantized type, with its f16 fields set to finite scales."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block_size
    blocks = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    f16_fields = {T.Q8_0: [0], T.Q4_0: [0], T.Q4_K: [0, 2], T.Q6_K: [208]}[qtype]
    for at in f16_fields:
        blocks[:, at : at + 2] = random_f16_scales(n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(rows, -1)


def special_f32() -> np.ndarray:
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    flat = x.reshape(-1)
    flat[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40]  # 1e-40: an f32 subnormal
    return x


def special_f16() -> np.ndarray:
    x = (rng.standard_normal((4, 64)) * 10).astype(np.float16)
    bits = x.reshape(-1).view(np.uint16)
    # +0, -0, smallest and largest subnormal, largest finite (both signs), +-inf, quiet NaN.
    bits[:9] = [0x0000, 0x8000, 0x0001, 0x03FF, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00]
    return x


# name -> (ggml type, array to store: f32/f16 values or quantized u8 blocks)
def make_tensors() -> dict[str, list[tuple[str, T, np.ndarray]]]:
    files: dict[str, list[tuple[str, T, np.ndarray]]] = {
        "f32": [
            ("f32.cube", T.F32, special_f32()),
            ("f32.vector", T.F32, rng.standard_normal(7).astype(np.float32)),
        ],
        "f16": [
            ("f16.matrix", T.F16, special_f16()),
            ("f16.4d", T.F16, rng.standard_normal((2, 3, 2, 8)).astype(np.float16)),
        ],
    }
    for qtype in (T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K):
        key = qtype.name.lower()
        smooth = smooth_matrix()
        blocks = quantize_any(smooth, qtype)
        back = dequantize(blocks, qtype)
        rel = np.abs(back - smooth).max(axis=1) / np.abs(smooth).max(axis=1)
        print(f"{qtype.name}: round-trip error per row / row max: {np.array2string(rel, precision=3)}")
        files[key] = [(f"{key}.smooth", qtype, blocks), (f"{key}.blocks", qtype, random_blocks(qtype))]
    return files


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------

# (key, value type, value, element type for arrays). general.architecture = "gpt2" comes from
# GGUFWriter itself. Floats are dyadic so their JSON text is exact.
METADATA = [
    ("general.name", V.STRING, "glassbox GGUF fixture", None),
    ("gpt2.context_length", V.UINT32, 64, None),
    ("glassbox.u8", V.UINT8, 200, None),
    ("glassbox.i8", V.INT8, -100, None),
    ("glassbox.u16", V.UINT16, 60000, None),
    ("glassbox.i16", V.INT16, -30000, None),
    ("glassbox.i32", V.INT32, -123456, None),
    ("glassbox.u64", V.UINT64, 2**40 + 3, None),
    ("glassbox.i64", V.INT64, -(2**40), None),
    ("glassbox.f32", V.FLOAT32, 0.15625, None),
    ("glassbox.f64", V.FLOAT64, 3.0009765625, None),
    ("glassbox.bool", V.BOOL, True, None),
    ("tokenizer.ggml.tokens", V.ARRAY, ["<|endoftext|>", "a", " the", "é", "日本", ""], V.STRING),
    ("tokenizer.ggml.scores", V.ARRAY, [0.5, -1.25, 3.0], V.FLOAT32),
    ("glassbox.u8_array", V.ARRAY, [0, 1, 255], V.UINT8),
    ("glassbox.nested", V.ARRAY, [[1, 2], [3, 4, 5]], V.ARRAY),
]

TYPE_NAMES = {
    V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32", V.INT32: "i32",
    V.UINT64: "u64", V.INT64: "i64", V.FLOAT32: "f32", V.FLOAT64: "f64", V.BOOL: "bool",
    V.STRING: "string", V.ARRAY: "array",
}


def expected_metadata(alignment: int | None) -> list[dict]:
    out = [{"key": "general.architecture", "type": "string", "value": "gpt2"}]
    for key, vtype, value, sub in METADATA:
        name = TYPE_NAMES[vtype] if sub is None else f"array of {TYPE_NAMES[sub]}"
        out.append({"key": key, "type": name, "value": value})
    if alignment is not None:
        out.append({"key": "general.alignment", "type": "u32", "value": alignment})
    return out


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_gguf(path: Path, tensors: list[tuple[str, T, np.ndarray]], alignment: int | None) -> None:
    writer = gguf.GGUFWriter(path, "gpt2")
    for key, vtype, value, sub in METADATA:
        writer.add_key_value(key, value, vtype, sub_type=sub)
    if alignment is not None:
        writer.add_custom_alignment(alignment)  # also writes general.alignment
    for name, qtype, array in tensors:
        if qtype in (T.F32, T.F16):
            writer.add_tensor(name, array)
        else:
            writer.add_tensor(name, array, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in list(OUT.glob("*.gguf")) + list(OUT.glob("*.f32")):
        old.unlink()
    files = make_tensors()
    layout = [(f"{key}.gguf", tensors, None) for key, tensors in files.items()]
    layout.append(("all_types.gguf", [t for tensors in files.values() for t in tensors], 64))

    index_files = []
    for file_name, tensors, alignment in layout:
        path = OUT / file_name
        write_gguf(path, tensors, alignment)
        # Expected values: the numpy reference on the bytes read back from the file.
        reader = gguf.GGUFReader(path)
        entries = []
        for (name, qtype, array), rt in zip(tensors, reader.tensors, strict=True):
            assert rt.name == name and rt.tensor_type == qtype, (rt.name, rt.tensor_type)
            assert np.array_equal(np.asarray(rt.data).view(np.uint8).reshape(-1), array.view(np.uint8).reshape(-1))
            values = dequantize(np.asarray(rt.data), qtype).astype("<f4")
            shape = [int(d) for d in reversed(rt.shape.tolist())]  # GGUF dims are fastest first
            assert values.size == int(np.prod(shape)), (name, values.shape, shape)
            expected = f"{name}.f32"
            if not (OUT / expected).exists():
                (OUT / expected).write_bytes(values.reshape(-1).tobytes())
            elif (OUT / expected).read_bytes() != values.reshape(-1).tobytes():
                raise SystemExit(f"{name}: all_types.gguf dequantizes differently from its own file")
            entries.append({"name": name, "type": qtype.name, "type_id": int(qtype), "shape": shape, "expected": expected})
        index_files.append(
            {
                "file": file_name,
                "size": path.stat().st_size,
                "alignment": alignment or 32,
                "metadata": expected_metadata(alignment),
                "tensors": entries,
            }
        )
        print(f"wrote {path.relative_to(OUT.parent.parent)} ({path.stat().st_size} bytes): "
              + ", ".join(f"{e['name']} {e['type']} {e['shape']}" for e in entries))

    index = {
        "generator": "python/make_gguf_fixtures.py",
        "gguf_package": importlib.metadata.version("gguf"),
        "ggml_types": [
            {"name": t.name, "id": int(t), "block_size": bs, "type_size": ts}
            for t, (bs, ts) in gguf.GGML_QUANT_SIZES.items()
        ],
        "files": index_files,
    }
    (OUT / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    for f32 in sorted(OUT.glob("*.f32")):
        print(f"wrote {f32.relative_to(OUT.parent.parent)} ({f32.stat().st_size} bytes)")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {(OUT / 'index.json').relative_to(OUT.parent.parent)}; fixtures/gguf/ holds {total} bytes")


if __name__ == "__main__":
    main()
