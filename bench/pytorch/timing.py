"""What the PyTorch bench scripts share: one JSON object per line, and timed runs after warm-up."""

import json
import sys
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


def serve(fn, warmup):
    """The interleaving protocol of the bench suites: after `warmup` discarded calls of fn prints
    {"ready": true}; then, for each line read from stdin, times one call and prints
    {"format": <the line>, "seconds": ...}, until the end of input."""
    for _ in range(warmup):
        fn()
    emit(ready=True)
    for line in sys.stdin:
        t = time.perf_counter()
        fn()
        emit(format=line.strip(), seconds=time.perf_counter() - t)
