"""What the PyTorch bench scripts share: one JSON object per line, and timed runs after warm-up."""

import json
import time


def emit(**kw):
    print(json.dumps(kw), flush=True)


def timed(fn, runs, warmup):
    """Seconds of each of `runs` calls of fn after `warmup` discarded ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out
