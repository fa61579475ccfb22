// The torch.save family of the fuzz suite (src/testing/torch-fuzz.ts): its writer makes what
// torch.load reads, and a bounded run of byte and structure mutations imports without a crash, a
// hang, an internal error, a silently accepted file, or a refused re-encoding of the same weights.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { findTorchPython } from '../export/python.js';
import { createModel } from '../models/index.js';
import { failureCount, formatTallies } from './fuzz.js';
import { encodeTorchSave, fuzzTorchSave, tinyTorchConfig, torchSaveSpec } from './torch-fuzz.js';

const python = findTorchPython();

test('the writer makes files torch.load reads as the same state dict, stored and deflated', { skip: python === null && 'no Python here imports torch (apt-get install python3-torch)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-torch-writer-'));
  try {
    const sd = createModel(tinyTorchConfig().model, { seed: 3 }).stateDict({ layout: 'pytorch' });
    const spec = torchSaveSpec(sd);
    writeFileSync(join(dir, 'stored.pt'), encodeTorchSave(spec));
    for (const name of ['data.pkl', ...[...spec.storages.keys()].map((k) => `data/${k}`)]) spec.entries.set(name, { deflate: true });
    spec.lightning = true;
    writeFileSync(join(dir, 'deflated.pt'), encodeTorchSave(spec));
    const script = `
import json, sys, torch
for name in ['stored.pt', 'deflated.pt']:
    sd = torch.load(sys.argv[1] + '/' + name)
    sd = sd.get('state_dict', sd)
    print(json.dumps({k: {'shape': list(t.shape), 'data': t.flatten().tolist()} for k, t in sd.items()}))
`;
    const r = spawnSync(python!, ['-c', script, dir], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
    assert.equal(r.status, 0, r.stderr);
    const loaded = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, { shape: number[]; data: number[] }>);
    assert.equal(loaded.length, 2);
    for (const got of loaded) {
      assert.deepEqual(Object.keys(got), Object.keys(sd));
      for (const [k, t] of Object.entries(sd)) {
        assert.deepEqual(got[k]!.shape, t.shape, k);
        assert.deepEqual(got[k]!.data, Array.from(t.data), k);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('torch.save fuzz: 600 damaged and re-encoded state dicts, each refused in one line or imported exactly', async () => {
  const t = await fuzzTorchSave({ count: 600 });
  assert.equal(failureCount(t), 0, formatTallies([t]));
  // Both outcomes must be exercised: most cases are damage, some are harmless.
  assert.ok(t.counts['clean-error'] > 0.7 * t.tried && t.counts.accepted > 0.03 * t.tried, formatTallies([t]));
});
