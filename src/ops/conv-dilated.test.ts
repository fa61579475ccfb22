// Regression tests run in a child process. The weight gradient of Gated PixelCNN's dilated
// layers once went through oneDNN's im2col + gemm backward-weights, which corrupted the heap;
// glibc aborted the process once allocations moved (under --cpu-prof, reliably). The child must
// exit cleanly with a finite gradient; the values of the decomposition are checked against finite
// differences and PyTorch in gradients.test.ts and pytorch-fixtures.test.ts.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs body (TypeScript, `ax` in scope, printing nothing) in a child under --cpu-prof; returns its probe. */
function underProfiler(prefix: string, body: string): number {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    const script = join(dir, 'child.mts');
    writeFileSync(script, `
      import * as ax from ${JSON.stringify(join(root, 'src/index.ts'))};
      ${body}
      for (let i = 0; i < 200; i++) Buffer.allocUnsafeSlow(1 << 20)[0] = 1;
      const d = probe.data; let s = 0; for (let i = 0; i < d.length; i += 97) s += d[i];
      console.log(JSON.stringify({ backend: ax.backendName(), probe: s }));
    `);
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-interval=50', `--cpu-prof-dir=${dir}`, '--import', 'tsx', script], { env: { ...process.env, ARPIX_BACKEND: 'native' }, encoding: 'utf8', cwd: root });
    assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''} ${r.stderr.slice(-300)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { backend: string; probe: number };
    assert.equal(out.backend, 'native');
    return out.probe;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('dilated conv2d weight gradient at Gated PixelCNN size: no heap corruption', () => {
  const probe = underProfiler('arpix-dil-', `
    const g = new ax.Generator(3);
    const x = ax.randn([32, 28, 28, 64], { generator: g }).requireGrad();
    const w = ax.mul(ax.randn([2, 3, 64, 128], { generator: g }), 0.05).requireGrad();
    for (let i = 0; i < 3; i++) ax.conv2d(x, w, { padding: [4, 0, 4, 4], dilation: 4 }).sum().backward();
    const probe = w.grad;
  `);
  assert.ok(Number.isFinite(probe));
});

// Row Winograd and the one-row convolutions' backward pass run their products on oneDNN matmuls
// inside an OpenMP region. oneDNN 2.6's
// dnnl_sgemm (and matmuls it serves as gemm:jit, e.g. a transposed batched operand) corrupted the
// heap when the profiler's signal arrived mid-call; the products must stay on brgemm.
test('row-Winograd and one-row convolutions, forward and backward, under a sampling profiler: no heap corruption', () => {
  const probe = underProfiler('arpix-roww-', `
    const { nativeBackend } = await import(${JSON.stringify(join(root, 'src/backends/registry.ts'))});
    const k = nativeBackend();
    const g = new ax.Generator(4);
    const x = ax.randn([32, 28, 28, 64], { generator: g }), dy = ax.randn([32, 28, 28, 128], { generator: g });
    const w = ax.mul(ax.randn([2, 3, 64, 128], { generator: g }), 0.05);
    const y = ax.zeros(dy.shape), probe = ax.zeros(x.shape), dw = ax.zeros(w.shape);
    const p = { strideH: 1, strideW: 1, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1, rowWinograd: true };
    // A horizontal-stack layer (1×2, dilated), whose backward pass is row_conv.cc's products.
    const wh = ax.mul(ax.randn([1, 2, 64, 128], { generator: g }), 0.05), dwh = ax.zeros(wh.shape), dxh = ax.zeros(x.shape);
    const ph = { strideH: 1, strideW: 1, padTop: 0, padLeft: 2, dilationH: 2, dilationW: 2 };
    for (let i = 0; i < 60; i++) {
      k.conv2d(x, w, null, y, p);
      k.conv2dBackward(x, dy, w, probe, i % 4 === 0 ? dw : null, null, p, 0);
      k.conv2dBackward(x, dy, wh, dxh, dwh, null, ph, 0);
    }
  `);
  assert.ok(Number.isFinite(probe));
});
