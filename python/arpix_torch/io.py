"""safetensors without the safetensors package (Debian's python3-torch does not bring it), read as
strictly as arpix reads it (src/io/safetensors.ts):

    8 bytes   N, the header's length, unsigned little-endian
    N bytes   a UTF-8 JSON object: name -> {dtype, shape, data_offsets: [begin, end]} and an
              optional "__metadata__" map of string -> string; padded with spaces
    the rest  the tensors' bytes, little-endian, row-major, tiling the section exactly

Everything in the header is checked before a tensor is made; a FormatError names the file and what
is wrong with it, in one line. The SHA-256 sums arpix records in its checkpoints (src/io/checkpoint.ts)
are computed here the same way, so train.py can check and write them.
"""

import hashlib
import json
import os
import stat
import struct
import tempfile

import numpy as np
import torch


class FormatError(Exception):
    """A file that is not what it should be; str() is the one line to show."""

    def __init__(self, path, detail):
        super().__init__(f"{path}: {detail}")


# Element sizes of the dtypes read, by their safetensors names, and the NumPy type that holds them
# (BF16 has none: its bits are read as uint16 and widened to float32, exactly).
_NUMPY = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.uint8,
}
ITEM_SIZE = {k: np.dtype(v).itemsize for k, v in _NUMPY.items()}
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
# Dtypes of the format with no lossless type here.
_UNSUPPORTED = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"}
_WRITE = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.int32): "I32", np.dtype(np.int64): "I64", np.dtype(np.uint8): "U8"}
# The reference implementation's cap; a larger header is a corrupt length, not a real header.
MAX_HEADER = 100_000_000
METADATA = "__metadata__"


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def strict_json(text):
    """json.loads without NaN/Infinity (which JSON does not have and arpix's parser refuses)."""
    return json.loads(text, parse_constant=_reject_constant)


def read_regular_file(path, what):
    """The bytes of a regular file; a folder, FIFO or device is refused at once rather than read forever."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FormatError(path, f"does not exist; give {what}") from None
    except OSError as e:
        raise FormatError(path, f"cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(path, f"is not a regular file; give {what}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise FormatError(path, f"cannot be read ({e.strerror})") from None


class Entry:
    """Where one tensor lies in the data section, as the header's table says."""

    def __init__(self, name, dtype, shape, begin, end):
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end


def _is_index(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def parse_header(raw, path):
    """(entries, metadata, data_start) of safetensors bytes, every field checked as arpix checks it."""
    def bad(detail):
        return FormatError(path, f"not a valid safetensors file: {detail}")
    if len(raw) < 8:
        raise bad(f"{len(raw)} bytes is too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise bad(f"the header length {n} runs beyond the end of the file ({len(raw)} bytes); the file is truncated or not safetensors")
    if n > MAX_HEADER:
        raise bad(f"the header length {n} exceeds the {MAX_HEADER}-byte limit")
    if n < 2:
        raise bad(f"the header length {n} is too short for a JSON object")
    try:
        text = raw[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad(f"the header is not valid UTF-8 (byte {e.start})") from None
    if not text.startswith("{"):
        raise bad("the header must begin with '{'")
    try:
        header = strict_json(text)
    except (ValueError, RecursionError) as e:
        raise bad(f"the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad("the header must be a JSON object")

    metadata = header.get(METADATA, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad(f"'{METADATA}' must be an object of strings")

    data_len = len(raw) - 8 - n
    entries = []
    for name, info in header.items():
        if name == METADATA:
            continue
        where = f"tensor '{name}'"
        if not isinstance(info, dict):
            raise bad(f"{where} must be an object with dtype, shape and data_offsets")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str):
            raise bad(f"{where} has no dtype string")
        if dtype not in ITEM_SIZE:
            if dtype in _UNSUPPORTED:
                raise bad(f"{where} has dtype {dtype}, which train.py cannot hold without loss")
            raise bad(f"{where} has unknown dtype {json.dumps(dtype)}")
        if not isinstance(shape, list) or not all(_is_index(s) for s in shape):
            raise bad(f"{where} has shape {json.dumps(shape)}; expected an array of non-negative integers")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_index(o) for o in offsets) or offsets[0] > offsets[1]:
            raise bad(f"{where} has data_offsets {json.dumps(offsets)}; expected [begin, end] with 0 <= begin <= end")
        begin, end = offsets
        need = int(np.prod(shape, dtype=object)) * ITEM_SIZE[dtype]
        if end - begin != need:
            raise bad(f"{where}: shape {shape} of {dtype} needs {need} bytes but data_offsets [{begin}, {end}] span {end - begin}")
        if end > data_len:
            raise bad(f"{where}: data_offsets [{begin}, {end}] run beyond the data section ({data_len} bytes); the file is truncated")
        entries.append(Entry(name, dtype, shape, begin, end))

    # The tensors tile the data section exactly: an overlap, a hole or a tail means a corrupt table.
    pos, prev = 0, None
    for e in sorted(entries, key=lambda e: (e.begin, e.end)):
        if e.begin < pos:
            raise bad(f"tensors '{prev.name}' and '{e.name}' overlap")
        if e.begin > pos:
            raise bad(f"bytes {pos}..{e.begin} of the data section belong to no tensor (before '{e.name}')")
        pos, prev = e.end, e
    if pos != data_len:
        raise bad(f"the data section has {data_len} bytes but the tensors cover {pos}")
    return entries, metadata, 8 + n


def decode_entry(raw, e, data_start, path):
    """One tensor as torch: floats as they are (BF16 widened to float32, exactly), integers as int64."""
    arr = np.frombuffer(raw, dtype=np.dtype(_NUMPY[e.dtype]).newbyteorder("<"), count=(e.end - e.begin) // ITEM_SIZE[e.dtype], offset=data_start + e.begin)
    if e.dtype == "BF16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    elif e.dtype == "U64" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise FormatError(path, f"tensor '{e.name}' (U64) holds {int(arr.max())}, beyond int64")
    elif e.dtype not in FLOAT_DTYPES:
        arr = arr.astype(np.int64)
    # A copy in native byte order: writable, aligned and independent of the file's bytes.
    return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True).reshape(e.shape))


def read_safetensors(path):
    """(tensors by name, metadata dict of strings) of a safetensors file."""
    raw = read_regular_file(path, "a safetensors file")
    entries, meta, start = parse_header(raw, path)
    return {e.name: decode_entry(raw, e, start, path) for e in entries}, meta


# ---- the sums arpix records in a checkpoint (src/io/checkpoint.ts tensorSum / metaSum) ------------


def _js_utf8(s):
    """A string's UTF-8 as Node's hash.update(string) encodes it: a lone surrogate becomes U+FFFD."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")


def tensor_sum(entries, data):
    """SHA-256 of the tensor table (name, dtype, shape, offsets; sorted by name as JavaScript sorts
    strings, by UTF-16 code units) and then of the data section's bytes."""
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.name.encode("utf-16-be", "surrogatepass")):
        h.update(_js_utf8(f"{e.name}\t{e.dtype}\t{','.join(str(s) for s in e.shape)}\t{e.begin}\t{e.end}\n"))
    h.update(data)
    return h.hexdigest()


def meta_sum(text):
    return hashlib.sha256(_js_utf8(text)).hexdigest()


# ---- writing ----------------------------------------------------------------------------------


def layout(arrays):
    """The entries encode_safetensors gives `arrays` (name -> contiguous NumPy array): wider
    elements first, as arpix lays them out, so every tensor starts at a multiple of its size."""
    entries, off = [], 0
    for name in sorted(arrays, key=lambda k: -arrays[k].dtype.itemsize):
        a = arrays[name]
        if a.dtype not in _WRITE:
            raise TypeError(f"tensor '{name}' has dtype {a.dtype}, which the writer does not handle")
        entries.append(Entry(name, _WRITE[a.dtype], list(a.shape), off, off + a.nbytes))
        off += a.nbytes
    return entries


def encode_safetensors(tensors, meta=None, sums_of=None):
    """The bytes of a safetensors file. With `sums_of` (a metadata key), the header also records
    arpix's SHA-256 sums of the tensors and of that key's text under `<key>.sha256`."""
    arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in tensors.items()}
    entries = layout(arrays)
    data = b"".join(arrays[e.name].astype(arrays[e.name].dtype.newbyteorder("<"), copy=False).tobytes() for e in entries)
    metadata = {k: str(v) for k, v in (meta or {}).items()}
    if sums_of is not None:
        metadata[f"{sums_of}.sha256"] = json.dumps({"tensors": tensor_sum(entries, data), "meta": meta_sum(metadata[sums_of])})
    header = {METADATA: metadata} if metadata else {}
    placed = {e.name: e for e in entries}
    for name in arrays:  # the header lists the tensors in the caller's order
        e = placed[name]
        header[name] = {"dtype": e.dtype, "shape": e.shape, "data_offsets": [e.begin, e.end]}
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def write_atomic(path, data):
    """Writes to a temporary file beside `path` and renames it: no crash leaves half a file."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_safetensors(path, tensors, meta=None, sums_of=None):
    write_atomic(path, encode_safetensors(tensors, meta, sums_of))
