// The exported train.py's family of the fuzz suite: a real export (a tiny gated PixelCNN on random
// 8×8 images) and a real checkpoint train.py wrote (Adam moments and averaged weights), damaged
// five ways, each case read by train.py's own prepare() — the function that checks every input
// before a run writes anything — in one long-lived Python process that answers case by case:
//
// - checkpoint bytes:  random edits of the file (mutateBytes). The SHA-256 sums cover the tensor
//                      table, the data and the metadata, so an accepted file must load exactly
//                      the original state (only JSON whitespace in the header may change).
// - checkpoint meta:   the `arpix` metadata edited as JSON and re-signed, as a buggy or hostile
//                      writer would: refused with one line, or loaded.
// - checkpoint tensor: a tensor reshaped, retyped, removed, added, doubled, or given a NaN or an
//                      infinity, re-signed: always damage, so always refused.
// - config.json:       the run config edited as JSON: refused with one line, or loaded.
// - data/:             data.json edited as JSON, or the training images' bytes edited: a file of
//                      another length must be refused, other bytes are images like any other.
//
// A refusal is clean when it is one line naming the damaged file; anything else escaping prepare()
// is an internal error. prepare() writes nothing, so a case that creates its --out changed a file.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { exportForTorch } from '../export/export.js';
import { findTorchPython } from '../export/python.js';
import { applyOverrides, presetRaw, resolveRunConfig } from '../train/index.js';
import { INTERNAL_PHRASES, mutateBytes, mutateJson, runFuzz, type FuzzTally, type Verdict } from './fuzz.js';
import { damageTensor } from './checkpoint-fuzz.js';

/** One case for the harness: the inputs prepare() reads. */
interface Inputs { config: string; data: string; init: string; out: string }

/** What prepare() did with a case. */
interface Answer { verdict: 'loaded' | 'refused' | 'internal'; message?: string; digest?: string }

/**
 * Reads cases as JSON lines on stdin and answers each with one JSON line: refused (FormatError or
 * Stop, with the message train.py prints), internal (anything else), or loaded with a digest of
 * the state prepare() built (weights, optimiser state, average, metadata).
 */
const HARNESS = String.raw`
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import torch
import train
from arpix_torch.io import FormatError

def digest(ready):
    h = hashlib.sha256()
    for k, v in sorted(ready.model.state_dict().items()):
        h.update(k.encode()); h.update(v.detach().numpy().tobytes())
    for i, p in enumerate(ready.model.parameters()):
        for k, v in sorted(ready.opt.state.get(p, {}).items()):
            h.update(f"{i}.{k}".encode()); h.update(v.detach().numpy().tobytes() if torch.is_tensor(v) else str(v).encode())
    if ready.ema is not None:
        for k, v in sorted(ready.ema.shadow.items()):
            h.update(k.encode()); h.update(v.numpy().tobytes())
        h.update(str(ready.ema.updates).encode())
    h.update(json.dumps(ready.meta, sort_keys=True).encode())
    return h.hexdigest()

for line in sys.stdin:
    c = json.loads(line)
    try:
        args = train.parse_args(["--out", c["out"], "--init", c["init"], "--data", c["data"]])
        ready = train.prepare(args, 1, torch.device("cpu"), c["config"])
        answer = {"verdict": "loaded", "digest": digest(ready)}
    except (FormatError, train.Stop) as e:
        answer = {"verdict": "refused", "message": str(e)}
    except Exception as e:
        answer = {"verdict": "internal", "message": f"{type(e).__name__}: {e}"}
    print(json.dumps(answer), flush=True)
`;

/** The harness process, restarted after a hang. */
class Harness {
  private child: ChildProcessWithoutNullStreams | null = null;
  private lines: Interface | null = null;
  private waiting: ((line: string | null) => void) | null = null;

  constructor(private readonly python: string, private readonly exportDir: string) {}

  private start(): void {
    this.child = spawn(this.python, ['-c', HARNESS, this.exportDir], { env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } });
    this.child.stderr.resume();
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (l) => { const w = this.waiting; this.waiting = null; w?.(l); });
    this.child.on('close', () => { const w = this.waiting; this.waiting = null; w?.(null); this.child = null; });
  }

  /** The answer to one case; null when the harness died or did not answer within `limitMs`. */
  ask(inputs: Inputs, limitMs: number): Promise<Answer | null> {
    if (this.child === null) this.start();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiting = null; this.stop(); resolve(null); }, limitMs);
      this.waiting = (line) => { clearTimeout(timer); resolve(line === null ? null : JSON.parse(line) as Answer); };
      this.child!.stdin.write(JSON.stringify(inputs) + '\n');
    });
  }

  stop(): void {
    this.lines?.close();
    this.child?.kill('SIGKILL');
    this.child = null;
  }
}

export interface TrainPyFuzzOptions {
  /** Cases per kind. */
  count?: number;
  seed?: number;
}

type Kind = 'checkpoint bytes' | 'checkpoint meta' | 'checkpoint tensor' | 'config.json' | 'data/';
const KINDS: readonly Kind[] = ['checkpoint bytes', 'checkpoint meta', 'checkpoint tensor', 'config.json', 'data/'];

/** A tiny export and a checkpoint train.py wrote for it, in `root`. */
async function makeBase(python: string, root: string): Promise<{ exp: string; ckpt: string }> {
  const npy = join(root, 'images.npy');
  let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (48, 8, 8), }";
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const len = Buffer.alloc(2);
  len.writeUInt16LE(header.length);
  const images = Uint8Array.from({ length: 48 * 64 }, (_, i) => (i * 97 + (i >> 5) * 31) & 0xff);
  writeFileSync(npy, Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0]), len, Buffer.from(header, 'latin1'), images]));
  const overrides = [`dataset.name=${npy}`, 'model.height=8', 'model.width=8', 'model.hiddenChannels=4', 'model.dilations=[1]',
    'train.batchSize=8', 'train.validationSize=8', 'train.steps=2', 'train.ema=0.9'];
  const config = resolveRunConfig(applyOverrides(presetRaw('gated-pixelcnn-fmnist'), overrides), 'gated-pixelcnn-fmnist');
  const exp = join(root, 'export');
  await exportForTorch(config, null, exp);
  const run = join(root, 'run');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(python, [join(exp, 'train.py'), '--out', run, '--device', 'cpu', '--threads', '1'], { env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`train.py for the fuzz base exited ${code}: ${stderr}`))));
  });
  return { exp, ckpt: join(run, 'checkpoint.safetensors') };
}

/**
 * One tally per kind, `train.py <kind>`; none when no Python here imports torch (the report says
 * so in the family name).
 */
export async function fuzzTrainPy(o: TrainPyFuzzOptions = {}): Promise<FuzzTally[]> {
  const python = findTorchPython();
  if (python === null) return [];
  const root = mkdtempSync(join(tmpdir(), 'arpix-trainpy-fuzz-'));
  const harness = new Harness(python, join(root, 'export'));
  try {
    const { exp, ckpt } = await makeBase(python, root);
    const base = readFileSync(ckpt);
    const configText = readFileSync(join(exp, 'config.json'), 'utf8');
    const dataJson = readFileSync(join(exp, 'data', 'data.json'), 'utf8');
    const trainU8 = readFileSync(join(exp, 'data', 'train.u8'));
    const good: Inputs = { config: join(exp, 'config.json'), data: join(exp, 'data'), init: ckpt, out: join(root, 'out') };
    const baseAnswer = await harness.ask(good, 60_000);
    if (baseAnswer?.verdict !== 'loaded') throw new Error(`train.py refuses its own checkpoint: ${JSON.stringify(baseAnswer)}`);
    const tallies: FuzzTally[] = [];
    for (const kind of KINDS) {
      const dir = join(root, kind.replace(/\W+/g, '-'));
      tallies.push(await runFuzz({
        family: `train.py ${kind}`,
        seed: o.seed ?? 25,
        count: o.count ?? 300,
        hangMs: 10_000,
        make: (rng) => {
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir, { recursive: true });
          const inputs: Inputs = { ...good, out: join(dir, 'out') };
          let ops: string[];
          let damaged: string;
          if (kind === 'checkpoint bytes') {
            const m = mutateBytes(base, rng);
            ops = m.ops;
            inputs.init = damaged = join(dir, 'checkpoint.safetensors');
            writeFileSync(damaged, m.bytes);
          } else if (kind === 'checkpoint meta' || kind === 'checkpoint tensor') {
            const c = decodeCheckpoint(base, ckpt, { pytorchLayout: true });
            if (kind === 'checkpoint meta') {
              const m = mutateJson(c.meta, rng);
              ops = m.ops;
              c.meta = m.value as Checkpoint['meta'];
            } else {
              ops = [damageTensor(c, rng)];
            }
            inputs.init = damaged = join(dir, 'checkpoint.safetensors');
            writeFileSync(damaged, encodeCheckpoint(c));
          } else if (kind === 'config.json') {
            const m = mutateJson(JSON.parse(configText), rng);
            ops = m.ops;
            inputs.config = damaged = join(dir, 'config.json');
            writeFileSync(damaged, JSON.stringify(m.value, null, 2) ?? 'undefined');
          } else {
            inputs.data = join(dir, 'data');
            cpSync(join(exp, 'data'), inputs.data, { recursive: true });
            if (rng.next() < 0.5) {
              const m = mutateJson(JSON.parse(dataJson), rng);
              ops = m.ops.map((x) => `data.json ${x}`);
              damaged = join(inputs.data, 'data.json');
              writeFileSync(damaged, JSON.stringify(m.value, null, 2) ?? 'undefined');
            } else {
              const m = mutateBytes(trainU8, rng);
              ops = m.ops.map((x) => `train.u8 ${x}`);
              damaged = join(inputs.data, 'train.u8');
              writeFileSync(damaged, m.bytes);
            }
          }
          return {
            ops,
            run: async () => {
              const a = await harness.ask(inputs, 9_000);
              if (a === null) return { verdict: 'hang' as Verdict, detail: 'the harness did not answer' };
              if (existsSync(inputs.out)) return { verdict: 'file-changed' as Verdict, detail: `prepare() created ${inputs.out}` };
              if (a.verdict === 'internal') return { verdict: 'internal-error' as Verdict, detail: a.message };
              if (a.verdict === 'refused') {
                const m = a.message ?? '';
                // One line, free of interpreter internals, naming the damaged file (or its folder).
                const clean = m.length > 0 && !m.includes('\n') && !INTERNAL_PHRASES.test(m) && (m.includes(damaged) || m.includes(join(dir, 'data')));
                return { verdict: clean ? 'clean-error' : 'internal-error', detail: m.slice(0, 300) };
              }
              if (kind === 'checkpoint tensor') return { verdict: 'silent-acceptance', detail: 'a damaged tensor was loaded' };
              if (kind === 'checkpoint bytes' && a.digest !== baseAnswer.digest) return { verdict: 'silent-acceptance', detail: 'an edited file loaded other state' };
              if (kind === 'data/' && ops[0]!.startsWith('train.u8') && readFileSync(damaged).length !== trainU8.length) return { verdict: 'silent-acceptance', detail: 'a train.u8 of another length was accepted' };
              return { verdict: 'accepted' };
            },
          };
        },
      }));
    }
    return tallies;
  } finally {
    harness.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
