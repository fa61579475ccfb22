// The Tensor: contiguous row-major storage, a shape, a dtype, and the autograd fields.
// Ops (src/ops) attach their methods to the prototype, so `h.add(block(h))` reads as in PyTorch.

import type { DType, TypedArray, View } from '../kernels/contracts.js';
import { ArgumentError, ArpixError, ShapeError, fmtShape } from '../errors.js';
import { shapeSize } from './shape.js';
import { envVar, platform } from '../env.js';

let nextStorageId = 1;

/** A block of memory shared by a tensor and its reshaped views. */
export class Storage {
  readonly id = nextStorageId++;
  /** Bumped on every in-place write, so caches keyed on (id, version) stay honest. */
  version = 0;
  #data: TypedArray;
  #released = false;
  constructor(data: TypedArray) {
    this.#data = data;
  }
  get data(): TypedArray {
    if (this.#released) {
      throw new ArpixError('this tensor was an intermediate result of a graph whose memory backward({ releaseGraph: true }) handed back for reuse; keep what you need to read (e.g. with .clone()) before that backward call, or call backward without releaseGraph');
    }
    return this.#data;
  }
  /** Marks the memory as reused elsewhere: any later read throws instead of seeing other data. */
  release(): void {
    this.#released = true;
  }
}

/** How a recorded op turns the gradient of its output into gradients of its inputs. */
export interface GradFn {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  /**
   * The gradient of each input for the output gradient `grad`. Where `accumulates[k]` is set,
   * `prior[k]` may hold the gradient input k has already received from elsewhere; the result for k
   * must then include it (a kernel can add it as it writes, instead of a separate add). Where
   * `owned[k]` is set too, that gradient belongs to the pass alone: the op may add into it in place
   * and return it.
   */
  backward(grad: Tensor, prior?: readonly (Tensor | undefined)[], owned?: readonly boolean[]): readonly (Tensor | null)[];
  readonly accumulates?: readonly boolean[];
}

export function arrayFor(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int32': return new Int32Array(n);
  }
}

const ITEM_BYTES: Record<DType, number> = { float32: 4, float64: 8, int32: 4 };
// Poisoning (ARPIX_POISON=1, used by a test run) fills uninitialised outputs with NaN or a
// sentinel, so a kernel that reads an output before writing it fails loudly instead of by luck.
const POISON = !!envVar('ARPIX_POISON');

// Buffers handed back by autograd (recycleBuffer) when a gradient it made is used up, or when
// backward({ releaseGraph: true }) drops a graph, by byte length. A new ArrayBuffer costs more than
// its malloc: V8 runs a young-generation collection for every 32 MB of new ArrayBuffer memory (a
// training step allocates hundreds of MB), and fresh pages fault in. Bounded: beyond
// POOL_MAX_BYTES (a training step's activations) buffers are left to the garbage collector.
const pool = new Map<number, ArrayBuffer[]>();
let pooledBytes = 0;
const POOL_MAX_BYTES = 1024 * 2 ** 20;
let allocations: Set<ArrayBuffer> | null = null;
const made = new WeakSet<ArrayBuffer>();
// Where a backend can see addresses, buffers get 64 spare bytes and their views start on a cache
// line: oneDNN's matrix products run ~4 % faster on aligned operands, and a 64-byte vector load at
// malloc's 16-byte alignment always spans two lines.
let addressMod64: ((buffer: ArrayBuffer) => number) | null = null;
const viewOffset = new WeakMap<ArrayBuffer, number>();

/** Lets a backend that can read memory addresses align the views uninitArrayFor makes. */
export function alignBuffersWith(fn: (buffer: ArrayBuffer) => number): void {
  addressMod64 = fn;
}

/** Records every pooled-size buffer uninitArrayFor hands out into `into` (null: stop); returns the previous set. */
export function trackAllocations(into: Set<ArrayBuffer> | null): Set<ArrayBuffer> | null {
  const prev = allocations;
  allocations = into;
  return prev;
}

/** Whether uninitArrayFor made this buffer (only those are recycled: others may be shared views). */
export function isPoolBuffer(buf: ArrayBufferLike): boolean {
  return made.has(buf as ArrayBuffer);
}

/** Hands a buffer that nothing references any more back to uninitArrayFor. */
export function recycleBuffer(buf: ArrayBuffer): void {
  // Poisoned, a buffer recycled while something still reads it shows as NaN there.
  if (POISON) new Float32Array(buf, 0, buf.byteLength >> 2).fill(NaN);
  if (pooledBytes + buf.byteLength > POOL_MAX_BYTES) return;
  let list = pool.get(buf.byteLength);
  if (!list) pool.set(buf.byteLength, (list = []));
  list.push(buf);
  pooledBytes += buf.byteLength;
}

/** Bytes held for reuse (tests). */
export function recycledBytes(): number {
  return pooledBytes;
}

/**
 * A typed array whose contents are unspecified: for kernel outputs, which the contract says are
 * fully overwritten. Large zero-filled allocations cost a memset each (an activation-sized output
 * every op); Node's unsafe Buffer skips it (src/env.ts: the platform's allocate), and recycled buffers skip the allocation too.
 */
export function uninitArrayFor(dtype: DType, n: number): TypedArray {
  const need = n * ITEM_BYTES[dtype];
  if (need < 4096 && !POISON) return arrayFor(dtype, n);
  const bytes = addressMod64 ? need + 64 : need;
  let buffer = pool.get(bytes)?.pop();
  if (buffer) pooledBytes -= bytes;
  else {
    buffer = platform().allocate(bytes);
    made.add(buffer);
    if (addressMod64) viewOffset.set(buffer, (64 - addressMod64(buffer)) % 64);
  }
  allocations?.add(buffer);
  const at = viewOffset.get(buffer) ?? 0;
  const data = dtype === 'float32' ? new Float32Array(buffer, at, n)
    : dtype === 'float64' ? new Float64Array(buffer, at, n)
    : new Int32Array(buffer, at, n);
  if (POISON) data.fill(dtype === 'int32' ? -123456789 : NaN);
  return data;
}

export function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  return 'int32';
}

export class Tensor implements View {
  readonly shape: readonly number[];
  readonly storage: Storage;
  requiresGrad = false;
  /** Accumulated gradient of a leaf after `backward()`. */
  grad: Tensor | null = null;
  /** The recorded op that produced this tensor (null for leaves and untracked results). */
  gradFn: GradFn | null = null;

  constructor(storage: Storage | TypedArray, shape: readonly number[]) {
    this.storage = storage instanceof Storage ? storage : new Storage(storage);
    const n = shapeSize(shape);
    if (n !== this.storage.data.length) {
      throw new ShapeError('Tensor', 'shape', `${fmtShape(shape)} holds ${n} elements but the data has ${this.storage.data.length}`, [shape]);
    }
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError('Tensor', 'shape', `${fmtShape(shape)} has a dimension that is not a non-negative integer`, [shape]);
    }
    this.shape = Object.freeze([...shape]);
  }

  get data(): TypedArray { return this.storage.data; }
  get dtype(): DType { return dtypeOf(this.storage.data); }
  get storageId(): number { return this.storage.id; }
  get version(): number { return this.storage.version; }
  get size(): number { return this.storage.data.length; }
  get rank(): number { return this.shape.length; }
  get isFloat(): boolean { return this.dtype !== 'int32'; }

  /** Marks an in-place write to this tensor's storage (optimisers call it after each step). */
  bumpVersion(): void { this.storage.version++; }

  /** The same storage, cut from the tape. */
  detach(): Tensor { return new Tensor(this.storage, this.shape); }

  /** Turns on gradient tracking for a leaf; returns this for chaining. */
  requireGrad(flag = true): this {
    if (flag && !this.isFloat) throw new ArgumentError('requireGrad', 'tensor', `of dtype ${this.dtype} cannot require gradients; cast to float32 first`);
    this.requiresGrad = flag;
    return this;
  }

  /** The values as a plain flat array. */
  toArray(): number[] { return Array.from(this.storage.data); }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError('item', 'tensor', `must hold exactly one element, got shape ${fmtShape(this.shape)}`, [this.shape]);
    return this.storage.data[0]!;
  }

  /** The values as nested arrays following the shape. */
  toNested(): unknown {
    const d = this.storage.data;
    const build = (axis: number, offset: number): unknown => {
      if (axis === this.shape.length) return d[offset];
      const stride = shapeSize(this.shape.slice(axis + 1));
      return Array.from({ length: this.shape[axis]! }, (_, i) => build(axis + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}
