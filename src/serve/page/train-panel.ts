// The Train panel of an exported page: a fresh model of the run's config trained in the page, as
// TensorFlow.js's demos did — in a Web Worker of its own (src/web/train-client.ts), on the binarised
// training images the export wrote (`arpix export --web --train-images`), with the step `arpix
// train` takes. The curve shows the steps' bits/dim (src/web/curve.ts: all of them, or a bounded
// share spread over a long run) and, every so often, the held-out images';
// the speed is images per second over the last steps; Sample draws from the model as it is now, in
// the page's sampling workers, while training goes on.

import uPlot from 'uplot';
import type { LocalEngine } from '../../web/client.js';
import type { ModelSource } from '../../web/messages.js';
import type { PageConfig, StaticRun } from '../../web/page-config.js';
import type { RunSummary } from '../protocol.js';
import { TrainClient } from '../../web/train-client.js';
import { Curve } from '../../web/curve.js';
import { DEFAULT_TRAIN_IMAGES, PAGE_TRAINING_MAX_PARAMETERS } from '../../web/train-data.js';
import type { TrainEvent } from '../../web/train-messages.js';
import { gridLayout, paintRows } from './draw.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export interface TrainPanelContext {
  config: PageConfig;
  current: () => RunSummary | null;
  engine: () => LocalEngine;
  toast: (e: unknown) => void;
}

/** Steps whose images and seconds make the speed shown. */
const SPEED_WINDOW = 20;
const SAMPLES = 8;

/** Why the run cannot train in this page, in one line, or null with its training images. */
function trainingOf(ctx: TrainPanelContext, run: RunSummary | null): { run: StaticRun } | { why: string } {
  if (ctx.config.mode !== 'static') return { why: 'training in the page is for pages written by arpix export --web; here, arpix train trains on this machine' };
  const s = run ? ctx.config.runs.find((r) => r.summary.id === run.id) : undefined;
  if (!s) return { why: 'choose a run to train' };
  if (s.training) return { run: s };
  if (s.noTraining && !s.noTraining.startsWith('the page was exported with')) return { why: `run ${s.summary.id} cannot train in a page: ${s.noTraining}` };
  return { why: `this page was exported without training images for run ${s.summary.id}: export it again with arpix export --web OUT RUN --train-images ${DEFAULT_TRAIN_IMAGES} (binary-likelihood runs of at most ${PAGE_TRAINING_MAX_PARAMETERS.toLocaleString('en')} parameters)` };
}

function expectOf(run: StaticRun): ModelSource['expect'] {
  const r = run.summary;
  return { kind: r.kind!, height: r.height!, width: r.width!, channels: r.channels! };
}

export function trainPanel(ctx: TrainPanelContext): { show: () => void } {
  const curve = new Curve();
  const { steps, losses, held } = curve;
  const recent: { images: number; seconds: number }[] = [];
  let chart: uPlot | null = null;
  let training: { run: StaticRun; state: 'loading' | 'running' | 'stopped' | 'done' | 'diverged' | 'error'; backend: string } | null = null;
  const chartEl = $('t-chart');
  const stats = $('t-stats');

  const client = new TrainClient(ctx.config.worker, ctx.config.wasm, ctx.config.wasmReason, (e) => onEvent(e), (b) => {
    if (!training) return;
    training.backend = b.backend;
    $('t-backend-note').textContent = b.note;
    chartEl.dataset.backend = b.backend;
  });

  function setState(state: NonNullable<typeof training>['state']): void {
    if (!training) return;
    training.state = state;
    chartEl.dataset.state = state;
    const running = state === 'loading' || state === 'running';
    $<HTMLButtonElement>('t-go').disabled = running;
    $<HTMLButtonElement>('t-go').textContent = state === 'stopped' || state === 'done' ? 'Continue' : 'Train';
    $<HTMLButtonElement>('t-restart').hidden = !(state === 'stopped' || state === 'done' || state === 'diverged' || state === 'error');
    $<HTMLButtonElement>('t-stop').disabled = !running;
    $<HTMLButtonElement>('t-sample').disabled = steps.length === 0;
  }

  function redraw(): void {
    const xs = steps;
    const ys = [losses, xs.map((s) => held.get(s) ?? null)] as (number | null)[][];
    const data = [xs, ...ys] as uPlot.AlignedData;
    if (!chart) {
      chartEl.textContent = '';
      const axis = { stroke: '#8b95a8', grid: { stroke: '#222a38', width: 1 }, ticks: { stroke: '#222a38', width: 1 } };
      chart = new uPlot({
        width: Math.max(320, chartEl.clientWidth), height: 260, scales: { x: { time: false } },
        axes: [{ ...axis, label: 'step' }, { ...axis, label: 'bits/dim', size: 60 }],
        series: [{ label: 'step' }, { label: 'batch', stroke: '#6ea8fe', width: 1.5 }, { label: 'held out', stroke: '#f5a524', width: 2, spanGaps: true, points: { show: true, size: 6 } }],
      }, data, chartEl);
    } else {
      chart.setData(data);
    }
    chartEl.dataset.points = String(steps.length);
    chartEl.dataset.heldOut = String(held.size);
  }

  function showStats(): void {
    const images = recent.reduce((a, r) => a + r.images, 0);
    const seconds = recent.reduce((a, r) => a + r.seconds, 0);
    const rate = seconds > 0 ? images / seconds : 0;
    stats.dataset.imagesPerSec = String(rate);
    const last = [...held.entries()].at(-1);
    stats.innerHTML = `<span>step <b>${curve.last?.step ?? 0}</b></span><span>bits/dim <b>${curve.last ? curve.last.loss.toFixed(4) : '—'}</b></span>`
      + `<span>held out <b>${last ? last[1].toFixed(4) : '—'}</b></span><span><b>${rate.toFixed(1)}</b> images/s</span>`;
  }

  function onEvent(e: TrainEvent): void {
    if (!training) return;
    switch (e.type) {
      case 'started':
        $('t-note').textContent = `a fresh ${training.run.summary.kind} of ${e.parameters.toLocaleString('en')} parameters, on ${e.trainImages} training images of ${training.run.training!.dataset} in batches of ${e.batchSize}; ${e.heldOutImages} held out`;
        setState('running');
        return;
      case 'step':
        curve.step(e.step, e.loss);
        recent.push({ images: e.images, seconds: e.seconds });
        if (recent.length > SPEED_WINDOW) recent.shift();
        chartEl.dataset.step = String(e.step);
        $<HTMLButtonElement>('t-sample').disabled = false;
        redraw();
        showStats();
        return;
      case 'held-out':
        curve.heldOut(e.step, e.bitsPerDim);
        redraw();
        showStats();
        return;
      case 'ended':
        setState(e.outcome);
        if (e.message) ctx.toast(e.message);
        return;
      case 'error':
        setState('error');
        ctx.toast(e.message);
        return;
      case 'snapshot':
        return;
    }
  }

  function start(run: StaticRun): void {
    curve.clear();
    recent.length = 0;
    chart?.destroy();
    chart = null;
    training = { run, state: 'loading', backend: '' };
    redraw();
    showStats();
    setState('loading');
    const batch = $<HTMLInputElement>('t-batch').value;
    client.start({
      backend: $<HTMLSelectElement>('t-backend').value === 'ts' ? 'ts' : 'wasm',
      weights: { key: run.summary.id, url: run.weights.file, file: run.weights.file, sha256: run.weights.sha256, expect: expectOf(run), allowUnverified: false },
      images: run.training!,
      batchSize: batch === '' ? null : Number(batch), steps: Number($<HTMLInputElement>('t-steps').value) || 0,
      heldOutEvery: Number($<HTMLInputElement>('t-every').value) || 0,
    });
  }

  function go(): void {
    const t = trainingOf(ctx, ctx.current());
    if ('why' in t) return ctx.toast(t.why);
    if (training && training.run === t.run && (training.state === 'stopped' || training.state === 'done')) {
      setState('running');
      return client.continue(Number($<HTMLInputElement>('t-steps').value) || 0);
    }
    start(t.run);
  }

  let sampling: AbortController | null = null;

  /** Draws images from the model as it is now in the page's sampling workers, row by row, while it trains on. */
  async function sample(): Promise<void> {
    if (!training) return;
    const run = training.run;
    const snap = await client.snapshot();
    if (!snap) return;
    sampling?.abort();
    const controller = new AbortController();
    sampling = controller;
    const url = URL.createObjectURL(new Blob([snap.bytes as Uint8Array<ArrayBuffer>]));
    const { height: h, width: w, channels: c, numClasses, levels } = run.summary;
    const grid = gridLayout(SAMPLES, h!, w!, SAMPLES);
    const canvas = $<HTMLCanvasElement>('t-canvas');
    canvas.width = grid.width;
    canvas.height = grid.height;
    const scale = Math.max(1, Math.floor(560 / grid.width));
    canvas.style.width = `${grid.width * scale}px`;
    canvas.style.height = `${grid.height * scale}px`;
    const g = canvas.getContext('2d', { willReadFrequently: true })!;
    const image = g.createImageData(grid.width, grid.height);
    canvas.dataset.state = 'running';
    canvas.dataset.step = String(snap.step);
    $('t-sample-stats').innerHTML = `<span>the model at step <b>${snap.step}</b></span>`;
    try {
      // A key of its own for each snapshot: the workers keep a model per key.
      const source: ModelSource = { key: `${run.summary.id}@page-step-${snap.step}`, url, file: `the model trained in this page (step ${snap.step})`, sha256: null, expect: expectOf(run), allowUnverified: false };
      await ctx.engine().run(source, {
        op: 'sample', n: SAMPLES, seed: 0, temperature: 1, label: numClasses > 0 ? 0 : null, granularity: 'row', complete: null,
      }, (m) => {
        if (m.type !== 'row') return;
        for (let i = 0; i < SAMPLES; i++) paintRows(image.data, grid.width, grid.origin(i), m.values, w!, c!, levels ?? 2, m.y, m.y + 1, i * w! * c!);
        g.putImageData(image, 0, 0);
      }, controller.signal);
      if (sampling === controller) canvas.dataset.state = controller.signal.aborted ? 'stopped' : 'done';
    } catch (e) {
      if (sampling === controller) canvas.dataset.state = 'error';
      ctx.toast(e);
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  $('t-go').addEventListener('click', go);
  $('t-restart').addEventListener('click', () => {
    const t = trainingOf(ctx, ctx.current());
    if ('why' in t) return ctx.toast(t.why);
    start(t.run);
  });
  $('t-stop').addEventListener('click', () => client.stop());
  $('t-sample').addEventListener('click', () => void sample().catch(ctx.toast));
  const backend = $<HTMLSelectElement>('t-backend');
  if (ctx.config.wasm === null) {
    backend.value = 'ts';
    backend.querySelector<HTMLOptionElement>('option[value="wasm"]')!.disabled = true;
  }

  return {
    show: () => {
      const t = trainingOf(ctx, ctx.current());
      const note = $('t-note');
      $<HTMLButtonElement>('t-go').disabled = 'why' in t || training?.state === 'running' || training?.state === 'loading';
      if ('why' in t) {
        note.textContent = t.why;
        note.dataset.state = 'unavailable';
        return;
      }
      delete note.dataset.state;
      if (training?.run !== t.run) {
        note.textContent = `trains a fresh ${t.run.summary.kind} of this run's config on ${t.run.training!.train} binarised training images of ${t.run.training!.dataset}, as arpix train does; ${t.run.training!.heldOut} held out`;
        $<HTMLInputElement>('t-batch').placeholder = 'the run\'s';
      }
      redraw();
    },
  };
}
