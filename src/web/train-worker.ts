// The page's trainer in its Web Worker (the same worker.js the sampling workers run, given
// `train-*` messages): fetches the run's exported weights (for its config and metadata) and its
// training images, both checked against the page's sums, then steps a PageTrainer (trainer.ts),
// one step per turn of the event loop so a stop or a snapshot request lands between steps, and
// says each step, each held-out figure and how it ended. Its record, globalThis.arpixTrain, is what
// the browser tests and the benchmark read.

import { backendName } from '../backends/registry.js';
import { nextTurn } from '../env.js';
import { ArpixError } from '../errors.js';
import { decodeCheckpoint, type CheckpointMeta } from '../io/checkpoint.js';
import { divergedMessage } from '../train/step.js';
import { validatedModel } from '../train/validate.js';
import { checkListed, fetchBytes, PageError } from './fetch.js';
import { unpackTrainingImages } from './train-data.js';
import type { TrainEvent, TrainFromPage } from './train-messages.js';
import { PageTrainer } from './trainer.js';
import { kernelThreads } from './wasm.js';

type Post = (event: TrainEvent, transfer?: ArrayBuffer[]) => void;

/** Steps the record keeps (a run trained until Stop goes on for as long as the page is open). */
export const RECORD_STEPS = 100_000;

/** The worker's training so far: what the page shows, kept where a test or benchmark can read it. */
export interface TrainRecord {
  state: 'loading' | 'running' | 'stopped' | 'done' | 'diverged' | 'error';
  backend: string;
  /** The kernels' threads (the WebAssembly backend's where the page is cross-origin isolated; else 1). */
  threads: number;
  step: number;
  /** The loss (bits/dim) of each applied step, and its seconds: the last RECORD_STEPS steps. */
  losses: number[];
  stepSeconds: number[];
  heldOut: { step: number; bitsPerDim: number }[];
  imagesSeen: number;
  /** Seconds spent in steps (not loading, not the held-out figures). */
  trainSeconds: number;
  /** imagesSeen / trainSeconds. */
  imagesPerSec: number;
  message: string | null;
}

interface Session {
  trainer: PageTrainer;
  meta: CheckpointMeta;
  /** The step to stop at (0: none). */
  until: number;
  heldOutEvery: number;
  stop: boolean;
  running: boolean;
  record: TrainRecord;
}

let session: Session | null = null;
/** A start still loading its files, and whether it was stopped meanwhile. */
let loading: { stop: boolean } | null = null;

function newRecord(): TrainRecord {
  const record: TrainRecord = { state: 'loading', backend: backendName(), threads: kernelThreads(), step: 0, losses: [], stepSeconds: [], heldOut: [], imagesSeen: 0, trainSeconds: 0, imagesPerSec: 0, message: null };
  (globalThis as { arpixTrain?: TrainRecord }).arpixTrain = record;
  return record;
}

/** One line for a failure: the page's own problems and arpix's as they are, anything else as internal. */
function lineOf(e: unknown): string {
  if (e instanceof PageError || e instanceof ArpixError) return e.message;
  return `internal error: ${e instanceof Error ? e.message : String(e)}`;
}

async function open(req: Extract<TrainFromPage, { type: 'train-start' }>, post: Post): Promise<Session> {
  const t0 = performance.now();
  const record = newRecord();
  const w = req.weights;
  const [weights, images] = await Promise.all([
    fetchBytes(w.url, `the weights of run ${w.key}`),
    fetchBytes(req.images.file, `the training images of run ${w.key}`),
  ]);
  await checkListed(weights, w.file, w.sha256);
  await checkListed(images, req.images.file, req.images.sha256);
  // The weights are checked as every reader checks them; their config and metadata say what the run is.
  const { ckpt } = validatedModel(decodeCheckpoint(weights, w.file, { digestChecked: w.sha256 !== null }), { allowUnverified: w.allowUnverified });
  const data = unpackTrainingImages(images, req.images);
  const trainer = new PageTrainer(ckpt.config, data, req.batchSize ?? undefined);
  post({ type: 'started', parameters: trainer.model.numParameters(), trainImages: data.train.shape[0], heldOutImages: data.heldOut.shape[0], batchSize: trainer.batchSize, loadSeconds: (performance.now() - t0) / 1000 });
  return { trainer, meta: ckpt.meta, until: req.steps, heldOutEvery: req.heldOutEvery, stop: false, running: false, record };
}

async function heldOut(s: Session, post: Post): Promise<void> {
  const t0 = performance.now();
  const e = await s.trainer.heldOut();
  s.record.heldOut.push({ step: s.trainer.step, bitsPerDim: e.bitsPerDim });
  post({ type: 'held-out', step: s.trainer.step, bitsPerDim: e.bitsPerDim, stderr: e.stderr, seconds: (performance.now() - t0) / 1000 });
}

function end(s: Session, post: Post, outcome: 'stopped' | 'done' | 'diverged', message: string | null = null): void {
  s.running = false;
  s.record.state = outcome;
  s.record.message = message;
  post({ type: 'ended', step: s.trainer.step, outcome, message });
}

/** Steps until stopped, the step bound, or a step that is not applied. */
async function run(s: Session, post: Post): Promise<void> {
  const { trainer, record } = s;
  s.running = true;
  record.state = 'running';
  while (s.until === 0 || trainer.step < s.until) {
    await nextTurn(); // a stop or a snapshot request is answered here
    if (s.stop) return end(s, post, 'stopped');
    const t0 = performance.now();
    const lr = trainer.lr;
    const before = trainer.imagesSeen;
    const r = trainer.next();
    const seconds = (performance.now() - t0) / 1000;
    if (!r.applied) return end(s, post, 'diverged', divergedMessage(trainer.step + 1, r));
    const images = trainer.imagesSeen - before;
    Object.assign(record, { step: trainer.step, imagesSeen: trainer.imagesSeen, trainSeconds: record.trainSeconds + seconds });
    record.losses.push(r.loss);
    record.stepSeconds.push(seconds);
    if (record.losses.length > RECORD_STEPS) {
      record.losses.splice(0, record.losses.length - RECORD_STEPS);
      record.stepSeconds.splice(0, record.stepSeconds.length - RECORD_STEPS);
    }
    record.imagesPerSec = record.imagesSeen / record.trainSeconds;
    post({ type: 'step', step: trainer.step, loss: r.loss, gradNorm: r.gradNorm, lr, images, seconds });
    if (s.heldOutEvery > 0 && trainer.step % s.heldOutEvery === 0) await heldOut(s, post);
  }
  end(s, post, 'done');
}

/** Answers one `train-*` message; `ready` resolves once the worker's backend is chosen. */
export function onTrainMessage(msg: TrainFromPage, post: Post, ready: Promise<unknown>): void {
  const s = session;
  switch (msg.type) {
    case 'train-stop':
      if (loading) loading.stop = true;
      else if (s) s.stop = true;
      return;
    case 'train-snapshot': {
      if (!s) return post({ type: 'snapshot', id: msg.id, step: 0, bytes: null });
      const bytes = s.trainer.checkpoint(s.meta, s.record.trainSeconds);
      return post({ type: 'snapshot', id: msg.id, step: s.trainer.step, bytes }, [bytes.buffer as ArrayBuffer]);
    }
    case 'train-continue':
      if (!s || s.running) return post({ type: 'error', message: s ? 'the model is training already' : 'there is no model to continue: start training first' });
      s.until = msg.steps;
      s.stop = false;
      void run(s, post).catch((e) => fail(s, post, e));
      return;
    case 'train-start': {
      if (s?.running || loading) return post({ type: 'error', message: 'the model is training already: stop it first' });
      session = null;
      const starting = { stop: false };
      loading = starting;
      void ready.then(() => open(msg, post)).then((opened) => {
        loading = null;
        session = opened;
        opened.stop = starting.stop;
        return run(opened, post);
      }).catch((e) => {
        loading = null;
        fail(session, post, e);
      });
    }
  }
}

function fail(s: Session | null, post: Post, e: unknown): void {
  const message = lineOf(e);
  if (s) s.running = false;
  const record = (globalThis as { arpixTrain?: TrainRecord }).arpixTrain;
  if (record) Object.assign(record, { state: 'error', message });
  post({ type: 'error', message });
}
