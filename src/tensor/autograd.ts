// Define-by-run reverse-mode autograd, as in PyTorch: every op run on a tensor that requires
// gradients records a GradFn on its output; `backward()` walks the recorded graph in reverse
// topological order and accumulates gradients into the leaves' `.grad`.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { sameShape } from './shape.js';
import { Storage, Tensor, isPoolBuffer, recycleBuffer, trackAllocations, type GradFn } from './tensor.js';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with gradient recording off (evaluation, sampling, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Records `out` as produced by an op of `inputs`, when any input requires gradients and recording
 * is on. `backward` maps the output gradient to one gradient (or null) per input, each of that
 * input's shape. Returns out.
 */
export function record(
  out: Tensor,
  name: string,
  inputs: readonly (Tensor | null)[],
  backward: GradFn['backward'],
  accumulates?: readonly boolean[],
): Tensor {
  if (!gradEnabled) return out;
  if (!inputs.some((t) => t !== null && t.requiresGrad)) return out;
  out.requiresGrad = true;
  out.gradFn = accumulates ? { name, inputs, backward, accumulates } : { name, inputs, backward };
  return out;
}

/** Adds two gradients; kept here so autograd does not depend on the op layer. */
let addGrads: (a: Tensor, b: Tensor) => Tensor = () => {
  throw new Error('autograd: the op layer is not loaded');
};
let onesLike: (t: Tensor) => Tensor = () => {
  throw new Error('autograd: the op layer is not loaded');
};

/** Called once by the op layer to give autograd its two helpers. */
export function installAutogradHelpers(add: (a: Tensor, b: Tensor) => Tensor, ones: (t: Tensor) => Tensor): void {
  addGrads = add;
  onesLike = ones;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep networks (a PixelCNN++ has hundreds of ops) would overflow recursion.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next && next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

export interface BackwardOptions {
  /**
   * Once the pass is done, hand the memory of the graph's intermediate results back for the next
   * allocations, and drop the graph. For training loops that read nothing but the root and the
   * leaves' gradients afterwards: a step then reuses last step's activations instead of allocating
   * hundreds of MB (which costs page faults and garbage collections). Reading an intermediate
   * tensor of the graph afterwards throws; so does a second backward from the same root.
   */
  releaseGraph?: boolean;
}

const releasedRoots = new WeakSet<Tensor>();

/**
 * Back-propagates from `root`. Without `grad`, root must hold one element (a loss) and its
 * gradient is 1. Gradients accumulate into leaves' `.grad` across calls, as in PyTorch.
 */
export function backward(root: Tensor, grad?: Tensor, options: BackwardOptions = {}): void {
  if (releasedRoots.has(root)) {
    throw new ArgumentError('backward', 'tensor', 'its graph was already released by backward({ releaseGraph: true }); compute it again to back-propagate again');
  }
  if (!root.requiresGrad) {
    throw new ArgumentError('backward', 'tensor', 'does not require gradients: no input of the computation had requiresGrad set');
  }
  if (grad === undefined) {
    if (root.size !== 1) throw new ShapeError('backward', 'tensor', `must be a single value to call backward() without a gradient, got shape ${fmtShape(root.shape)}`, [root.shape]);
    grad = onesLike(root);
  } else if (!sameShape(grad.shape, root.shape)) {
    throw new ShapeError('backward', 'grad', `shape ${fmtShape(grad.shape)} must equal the tensor's shape ${fmtShape(root.shape)}`, [grad.shape, root.shape]);
  }
  const grads = new Map<Tensor, Tensor>([[root, grad]]);
  // Gradients this pass makes die as soon as they are consumed (intermediate ones are never
  // exposed): their buffers are recycled for the next allocations, when no pending gradient shares
  // them (ops pass a gradient through or reshape it without copying).
  const made = new Set<ArrayBuffer>();
  const shared = (buf: ArrayBufferLike, except?: Tensor) => {
    for (const [t, v] of grads) if (t !== except && v.data.buffer === buf) return true;
    return false;
  };
  const recycle = (used: readonly (Tensor | null | undefined)[]) => {
    for (const u of used) {
      const buf = u?.data.buffer;
      if (!buf || !made.has(buf as ArrayBuffer) || shared(buf)) continue;
      made.delete(buf as ArrayBuffer);
      recycleBuffer(buf as ArrayBuffer);
    }
  };
  // A pending gradient of `input` that the pass made and no other pending gradient shares.
  const owned = (input: Tensor) => {
    const buf = grads.get(input)?.data.buffer;
    return !!buf && made.has(buf as ArrayBuffer) && !shared(buf, input);
  };
  const outer = trackAllocations(made);
  try {
    noGrad(() => backwardPass(root, grads, recycle, owned));
  } finally {
    trackAllocations(outer);
  }
  if (options.releaseGraph) releaseGraph(root);
}

// The graph's intermediate results, except the root, go back to the allocator: a buffer only when
// an op made it (uninitArrayFor) and no leaf or untracked input shares it (a reshaped parameter is
// a node whose storage is the parameter's). Their storages are marked so a later read throws.
function releaseGraph(root: Tensor): void {
  const order = topoOrder(root);
  const keptStorages = new Set([root.storage]);
  const keptBuffers = new Set<ArrayBufferLike>([root.data.buffer]);
  const keep = (t: Tensor) => {
    keptStorages.add(t.storage);
    keptBuffers.add(t.data.buffer);
  };
  for (const t of order) {
    if (!t.gradFn) keep(t);
    else for (const input of t.gradFn.inputs) if (input && !input.requiresGrad) keep(input);
  }
  // Views share a storage, so every buffer is read before any storage is marked.
  const released = new Map<Storage, ArrayBufferLike>();
  for (const t of order) {
    if (!t.gradFn) continue;
    t.gradFn = null;
    if (!keptStorages.has(t.storage) && !released.has(t.storage)) released.set(t.storage, t.data.buffer);
  }
  const freed = new Set<ArrayBufferLike>();
  for (const [storage, buf] of released) {
    storage.release();
    if (keptBuffers.has(buf) || freed.has(buf) || !isPoolBuffer(buf)) continue;
    freed.add(buf);
    recycleBuffer(buf as ArrayBuffer);
  }
  releasedRoots.add(root);
}

function backwardPass(
  root: Tensor,
  grads: Map<Tensor, Tensor>,
  recycle: (used: readonly (Tensor | null | undefined)[]) => void,
  owned: (input: Tensor) => boolean,
): void {
  for (const t of topoOrder(root)) {
    const g = grads.get(t);
    if (g === undefined) continue;
    const fn: GradFn | null = t.gradFn;
    if (fn === null) {
      // A leaf owns its gradient: the incoming one may be shared with another leaf (add passes
      // the same tensor to both inputs) or with the caller's `grad`, so it is copied.
      t.grad = t.grad === null ? new Tensor(g.data.slice(), g.shape) : addGrads(t.grad, g);
      grads.delete(t);
      recycle([g]);
      continue;
    }
    grads.delete(t); // intermediate gradients are freed as soon as they are used
    // An op that adds an input's earlier gradient itself gets it as `prior` (for the first
    // occurrence of an input listed twice; the second is added as usual).
    const acc = fn.accumulates;
    const prior = acc && fn.inputs.map((input, k) => (acc[k] && input?.requiresGrad && fn.inputs.indexOf(input) === k ? grads.get(input) : undefined));
    const inGrads = prior ? fn.backward(g, prior, fn.inputs.map((input, k) => !!prior[k] && owned(input!))) : fn.backward(g);
    const replaced: Tensor[] = [];
    fn.inputs.forEach((input, k) => {
      const ig = inGrads[k];
      if (prior?.[k] && !ig) throw new Error(`${fn.name} (backward): dropped the earlier gradient of input ${k}`);
      if (!input || !input.requiresGrad || !ig) return;
      if (!sameShape(ig.shape, input.shape)) {
        throw new ShapeError(`${fn.name} (backward)`, `gradient of input ${k}`, `has shape ${fmtShape(ig.shape)} but the input has ${fmtShape(input.shape)}`, [ig.shape, input.shape]);
      }
      const prev = grads.get(input);
      grads.set(input, prev === undefined || prior?.[k] ? ig : addGrads(prev, ig));
      if (prev) replaced.push(prev);
    });
    recycle([g, ...inGrads, ...replaced]);
  }
}
