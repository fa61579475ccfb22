// A regression test run in a child process: the weight gradient of Gated PixelCNN's dilated
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

test('dilated conv2d weight gradient at Gated PixelCNN size: no heap corruption', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-dil-'));
  try {
    const script = join(dir, 'child.mts');
    writeFileSync(script, `
      import * as ax from ${JSON.stringify(join(root, 'src/index.ts'))};
      const g = new ax.Generator(3);
      const x = ax.randn([32, 28, 28, 64], { generator: g }).requireGrad();
      const w = ax.mul(ax.randn([2, 3, 64, 128], { generator: g }), 0.05).requireGrad();
      for (let i = 0; i < 3; i++) ax.conv2d(x, w, { padding: [4, 0, 4, 4], dilation: 4 }).sum().backward();
      for (let i = 0; i < 200; i++) Buffer.allocUnsafeSlow(1 << 20)[0] = 1;
      const d = w.grad.data; let s = 0; for (let i = 0; i < d.length; i += 97) s += d[i];
      console.log(JSON.stringify({ backend: ax.backendName(), probe: s }));
    `);
    const run = (backend: string) => {
      const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', script], { env: { ...process.env, ARPIX_BACKEND: backend }, encoding: 'utf8', cwd: root });
      assert.equal(r.status, 0, `${backend}: exit ${r.status} ${r.signal ?? ''} ${r.stderr.slice(-300)}`);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { backend: string; probe: number };
    };
    const native = run('native');
    assert.equal(native.backend, 'native');
    assert.ok(Number.isFinite(native.probe));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
