// The arpix serve page: five panels over the generic API of every model kind — runs and live
// curves, sampling painted as it streams, completion of kept rows or a painted mask, where the
// bits go (and the real compressed file of the image), and each model's architecture with the
// receptive field of a chosen pixel.

import uPlot from 'uplot';
import type { BitsResult, RunSummary, TestImageResult } from '../protocol.js';
import { CONFIG_ELEMENT_ID, type PageConfig } from '../../web/page-config.js';
import { LocalEngine, MAX_THREADS } from '../../web/client.js';
import { ApiError } from './api.js';
import { colormap, gridLayout, paintPixel, paintRows, type Grid } from './draw.js';
import { PageComputeApi, ServerApi, StaticApi, type PanelApi } from './panels-api.js';
import { trainPanel } from './train-panel.js';
import type { CodecMode } from '../../codec/format.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const PALETTE = ['#6ea8fe', '#f5a524', '#4cc38a', '#f2555a', '#9b7bff', '#2dd4bf', '#f472b6', '#a3e635'];

let runs: RunSummary[] = [];
let current: RunSummary | null = null;

/** What the page was told when it loaded (by arpix serve, or by the export that wrote it). */
function pageConfig(): PageConfig {
  const el = document.getElementById(CONFIG_ELEMENT_ID);
  const fallback: PageConfig = { mode: 'serve', compute: 'server', allowUnverified: false, worker: 'worker.js', wasm: null, wasmReason: null, compressModes: [], runs: [] };
  if (!el?.textContent) return fallback;
  return { ...fallback, ...(JSON.parse(el.textContent) as Partial<PageConfig>) };
}

const config = pageConfig();
let engine: LocalEngine | null = null;
/** The page's Web Worker, started the first time a panel is computed in the page. */
function localEngine(): LocalEngine {
  engine ??= new LocalEngine(config.worker, config.wasm, config.wasmReason);
  return engine;
}

function makeApi(where: 'server' | 'page'): PanelApi {
  if (config.mode !== 'static' && where === 'server') return new ServerApi(config.compressModes);
  // The page computes: its workers start loading now, while the page sets itself up.
  localEngine().warm();
  return config.mode === 'static' ? new StaticApi(localEngine(), config) : new PageComputeApi(localEngine(), config.allowUnverified);
}

let api: PanelApi = makeApi(config.compute);

function toast(e: unknown): void {
  const el = $('toast');
  el.textContent = e instanceof ApiError || e instanceof Error ? e.message : String(e);
  el.hidden = false;
  setTimeout(() => { el.hidden = true; }, 6000);
}

const fmt = {
  int: (v: number | null) => (v === null ? '—' : v.toLocaleString('en')),
  bpd: (v: number | null) => (v === null ? '—' : v.toFixed(3)),
  si: (v: number) => (v >= 1e9 ? `${(v / 1e9).toFixed(2)} G` : v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : `${v}`),
};

/** Sizes a native-resolution canvas and scales it up by CSS to about `target` CSS pixels wide. */
function sizeCanvas(canvas: HTMLCanvasElement, width: number, height: number, target: number): CanvasRenderingContext2D {
  canvas.width = width;
  canvas.height = height;
  const scale = Math.max(1, Math.floor(target / width));
  canvas.style.width = `${width * scale}px`;
  canvas.style.height = `${height * scale}px`;
  canvas.dataset.scale = String(scale);
  return canvas.getContext('2d', { willReadFrequently: true })!;
}

function dims(r: RunSummary) {
  return { h: r.height ?? 1, w: r.width ?? 1, c: r.channels ?? 1, levels: r.levels ?? 256 };
}

function labelValue(id: string): number | null {
  const v = $<HTMLInputElement>(id).value;
  return v === '' ? null : Number(v);
}

// ---- tabs and the run picker ---------------------------------------------------------------------

const panels: Record<string, { show?: () => void }> = {};

function showTab(name: string): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const p of document.querySelectorAll<HTMLElement>('.panel')) p.hidden = p.id !== `panel-${name}`;
  location.hash = name;
  panels[name]?.show?.();
}

function selectRun(id: string): void {
  current = runs.find((r) => r.id === id) ?? null;
  $<HTMLSelectElement>('run').value = id;
  for (const tr of document.querySelectorAll<HTMLTableRowElement>('#runs-table tbody tr')) tr.classList.toggle('selected', tr.dataset.run === id);
  for (const el of document.querySelectorAll<HTMLElement>('.label-only')) el.hidden = !current || current.numClasses === 0;
  testImages.clear();
  const active = document.querySelector<HTMLButtonElement>('#tabs button.active')?.dataset.tab ?? 'runs';
  panels[active]?.show?.();
}

// ---- Runs: the table and live curves ----------------------------------------------------------------

type TrainKey = 'loss' | 'imagesPerSec' | 'lr' | 'gradNorm';
const TRAIN_LABELS: Record<TrainKey, string> = { loss: 'bits/dim', imagesPerSec: 'images/s', lr: 'learning rate', gradNorm: 'gradient norm' };
interface Curves { trainStep: number[]; train: Record<TrainKey, number[]>; valStep: number[]; bpd: number[]; stop: (() => void) | null }
let trainKey: TrainKey = 'loss';
const noTrain = (): Record<TrainKey, number[]> => ({ loss: [], imagesPerSec: [], lr: [], gradNorm: [] });
const curves = new Map<string, Curves>();
const compared = new Set<string>();
let lossChart: uPlot | null = null;
let valChart: uPlot | null = null;

function chartOptions(el: HTMLElement, ids: string[], yLabel: string): uPlot.Options {
  const axis = { stroke: '#8b95a8', grid: { stroke: '#222a38', width: 1 }, ticks: { stroke: '#222a38', width: 1 } };
  return {
    width: Math.max(320, el.clientWidth), height: 260,
    scales: { x: { time: false } },
    axes: [{ ...axis, label: 'step' }, { ...axis, label: yLabel, size: 60 }],
    series: [{ label: 'step' }, ...ids.map((id) => ({ label: id.split('/').pop(), stroke: PALETTE[runs.findIndex((r) => r.id === id) % PALETTE.length], width: 2, spanGaps: true }))],
    cursor: { drag: { x: true, y: false } },
  };
}

/** Aligns several runs' (step, value) series on the union of their steps, as uPlot wants. */
function aligned(ids: string[], pick: (c: Curves) => [number[], number[]]): uPlot.AlignedData {
  const steps = [...new Set(ids.flatMap((id) => pick(curves.get(id)!)[0]))].sort((a, b) => a - b);
  const at = new Map(steps.map((s, i) => [s, i]));
  const ys = ids.map((id) => {
    const [xs, vs] = pick(curves.get(id)!);
    const y: (number | null)[] = new Array(steps.length).fill(null);
    xs.forEach((s, i) => { y[at.get(s)!] = Number.isFinite(vs[i]) ? vs[i]! : null; });
    return y;
  });
  return [steps, ...ys] as uPlot.AlignedData;
}

function redrawCharts(rebuild = false): void {
  const ids = [...compared].filter((id) => curves.has(id));
  const lossEl = $('chart-loss');
  const valEl = $('chart-val');
  if (rebuild || !lossChart || lossChart.series.length !== ids.length + 1) {
    lossChart?.destroy();
    valChart?.destroy();
    lossEl.textContent = '';
    valEl.textContent = '';
    lossChart = new uPlot(chartOptions(lossEl, ids, TRAIN_LABELS[trainKey]), aligned(ids, (c) => [c.trainStep, c.train[trainKey]]), lossEl);
    valChart = new uPlot(chartOptions(valEl, ids, 'bits/dim'), aligned(ids, (c) => [c.valStep, c.bpd]), valEl);
  } else {
    lossChart.setData(aligned(ids, (c) => [c.trainStep, c.train[trainKey]]));
    valChart!.setData(aligned(ids, (c) => [c.valStep, c.bpd]));
  }
  const count = (f: (c: Curves) => number[]) => ids.reduce((a, id) => a + f(curves.get(id)!).length, 0);
  const last = (f: (c: Curves) => number[]) => Math.max(0, ...ids.map((id) => f(curves.get(id)!).at(-1) ?? 0));
  $('loss-caption').textContent = `${count((c) => c.trainStep)} points · step ${last((c) => c.trainStep)}`;
  $('val-caption').textContent = `${count((c) => c.bpd)} points · step ${last((c) => c.valStep)}`;
  lossEl.dataset.points = String(count((c) => c.trainStep));
  valEl.dataset.points = String(count((c) => c.bpd));
}

function follow(id: string): void {
  if (curves.has(id)) return;
  const c: Curves = { trainStep: [], train: noTrain(), valStep: [], bpd: [], stop: null };
  curves.set(id, c);
  const run = runs.find((r) => r.id === id);
  if (!run) return;
  c.stop = api.follow(run, { reset: () => { c.trainStep = []; c.train = noTrain(); c.valStep = []; c.bpd = []; }, records: (records) => {
    for (const r of records as ({ type: string; step: number; bitsPerDim?: number } & Partial<Record<TrainKey, number>>)[]) {
      if (r.type === 'train' && typeof r.loss === 'number') {
        c.trainStep.push(r.step);
        for (const k of Object.keys(c.train) as TrainKey[]) c.train[k].push(typeof r[k] === 'number' ? r[k] : NaN);
      }
      if (r.type === 'validation' && typeof r.bitsPerDim === 'number') { c.valStep.push(r.step); c.bpd.push(r.bitsPerDim); }
    }
    redrawCharts();
  } });
}

function unfollow(id: string): void {
  curves.get(id)?.stop?.();
  curves.delete(id);
}

function renderRunsTable(): void {
  const body = document.querySelector('#runs-table tbody')!;
  body.textContent = '';
  runs.forEach((r, i) => {
    const tr = document.createElement('tr');
    tr.dataset.run = r.id;
    const live = r.metricsAge !== null && r.metricsAge < 30;
    const cells = [
      `<input type="checkbox" ${compared.has(r.id) ? 'checked' : ''} aria-label="compare">`,
      `<span class="swatch" style="background:${PALETTE[i % PALETTE.length]}"></span>${r.id}`,
      `${r.kind ?? '—'} <span class="hint">${r.height ?? '?'}×${r.width ?? '?'}×${r.channels ?? '?'}</span>`,
      r.preset ?? '—', fmt.int(r.parameters), fmt.int(r.step), fmt.int(r.imagesSeen), fmt.bpd(r.validationBitsPerDim), fmt.bpd(r.testBitsPerDim),
      live ? '<span class="badge live">training</span>' : r.hasCheckpoint ? '<span class="badge">checkpoint</span>' : '<span class="badge">no checkpoint</span>',
    ];
    tr.innerHTML = cells.map((c, k) => `<td class="${k >= 4 && k <= 8 ? 'num' : ''}">${c}</td>`).join('');
    tr.classList.toggle('selected', current?.id === r.id);
    tr.addEventListener('click', (e) => {
      const box = tr.querySelector('input')!;
      if (e.target === box) {
        if (box.checked) { compared.add(r.id); follow(r.id); } else { compared.delete(r.id); unfollow(r.id); }
        redrawCharts(true);
        return;
      }
      selectRun(r.id);
    });
    body.appendChild(tr);
  });
}

async function loadRuns(first = false): Promise<void> {
  runs = await api.runs();
  const select = $<HTMLSelectElement>('run');
  const keep = current?.id;
  select.innerHTML = runs.map((r) => `<option value="${r.id}">${r.id}</option>`).join('');
  // At most 4 live metrics streams at first: a browser opens 6 connections to one server, and
  // streams holding all of them would leave none for the page's other requests (its worker's too).
  if (first) for (const r of runs.slice(0, 4)) { compared.add(r.id); follow(r.id); }
  renderRunsTable();
  const pick = runs.find((r) => r.id === keep) ?? runs.find((r) => r.hasCheckpoint) ?? runs[0];
  if (pick) {
    current = pick;
    select.value = pick.id;
  }
  if (first) {
    redrawCharts(true);
    if (pick) selectRun(pick.id);
  }
}

// ---- Sample ---------------------------------------------------------------------------------------

let sampling: AbortController | null = null;

/** Stops the sampling stream in progress, if any, and returns the controller of a new one. */
function newStream(): AbortController {
  sampling?.abort();
  sampling = new AbortController();
  return sampling;
}

/** Lays a canvas out as a grid of n images, cleared; its dataset tells the layout (the browser tests read it). */
function gridCanvas(id: string, grid: Grid, n: number, h: number, w: number, target: number) {
  const canvas = $<HTMLCanvasElement>(id);
  const ctx = sizeCanvas(canvas, grid.width, grid.height, target);
  Object.assign(canvas.dataset, { n: String(n), cols: String(grid.cols), h: String(h), w: String(w), gap: String(grid.gap), state: 'running' });
  ctx.fillStyle = '#0b0e14';
  ctx.fillRect(0, 0, grid.width, grid.height);
  return { canvas, ctx, image: ctx.getImageData(0, 0, grid.width, grid.height) };
}

/** The sampling that paints the Sample panel now: one stopped by a newer one leaves the panel to it. */
let sampleCanvasOwner: AbortController | null = null;
let completeCanvasOwner: AbortController | null = null;

async function runSample(): Promise<void> {
  if (!current) return;
  const controller = newStream();
  sampleCanvasOwner = controller;
  const run = current;
  const { h, w, c, levels } = dims(run);
  const n = Number($<HTMLInputElement>('s-n').value);
  const granularity = $<HTMLSelectElement>('s-gran').value as 'row' | 'pixel';
  const grid = gridLayout(n, h, w, Math.min(n, 8));
  const { canvas, ctx, image } = gridCanvas('s-canvas', grid, n, h, w, 720);
  delete canvas.dataset.threads;
  const t0 = performance.now();
  let firstPaint: number | null = null;
  let rowsDone = 0;
  let threads: number | null = null;
  const stats = $('s-stats');
  const bar = $('s-progress');
  $<HTMLButtonElement>('s-stop').disabled = false;
  // Rows and rates are of whole rows of all n images (a split batch's parts are merged first).
  const show = () => {
    const s = (performance.now() - t0) / 1000;
    stats.innerHTML = `<span>first row <b>${firstPaint === null ? '…' : `${Math.round(firstPaint)} ms`}</b></span><span><b>${(rowsDone / s).toFixed(1)}</b> rows/s</span><span><b>${((rowsDone / h) * n / s).toFixed(2)}</b> images/s</span>${threads !== null ? `<span>on <b>${threads}</b> ${threads === 1 ? 'worker' : 'workers'}</span>` : ''}`;
    bar.style.width = `${(100 * rowsDone) / h}%`;
  };
  const painted = () => {
    ctx.putImageData(image, 0, 0);
    if (firstPaint === null) {
      firstPaint = performance.now() - t0;
      // Since the page opened (the benchmark of the exported page reads it).
      if (performance.getEntriesByName('arpix-first-row').length === 0) performance.mark('arpix-first-row');
    }
  };
  try {
    await api.sample(run, { n, seed: Number($<HTMLInputElement>('s-seed').value), temperature: Number($<HTMLInputElement>('s-temp').value), label: labelValue('s-label'), granularity, complete: null }, (event, data) => {
      if (event === 'start') {
        const t = (data as { threads?: number }).threads;
        if (t !== undefined) canvas.dataset.threads = String(threads = t);
      } else if (event === 'row') {
        const { y, values } = data as { y: number; values: ArrayLike<number> };
        for (let i = 0; i < n; i++) paintRows(image.data, grid.width, grid.origin(i), values, w, c, levels, y, y + 1, i * w * c);
        painted();
        rowsDone = y + 1;
        show();
      } else if (event === 'pixel') {
        const { y, x, values } = data as { y: number; x: number; values: ArrayLike<number> };
        for (let i = 0; i < n; i++) paintPixel(image.data, grid.width, grid.origin(i), values, w, c, levels, y, x, i * c);
        painted();
        if (x === w - 1) { rowsDone = y + 1; show(); }
      }
    }, controller.signal);
    if (sampleCanvasOwner !== controller) return; // a newer sampling owns the canvas and the Stop button now
    canvas.dataset.state = controller.signal.aborted ? 'stopped' : 'done';
    canvas.dataset.firstPaintMs = String(firstPaint);
    canvas.dataset.where = api.where;
    show();
  } catch (e) {
    if (sampleCanvasOwner !== controller) return;
    canvas.dataset.state = controller.signal.aborted ? 'stopped' : 'error';
    if (!controller.signal.aborted) toast(e);
  } finally {
    if (sampleCanvasOwner === controller) $<HTMLButtonElement>('s-stop').disabled = true;
  }
}

// ---- test images, shared by Complete, Bits and Models ---------------------------------------------

const testImages = new Map<number, TestImageResult>();

async function testImage(index: number): Promise<TestImageResult> {
  const have = testImages.get(index);
  if (have) return have;
  const got = await api.testImage(current!, index);
  testImages.set(index, got);
  return got;
}

function drawValues(canvas: HTMLCanvasElement, values: ArrayLike<number>, r: RunSummary, target: number, tint?: (q: number) => [number, number, number, number] | null): void {
  const { h, w, c, levels } = dims(r);
  const ctx = sizeCanvas(canvas, w, h, target);
  const img = ctx.createImageData(w, h);
  paintRows(img.data, w, [0, 0], values, w, c, levels, 0, h);
  if (tint) {
    for (let q = 0; q < h * w; q++) {
      const t = tint(q);
      if (!t) continue;
      const a = t[3];
      for (let k = 0; k < 3; k++) img.data[q * 4 + k] = Math.round(img.data[q * 4 + k]! * (1 - a) + t[k]! * a);
    }
  }
  ctx.putImageData(img, 0, 0);
}

// ---- Complete ---------------------------------------------------------------------------------------

const editor = { values: [] as number[], hidden: new Uint8Array(0), tool: 'rows' as 'rows' | 'mask' | 'draw', usedMask: false };

function keepRows(): number {
  return Number($<HTMLInputElement>('c-rows').value);
}

/** 1 where the model is given the pixel. */
function keptMask(): Uint8Array {
  const { h, w } = dims(current!);
  const keep = new Uint8Array(h * w);
  for (let q = 0; q < h * w; q++) keep[q] = editor.usedMask ? (editor.hidden[q] ? 0 : 1) : q < keepRows() * w ? 1 : 0;
  return keep;
}

function drawEditor(): void {
  if (!current || editor.values.length === 0) return;
  const keep = keptMask();
  drawValues($<HTMLCanvasElement>('c-source'), editor.values, current, 360, (q) => (keep[q] ? null : [242, 85, 90, 0.55]));
  $('c-rows-v').textContent = editor.usedMask ? 'mask' : String(keepRows());
}

let editorLoads = 0;

async function loadEditorImage(): Promise<void> {
  if (!current) return;
  const { h, w } = dims(current);
  const load = ++editorLoads;
  const index = Number($<HTMLInputElement>('c-index').value);
  const t = await testImage(index);
  if (load !== editorLoads) return; // a later choice is on its way
  editor.values = t.values.slice();
  $('c-source').dataset.index = String(index);
  if (editor.hidden.length !== h * w) editor.hidden = new Uint8Array(h * w);
  const rows = $<HTMLInputElement>('c-rows');
  rows.max = String(h);
  if (Number(rows.value) > h) rows.value = String(Math.floor(h / 2));
  drawEditor();
}

function editorPointer(e: PointerEvent): void {
  if (!current || editor.tool === 'rows' || (e.buttons & 1) === 0) return;
  const canvas = $<HTMLCanvasElement>('c-source');
  const { h, w, c, levels } = dims(current);
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor(((e.clientX - rect.left) / rect.width) * w);
  const y = Math.floor(((e.clientY - rect.top) / rect.height) * h);
  const radius = Math.max(1, Math.round(w / 14));
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) {
      const yy = y + dy;
      const xx = x + dx;
      if (yy < 0 || yy >= h || xx < 0 || xx >= w || dx * dx + dy * dy > radius * radius) continue;
      const q = yy * w + xx;
      if (editor.tool === 'mask') {
        editor.hidden[q] = e.shiftKey ? 0 : 1;
        editor.usedMask = true;
      } else {
        for (let k = 0; k < c; k++) editor.values[q * c + k] = e.shiftKey ? 0 : levels - 1;
      }
    }
  }
  drawEditor();
}

async function runComplete(): Promise<void> {
  if (!current) return;
  const controller = newStream();
  completeCanvasOwner = controller;
  const run = current;
  const { h, w, c, levels } = dims(run);
  const samples = Number($<HTMLInputElement>('c-samples').value);
  const keep = keptMask();
  const start = editor.usedMask ? 0 : keepRows();
  const cols = samples + 2;
  const grid: Grid = gridLayout(cols, h, w, cols, 2);
  const { canvas, ctx, image } = gridCanvas('c-canvas', grid, cols, h, w, 900);
  canvas.dataset.keepRows = String(start);
  delete canvas.dataset.threads;
  paintRows(image.data, grid.width, grid.origin(0), editor.values, w, c, levels, 0, h);
  // What the model is given: kept pixels as they are, the others dimmed red; completions start from the kept pixels.
  for (let q = 0; q < h * w; q++) {
    const y = Math.floor(q / w);
    const x = q % w;
    for (let i = 1; i < cols; i++) {
      if (keep[q]) paintPixel(image.data, grid.width, grid.origin(i), editor.values, w, c, levels, y, x, q * c);
      else if (i === 1) {
        const [x0, y0] = grid.origin(1);
        const o = ((y0 + y) * grid.width + x0 + x) * 4;
        image.data.set([90, 30, 36, 255], o);
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  const t0 = performance.now();
  let rows = 0;
  try {
    await api.sample(run, {
      n: samples, seed: Number($<HTMLInputElement>('c-seed').value), temperature: Number($<HTMLInputElement>('c-temp').value), label: labelValue('c-label'),
      granularity: 'row', complete: { values: editor.values.slice(), keepRows: start, mask: editor.usedMask ? Array.from(keep) : null },
    }, (event, data) => {
      if (event === 'start') {
        const t = (data as { threads?: number }).threads;
        if (t !== undefined) canvas.dataset.threads = String(t);
      } else if (event === 'row') {
        const { y, values } = data as { y: number; values: ArrayLike<number> };
        for (let i = 0; i < samples; i++) paintRows(image.data, grid.width, grid.origin(i + 2), values, w, c, levels, y, y + 1, i * w * c);
        ctx.putImageData(image, 0, 0);
        rows++;
        $('c-stats').innerHTML = `<span>row <b>${y + 1}</b> / ${h}</span><span><b>${(rows / ((performance.now() - t0) / 1000)).toFixed(1)}</b> rows/s</span>`;
      }
    }, controller.signal);
    if (completeCanvasOwner !== controller) return;
    canvas.dataset.state = controller.signal.aborted ? 'stopped' : 'done';
  } catch (e) {
    if (completeCanvasOwner !== controller) return;
    canvas.dataset.state = controller.signal.aborted ? 'stopped' : 'error';
    if (!controller.signal.aborted) toast(e);
  }
}

// ---- Where the bits go ----------------------------------------------------------------------------

let bitsLoads = 0;

async function runBits(): Promise<void> {
  if (!current) return;
  const run = current;
  const { h, w, c } = dims(run);
  const load = ++bitsLoads;
  const index = Number($<HTMLInputElement>('b-index').value);
  const t = await testImage(index);
  const label = run.numClasses > 0 ? t.label ?? 0 : null;
  const r = await api.bits(run, t.values, label);
  if (load !== bitsLoads) return; // a later image is on its way
  drawValues($<HTMLCanvasElement>('b-image'), t.values, run, 280);
  const max = Math.max(...r.bits);
  const wrap = $('b-heat-wrap');
  wrap.textContent = '';
  const names = c === 3 ? ['R', 'G', 'B'] : [''];
  names.forEach((name, ch) => {
    const fig = document.createElement('figure');
    const canvas = document.createElement('canvas');
    canvas.className = 'pixels big';
    canvas.id = `b-heat-${ch}`;
    const ctx = sizeCanvas(canvas, w, h, 280);
    const img = ctx.createImageData(w, h);
    for (let q = 0; q < h * w; q++) {
      const [R, G, B] = colormap(r.bits[q * c + ch]! / max);
      img.data.set([R, G, B, 255], q * 4);
    }
    ctx.putImageData(img, 0, 0);
    canvas.dataset.max = String(max);
    canvas.addEventListener('pointermove', (e) => {
      const rect = canvas.getBoundingClientRect();
      const x = Math.floor(((e.clientX - rect.left) / rect.width) * w);
      const y = Math.floor(((e.clientY - rect.top) / rect.height) * h);
      if (x >= 0 && y >= 0 && x < w && y < h) $('b-hover').textContent = `pixel (${y}, ${x})${name ? ` ${name}` : ''}: ${r.bits[(y * w + x) * c + ch]!.toFixed(3)} bits`;
    });
    const cap = document.createElement('figcaption');
    cap.textContent = name ? `−log₂ p, channel ${name}` : '−log₂ p per pixel';
    fig.append(canvas, cap);
    wrap.appendChild(fig);
  });
  const bar = $<HTMLCanvasElement>('b-bar').getContext('2d')!;
  const strip = bar.createImageData(256, 1);
  for (let k = 0; k < 256; k++) strip.data.set([...colormap(k / 255), 255], k * 4);
  bar.putImageData(strip, 0, 0);
  $('b-max').textContent = max.toFixed(2);
  const pngBits = r.pngBytes * 8;
  const most = Math.max(r.totalBits, pngBits);
  $('b-kpis').innerHTML = `
    <div class="kpi hero"><div class="v" id="b-total" data-bits="${r.totalBits}">${r.totalBits.toFixed(1)} bits</div><div class="k">Σ −log₂ p(x<sub>i</sub> | x<sub>&lt;i</sub>) over the ${h * w * c} elements: what an arithmetic coder driven by this model would spend</div>
      <div class="meter"><div style="width:${(100 * r.totalBits) / most}%"></div></div></div>
    <div class="kpi"><div class="v">${r.bitsPerDim.toFixed(3)}</div><div class="k">bits/dim</div></div>
    <div class="kpi"><div class="v">${(r.totalBits / 8).toFixed(0)} B</div><div class="k">model code length</div></div>
    <div class="kpi"><div class="v">${r.pngBytes} B</div><div class="k">8-bit PNG of the same image</div><div class="meter png"><div style="width:${(100 * pngBits) / most}%"></div></div></div>
    <div class="kpi"><div class="v">${(pngBits / r.totalBits).toFixed(2)}×</div><div class="k">smaller than PNG</div></div>`;
  $('b-kpis').dataset.state = 'done';
  $('b-kpis').dataset.where = api.where;
  const name = `test-${index}`;
  if (shown?.run.id !== run.id || shown.name !== name) {
    shown = { run, values: t.values, label, name, bits: r };
    resetFile();
  }
}

// ---- the model as a compressor: the real file of the shown image ---------------------------------

/** The image the bits panel shows: what "Compress this image" codes. */
let shown: { run: RunSummary; values: number[]; label: number | null; name: string; bits: BitsResult } | null = null;
let fileUrl: string | null = null;
let compressing: AbortController | null = null;
/** Why the way computing offers only the modes it does (the page's backend), or null. */
let modeNote: string | null = null;

const MODE_LABELS: Record<CodecMode, string> = {
  native: 'native: exact on this kind of machine',
  wasm: 'wasm: exact wherever WebAssembly runs',
  portable: 'portable: exact on any machine, slower',
};

/** The file modes the way computing writes, as the choice the panel offers (fastest first). */
async function showCompressModes(): Promise<void> {
  const asked = api;
  const { modes, note } = await api.compressModes();
  if (api !== asked) return;
  const select = $<HTMLSelectElement>('b-mode');
  const before = select.value;
  select.innerHTML = (['native', 'wasm', 'portable'] as const).filter((m) => modes.includes(m)).map((m) => `<option value="${m}">${MODE_LABELS[m]}</option>`).join('');
  if (modes.includes(before as CodecMode)) select.value = before;
  select.disabled = modes.length < 2;
  modeNote = note;
  resetFile();
}

/** The note on the modes, as the panel shows it. */
function modeNoteHtml(): string {
  return modeNote === null ? '' : `<p class="hint" id="b-mode-note">${esc(modeNote)}</p>`;
}

/** Forgets the file of the image shown before (and stops one being made). */
function resetFile(): void {
  compressing?.abort();
  compressing = null;
  if (fileUrl) URL.revokeObjectURL(fileUrl);
  fileUrl = null;
  const el = $('b-file');
  el.dataset.state = 'idle';
  el.innerHTML = `<p class="hint">Codes the image into a real file of <code>arpix compress</code> with this model, and decodes it back before offering it.</p>${modeNoteHtml()}`;
  $<HTMLButtonElement>('b-compress').disabled = shown === null || $<HTMLSelectElement>('b-mode').options.length === 0;
}

/** Text made safe to put in HTML (run ids are folder names). */
function esc(v: string): string {
  return v.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Asks for the image's file (the server, or the page's worker), given only once it decoded back to exactly the image; offers it for download. */
async function compressShown(): Promise<void> {
  if (!shown) return;
  const s = shown;
  resetFile();
  const controller = new AbortController();
  compressing = controller;
  const mode = $<HTMLSelectElement>('b-mode').value as CodecMode;
  const el = $('b-file');
  el.dataset.state = 'running';
  el.innerHTML = `<p class="hint">coding the image with the model, then decoding it back (${mode} mode)…</p>`;
  $<HTMLButtonElement>('b-compress').disabled = true;
  try {
    const r = await api.compress(s.run, { values: s.values, label: s.label, mode, name: s.name }, controller.signal);
    if (compressing !== controller) return; // another image or mode since
    const bytes = r.bytes.length;
    const fileName = r.fileName;
    const estimate = s.bits.totalBits / 8;
    const { h, w, c } = dims(s.run);
    fileUrl = URL.createObjectURL(new Blob([r.bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
    el.dataset.state = 'done';
    el.dataset.bytes = String(bytes);
    el.innerHTML = `
      <a id="b-download" class="download" href="${fileUrl}" download="${esc(fileName)}">Download the compressed file (${bytes} bytes)</a>
      <p class="exact" id="b-exact">decoded back exactly ✓ <span class="hint">${api.where === 'server' ? 'the server' : 'this page'} decoded these ${bytes} bytes with the model and got every value of the image back</span></p>
      <div class="kpis">
        <div class="kpi"><div class="v">${bytes} B</div><div class="k">the real file: ${((bytes * 8) / (h * w * c)).toFixed(3)} bits/dim, header included</div></div>
        <div class="kpi"><div class="v">${estimate.toFixed(0)} B</div><div class="k">the estimate above: the file is ${bytes >= estimate ? `${(bytes - estimate).toFixed(0)} B more` : `${(estimate - bytes).toFixed(0)} B less`} (its header, the coder's state)</div></div>
        <div class="kpi"><div class="v">${s.bits.pngBytes} B</div><div class="k">8-bit PNG: the file is ${bytes <= s.bits.pngBytes ? `${(s.bits.pngBytes / bytes).toFixed(2)}× smaller` : `${(bytes / s.bits.pngBytes).toFixed(2)}× larger`}</div></div>
      </div>
      <p class="hint">${r.mode} mode, ${r.weights === 'raw' ? 'trained' : 'averaged (EMA)'} weights; coded in ${r.encodeSeconds.toFixed(3)} s, decoded in ${r.decodeSeconds.toFixed(3)} s. Decode it with <code>arpix decompress ${esc(fileName)} --run ${esc(s.run.id)}${r.weights === 'raw' ? ' --raw' : ''} --out DIR</code>.</p>${modeNoteHtml()}`;
  } catch (e) {
    if (controller.signal.aborted) return;
    el.dataset.state = 'error';
    const p = document.createElement('p');
    p.className = 'file-error';
    p.id = 'b-file-error';
    p.textContent = `not compressed: ${e instanceof Error ? e.message : String(e)}`;
    el.replaceChildren(p);
  } finally {
    if (compressing === controller) {
      compressing = null;
      $<HTMLButtonElement>('b-compress').disabled = false;
    }
  }
}

// ---- Models --------------------------------------------------------------------------------------

let fieldPixel: [number, number] | null = null;

async function showModel(): Promise<void> {
  if (!current?.hasCheckpoint) return;
  const run = current;
  const info = await api.info(run);
  if (current !== run) return;
  const rf = info.receptiveField;
  $('m-kpis').innerHTML = `
    <div class="kpi hero"><div class="v">${info.model.kind}</div><div class="k">${info.model.height}×${info.model.width}×${info.model.channels}, ${info.model.levels} levels${info.model.numClasses ? `, ${info.model.numClasses} classes` : ''}</div></div>
    <div class="kpi"><div class="v">${fmt.int(info.parameters)}</div><div class="k">parameters</div></div>
    <div class="kpi"><div class="v">${fmt.si(info.flops)}FLOP</div><div class="k">per image${info.convolutions > 0 ? `, ${info.convolutions} convolutions` : ''}</div></div>
    ${rf ? `<div class="kpi"><div class="v">${((100 * rf.pixels) / rf.of).toFixed(1)}%</div><div class="k">of earlier pixels seen by the last (${rf.pixels} of ${rf.of})</div></div>` : ''}
    ${info.maskedFlops > 0 ? `<div class="kpi"><div class="v">${((100 * info.maskedFlops) / info.flops).toFixed(1)}%</div><div class="k">FLOPs on masked-out weights</div></div>` : ''}`;
  const rows = Object.entries(info.config).filter(([k]) => !['height', 'width', 'channels'].includes(k));
  $('m-config').innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${typeof v === 'object' ? JSON.stringify(v) : String(v)}</td></tr>`).join('');
  const { h, w } = dims(run);
  fieldPixel ??= [Math.floor(h / 2), Math.floor(w / 2)];
  if (fieldPixel[0] >= h || fieldPixel[1] >= w) fieldPixel = [Math.floor(h / 2), Math.floor(w / 2)];
  await drawField();
}

async function drawField(): Promise<void> {
  if (!current || !fieldPixel) return;
  const run = current;
  const [y, x] = fieldPixel;
  const { w } = dims(run);
  const [t, f] = await Promise.all([testImage(0), api.field(run, y, x)]);
  const max = Math.max(...f.influence);
  const canvas = $<HTMLCanvasElement>('m-canvas');
  drawValues(canvas, t.values, run, 420, (q) => {
    if (q === y * w + x) return [242, 85, 90, 1];
    const v = f.influence[q]!;
    if (v === 0) return [0, 0, 0, 0.72];
    const s = Math.log1p((v / max) * 99) / Math.log(100); // log scale: small gradients still show
    return [110, 168, 254, 0.25 + 0.55 * s];
  });
  canvas.dataset.pixels = String(f.pixels);
  $('m-stats').innerHTML = `<span>pixel <b>(${y}, ${x})</b></span><span>sees <b>${f.pixels}</b> of the <b>${f.of}</b> pixels before it (${f.of ? ((100 * f.pixels) / f.of).toFixed(1) : '100'}%)</span>${f.pixels < f.of ? `<span>blind or out of reach: <b>${f.of - f.pixels}</b></span>` : ''}`;
}

// ---- wiring ---------------------------------------------------------------------------------------

function wire(): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab!));
  $<HTMLSelectElement>('run').addEventListener('change', (e) => selectRun((e.target as HTMLSelectElement).value));
  $<HTMLSelectElement>('train-metric').addEventListener('change', (e) => {
    trainKey = (e.target as HTMLSelectElement).value as TrainKey;
    redrawCharts(true);
  });
  $('s-go').addEventListener('click', () => void runSample());
  $('s-stop').addEventListener('click', () => sampling?.abort());

  $('c-go').addEventListener('click', () => void runComplete());
  const step = (id: string, d: number, then: () => void) => () => {
    const el = $<HTMLInputElement>(id);
    el.value = String(Math.max(0, Number(el.value) + d));
    then();
  };
  const reloadEditor = () => void loadEditorImage().catch(toast);
  $('c-prev').addEventListener('click', step('c-index', -1, reloadEditor));
  $('c-next').addEventListener('click', step('c-index', 1, reloadEditor));
  $('c-index').addEventListener('change', reloadEditor);
  $('c-rows').addEventListener('input', () => { editor.usedMask = false; drawEditor(); });
  $('c-clear').addEventListener('click', () => { editor.hidden.fill(0); editor.usedMask = false; drawEditor(); });
  for (const b of document.querySelectorAll<HTMLButtonElement>('#c-tool button')) {
    b.addEventListener('click', () => {
      editor.tool = b.dataset.tool as typeof editor.tool;
      for (const o of document.querySelectorAll<HTMLButtonElement>('#c-tool button')) o.classList.toggle('active', o === b);
    });
  }
  const src = $<HTMLCanvasElement>('c-source');
  src.addEventListener('pointerdown', editorPointer);
  src.addEventListener('pointermove', editorPointer);
  $<HTMLInputElement>('c-file').addEventListener('change', async (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file || !current) return;
    try {
      const got = await api.upload(current, file);
      editor.values = got.values;
      drawEditor();
    } catch (err) {
      toast(err);
    }
  });

  const reloadBits = () => void runBits().catch(toast);
  $('b-go').addEventListener('click', reloadBits);
  $('b-prev').addEventListener('click', step('b-index', -1, reloadBits));
  $('b-next').addEventListener('click', step('b-index', 1, reloadBits));
  $('b-index').addEventListener('change', reloadBits);
  $('b-compress').addEventListener('click', () => void compressShown());
  $('b-mode').addEventListener('change', resetFile);

  $('m-canvas').addEventListener('click', (e) => {
    if (!current) return;
    const { h, w } = dims(current);
    const rect = (e.target as HTMLCanvasElement).getBoundingClientRect();
    fieldPixel = [Math.min(h - 1, Math.floor(((e.clientY - rect.top) / rect.height) * h)), Math.min(w - 1, Math.floor(((e.clientX - rect.left) / rect.width) * w))];
    void drawField().catch(toast);
  });

  panels.complete = { show: () => void loadEditorImage().catch(toast) };
  // The exported page samples as soon as it opens: a link to it shows the model at work.
  let sampledOnce = config.mode !== 'static';
  panels.sample = { show: () => { if (!sampledOnce && current) { sampledOnce = true; void runSample(); } } };
  panels.bits = { show: () => void runBits().catch(toast) };
  panels.models = { show: () => void showModel().catch(toast) };
  panels.train = trainPanel({ config, current: () => current, engine: localEngine, toast });
  window.addEventListener('resize', () => redrawCharts(true));
}

/** Says once, in the header, which way computes the model panels and on which backend. */
async function showWhere(): Promise<void> {
  const el = $('where');
  if (api.where === 'server') {
    el.textContent = 'computed by arpix serve';
    el.dataset.backend = 'server';
    el.title = '';
    return;
  }
  el.textContent = 'computed in this page…';
  const b = await api.backend();
  if (!b) return;
  el.textContent = `computed in this page · ${b.backend === 'wasm' ? 'WebAssembly' : 'TypeScript'} backend`;
  el.dataset.backend = b.backend;
  el.title = b.note;
}

/** A page opened from a file: browsers refuse its worker and fetches; the HTML's notice says what works instead. */
function fileNotice(): boolean {
  if (location.protocol !== 'file:') return false;
  $('notice').hidden = false;
  return true;
}

function wireCompute(): void {
  if (config.mode === 'static') {
    document.title = 'arpix';
    document.querySelector('.brand .sub')!.textContent = 'in your browser';
  }
  const pick = $<HTMLSelectElement>('compute');
  $('compute-wrap').hidden = config.mode !== 'serve';
  pick.value = api.where;
  // The page's threads: how many workers a batch is split between (read when a job starts).
  const threads = $<HTMLSelectElement>('threads');
  threads.innerHTML = Array.from({ length: MAX_THREADS }, (_, i) => `<option value="${i + 1}">${i + 1}</option>`).join('');
  threads.value = String(localEngine().threads);
  threads.addEventListener('change', () => { localEngine().threads = Number(threads.value); });
  $('threads-wrap').hidden = api.where !== 'page';
  pick.addEventListener('change', () => {
    sampling?.abort();
    api = makeApi(pick.value === 'page' ? 'page' : 'server');
    $('threads-wrap').hidden = api.where !== 'page';
    void showWhere().catch(toast);
    resetFile();
    void showCompressModes().catch(toast);
    const active = document.querySelector<HTMLButtonElement>('#tabs button.active')?.dataset.tab ?? 'runs';
    if (active !== 'sample' && active !== 'complete') panels[active]?.show?.();
  });
}

wire();
if (!fileNotice()) {
  wireCompute();
  void showWhere().catch(toast);
  void showCompressModes().catch(toast);
  loadRuns(true).then(() => {
    const tab = location.hash.slice(1) || (config.mode === 'static' ? 'sample' : '');
    if (tab && document.getElementById(`panel-${tab}`)) showTab(tab);
    if (config.mode === 'serve') setInterval(() => void loadRuns().catch(() => {}), 5000);
  }).catch(toast);
}
