// The page's threads in Node: a batch split into parts, each sampled on its own with the engine's
// job (`part`), and the parts' streamed rows and pixels merged back give the rows and pixels, and
// the images, of one worker sampling the whole batch — in order, each row once, only when whole.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import '../backends/node.js';
import { ArpixError } from '../errors.js';
import { createModel } from '../models/index.js';
import { familyCases } from '../testing/families.js';
import { checkModelJob, facts, runModelJob, type LoadedModel } from './engine.js';
import { PartsMerger, splitBatch } from './merge.js';
import type { ModelJob, WorkerMessage } from './protocol.js';

describe('splitBatch', () => {
  test('parts are contiguous, cover the batch and differ in size by at most one', () => {
    assert.deepEqual(splitBatch(5, 2), [{ from: 0, to: 3 }, { from: 3, to: 5 }]);
    assert.deepEqual(splitBatch(5, 3), [{ from: 0, to: 2 }, { from: 2, to: 4 }, { from: 4, to: 5 }]);
    assert.deepEqual(splitBatch(4, 4), [{ from: 0, to: 1 }, { from: 1, to: 2 }, { from: 2, to: 3 }, { from: 3, to: 4 }]);
    assert.deepEqual(splitBatch(7, 1), [{ from: 0, to: 7 }]);
  });

  test('throws when there are more parts than images, or none', () => {
    assert.throws(() => splitBatch(2, 3), /k must be an integer in 1\.\.2, got 3/);
    assert.throws(() => splitBatch(2, 0), /k must be an integer in 1\.\.2, got 0/);
    assert.throws(() => splitBatch(0, 1), /n must be a positive integer/);
  });
});

describe('PartsMerger', () => {
  test('a unit is handed on once, when its last part arrives, with each part\'s images in their places', () => {
    const m = new PartsMerger(5, splitBatch(5, 2)); // images 0..2 and 3..4, two values each
    assert.equal(m.add(1, 0, Int32Array.from([30, 31, 40, 41])), null, 'the second part first: not whole yet');
    assert.equal(m.waiting, 1);
    assert.equal(m.add(1, 1, Int32Array.from([32, 33, 42, 43])), null, 'a part may run ahead by several units');
    assert.deepEqual(Array.from(m.add(0, 0, Int32Array.from([0, 1, 10, 11, 20, 21]))!), [0, 1, 10, 11, 20, 21, 30, 31, 40, 41]);
    assert.deepEqual(Array.from(m.add(0, 1, Int32Array.from([2, 3, 12, 13, 22, 23]))!), [2, 3, 12, 13, 22, 23, 32, 33, 42, 43]);
    assert.equal(m.waiting, 0);
  });

  test('throws when a part sends a unit twice, values that are not whole images, or another size than the others', () => {
    const m = new PartsMerger(4, splitBatch(4, 2));
    m.add(0, 0, new Int32Array(6));
    assert.throws(() => m.add(0, 0, new Int32Array(6)), /part 0 sent unit 0 twice/);
    assert.throws(() => m.add(1, 0, new Int32Array(5)), /part 1 sent 5 values for its 2 images/);
    assert.throws(() => m.add(1, 0, new Int32Array(4)), /part 1 sent 2 values per image, the others 3/);
    assert.throws(() => m.add(2, 0, new Int32Array(4)), /no part 2 \(there are 2\)/);
  });
});

/** The engine's messages of a job, as a worker posts them. */
function messages(loaded: LoadedModel, job: ModelJob): WorkerMessage[] {
  const out: WorkerMessage[] = [];
  checkModelJob(facts(loaded.model), job);
  runModelJob(loaded, job, (m) => out.push(m), () => false);
  return out;
}

/** Part messages interleaved as workers running at different speeds would send them, then merged. */
function mergedStream(parts: WorkerMessage[][], n: number, width: number, ranges: { from: number; to: number }[]): WorkerMessage[] {
  const merger = new PartsMerger(n, ranges);
  const out: WorkerMessage[] = [];
  const at = parts.map(() => 0);
  // Part p sends p + 1 messages per turn: the parts drift apart.
  while (at.some((i, p) => i < parts[p]!.length)) {
    parts.forEach((msgs, p) => {
      for (let k = 0; k <= p && at[p]! < msgs.length; k++) {
        const m = msgs[at[p]!++]!;
        if (m.type === 'row') {
          const values = merger.add(p, m.y, m.values);
          if (values) out.push({ type: 'row', y: m.y, values });
        } else if (m.type === 'pixel') {
          const values = merger.add(p, m.y * width + m.x, m.values);
          if (values) out.push({ type: 'pixel', y: m.y, x: m.x, values });
        }
      }
    });
  }
  assert.equal(merger.waiting, 0);
  return out;
}

describe('engine jobs split into parts', () => {
  const cases = familyCases([
    { name: 'categorical RGB', height: 4, width: 3, channels: 3, likelihood: { kind: 'categorical', levels: 8 } },
    { name: 'mixture RGB', height: 3, width: 4, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2 } },
  ]).filter(([name]) => /gated-pixelcnn|pixelcnn\+\+|row-lstm|image-gpt/.test(name));

  for (const [name, cfg] of cases) {
    for (const granularity of ['row', 'pixel'] as const) {
      test(`${name}, ${granularity} by ${granularity}: merged parts stream what one worker streams`, () => {
        const model = createModel(cfg, { seed: 2 });
        const loaded: LoadedModel = { model, config: null as never, weights: 'raw' };
        const { width, height, channels } = model.config;
        const base = { op: 'sample' as const, n: 5, seed: 8, temperature: 1, label: null, granularity, complete: null };
        const whole = messages(loaded, base).filter((m) => m.type === 'row' || m.type === 'pixel');
        assert.equal(whole.length, granularity === 'row' ? height : height * width);
        for (const k of [2, 3]) {
          const ranges = splitBatch(5, k);
          const parts = ranges.map((part) => messages(loaded, { ...base, part }));
          assert.deepEqual(mergedStream(parts, 5, width, ranges), whole, `${k} parts`);
        }
        // Completion: kept rows and a mask, the same in every part.
        const values = Array.from({ length: height * width * channels }, (_, i) => i % 7);
        const mask = Array.from({ length: height * width }, (_, i) => (i % 3 === 0 ? 1 : 0));
        const complete = { ...base, complete: { values, keepRows: 1, mask } };
        const ranges = splitBatch(5, 2);
        assert.deepEqual(mergedStream(ranges.map((part) => messages(loaded, { ...complete, part })), 5, width, ranges), messages(loaded, complete).filter((m) => m.type === 'row' || m.type === 'pixel'));
      });
    }
  }

  test('a part outside the batch is refused in one line', () => {
    const [, cfg] = familyCases([{ name: 'grey', height: 2, width: 2, channels: 1, likelihood: { kind: 'categorical', levels: 4 } }])[0]!;
    const f = facts(createModel(cfg, { seed: 1 }));
    const job = { op: 'sample' as const, n: 3, seed: 1, temperature: 1, label: null, granularity: 'row' as const, complete: null };
    assert.throws(() => checkModelJob(f, { ...job, part: { from: 2, to: 4 } }), (e: unknown) => e instanceof ArpixError && e.message === 'the part of the batch must be images from…to−1 with 0 ≤ from < to ≤ 3, got {"from":2,"to":4}');
    assert.throws(() => checkModelJob(f, { ...job, part: { from: 1, to: 1 } }), /0 ≤ from < to ≤ 3/);
    assert.doesNotThrow(() => checkModelJob(f, { ...job, part: { from: 1, to: 3 } }));
  });
});
