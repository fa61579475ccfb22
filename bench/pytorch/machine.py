"""What a PyTorch mirror's figures depend on besides its code: the BLAS its products run on, its
threads, and whether it is timed under bf16 autocast. Every mirror script puts `describe()` in its
ready (or result) line, so each suite says what the PyTorch side ran on and warns when it is not
OpenBLAS (bench/torch.ts noteTorch); which precisions to time is the suite's choice (--autocast).

Debian's python3-torch is built with BLAS_INFO=generic: its float32 matmuls call whatever
libblas.so.3 the alternatives system (or LD_LIBRARY_PATH) resolves. With Debian's reference BLAS
(libblas3) they run at a few GFLOP/s, ~100x slower than OpenBLAS (libopenblas0-pthread), so the
library that provides torch's sgemm_ in this process is what decides, not torch's build flags.
"""

import contextlib
import ctypes
import os
import re
import time

import torch


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p), ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _mapped(pattern):
    """Real paths of the shared objects mapped into this process whose path matches `pattern`."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line and re.search(pattern, line.split()[-1].lower())}
    except OSError:
        return []
    return sorted({os.path.realpath(p) for p in paths})


def _sgemm_provider():
    """The file whose sgemm_ libtorch_cpu's products call: dlsym on libtorch_cpu's handle searches it
    and its dependencies in the order its own references resolve; dladdr names the file. Several
    BLAS-like libraries can be mapped at once (OpenBLAS's liblapack beside a reference libblas), so
    which one is mapped does not say which one computes."""
    for lib in _mapped(r"libtorch_cpu\.so"):
        try:
            address = ctypes.cast(ctypes.CDLL(lib).sgemm_, ctypes.c_void_p)
        except (OSError, AttributeError):
            continue
        info = _DlInfo()
        if ctypes.CDLL(None).dladdr(address, ctypes.byref(info)) and info.dli_fname:
            return os.path.realpath(info.dli_fname.decode())
    return None


def _openblas_config(path):
    """OpenBLAS's own description ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... Cooperlake") and its thread count, or (None, None)."""
    try:
        lib = ctypes.CDLL(path)
        get_config = lib.openblas_get_config
    except (OSError, AttributeError, TypeError):
        return None, None
    get_config.restype = ctypes.c_char_p
    return get_config().decode(), lib.openblas_get_num_threads()


def _sgemm_gflops(n=256):
    """The best of a few n×n float32 products: OpenBLAS runs them at tens of GFLOP/s per core, the
    reference BLAS at one or two."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(4):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def blas():
    """{"name", "openblas", "library", "config", "threads", "gflops"}: the BLAS behind torch's
    float32 products. `name` is OpenBLAS, MKL, BLIS, ATLAS, "reference BLAS" (Debian's libblas3,
    the netlib code), or torch's BLAS_INFO when no library provides sgemm_ (a BLAS linked in)."""
    gflops = _sgemm_gflops()
    path = _sgemm_provider()
    config, threads = _openblas_config(path) if path else (None, None)
    low = (path or "").lower()
    if config is not None or "openblas" in low:
        name = "OpenBLAS"
    elif "mkl" in low:
        name = "MKL"
    elif "blis" in low:
        name = "BLIS"
    elif "atlas" in low:
        name = "ATLAS"
    elif "blas" in low:
        name = "reference BLAS"
    else:
        m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        name = f"BLAS_INFO={m.group(1) if m else 'unknown'}, sgemm_ from {path or 'no shared library'}"
    return {"name": name, "openblas": name == "OpenBLAS", "library": path, "config": config, "threads": threads, "gflops": round(gflops, 1)}


def set_blas_threads(n):
    """Sets OpenBLAS's thread count from now on (openblas_set_num_threads); False when torch's
    products do not run on OpenBLAS."""
    path = _sgemm_provider()
    try:
        ctypes.CDLL(path).openblas_set_num_threads(ctypes.c_int(n))
    except (OSError, AttributeError, TypeError):
        return False
    return True


def blas_thread_choices(threads, products=True):
    """OpenBLAS thread counts worth timing for a network: `threads`, and 1 where its float32
    products alternate with other ops (`products`; not convolutions, which run on oneDNN). The
    pthreads pool of Debian's OpenBLAS spins for a while after each product (2^28 cycles by
    default) beside torch's OpenMP threads, so on few cores the two pools fight, and a user who
    sees it sets OPENBLAS_NUM_THREADS=1 — 3× faster on the Row LSTM on two cores."""
    if not products or threads == 1 or not set_blas_threads(threads):
        return [threads]
    return [threads, 1]


def precision(name):
    """A context for one timed run: `fp32` (nothing) or `bf16` (torch.cpu.amp.autocast)."""
    if name == "bf16":
        return torch.cpu.amp.autocast(dtype=torch.bfloat16)
    if name == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"unknown precision {name!r} (fp32, bf16)")


def describe():
    """What a ready line says about this process: torch, its threads, its BLAS."""
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas(),
            "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}
