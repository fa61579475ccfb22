// The Kernels contract on top of the addon, derived from the kernel table: the addon binds each
// C++ kernel to its KERNELS entry (native/binding.h), and each kernel's adapter here is built once
// from the same entry. Argument i of the contract is argument i of the native call, marshalled by
// its kind (src/kernels/descriptor.ts): a tensor as its typed array (no copy), a null tensor as
// null, numbers, booleans and choices as they are. Shapes, storage identities, integer lists and
// attribute structs go into the frame instead, in argument order: one Float64Array the addon reads
// as raw memory, so a call builds no JS arrays (cached sampling calls small kernels per pixel).
// Checks live in the op layer; the addon's only protect memory.

import type { AdamHyper, AttentionAttrs, ConvParams, Kernels, RowConvGradTerm, RowLSTMStepPlan, View } from '../../kernels/contracts.js';
import type { KernelArg, KernelDescriptor } from '../../kernels/descriptor.js';
import { KERNELS } from '../../kernels/contracts.js';
import { patternCode } from '../../kernels/attention.js';
import { tsKernels } from '../ts/index.js';
import type { NativeAddon, NativeHandle } from './addon.js';

/** Turns one argument into what the native call takes in its place, writing its numbers to the frame. */
type Marshal = (value: never) => unknown;
type NativeFn = (...args: unknown[]) => unknown;

const same = (v: unknown): unknown => v;

/** Heads wider than this run on the reference (the native tiles hold at most 128 floats per head). */
const MAX_NATIVE_HEAD = 128;

/** The kernels the addon implements, bound to `table` (the addon refuses a table its C++ functions disagree with). */
export function nativeKernels(addon: NativeAddon, table: Readonly<Record<string, KernelDescriptor>> = KERNELS): Partial<Kernels> {
  if (typeof addon.bindKernels !== 'function') throw new Error('the addon has no bindKernels');
  let frame = new Float64Array(4096);
  const binding = addon.bindKernels(table, frame);
  let at = 0;

  /** Room for n more numbers: a larger frame, handed to the addon, when a call outgrows this one. */
  const room = (n: number): void => {
    if (at + n <= frame.length) return;
    const larger = new Float64Array(2 * (at + n));
    larger.set(frame);
    frame = larger;
    binding.useFrame(frame);
  };
  const numbers = (values: readonly number[]): void => {
    room(values.length + 1);
    frame[at++] = values.length;
    for (let i = 0; i < values.length; i++) frame[at++] = values[i]!;
  };
  const tensor = (v: View): unknown => {
    numbers(v.shape);
    return v.data;
  };
  const tensorWithIdentity = (v: View): unknown => {
    numbers(v.shape);
    room(2);
    frame[at++] = v.storageId;
    frame[at++] = v.version;
    return v.data;
  };
  const nullable = (v: View | null | undefined): unknown => (v == null ? null : tensor(v));
  const convParams = (p: ConvParams): undefined => {
    room(8);
    frame[at++] = p.strideH;
    frame[at++] = p.strideW;
    frame[at++] = p.padTop;
    frame[at++] = p.padLeft;
    frame[at++] = p.dilationH;
    frame[at++] = p.dilationW;
    frame[at++] = p.rowWinograd ? 1 : 0;
    frame[at++] = p.bf16 ? 1 : 0;
    return undefined;
  };
  // A step plan is read once into a native handle (pointers into its arrays), kept beside it.
  const plans = new WeakMap<RowLSTMStepPlan, NativeHandle>();

  const byKind: { readonly [K in KernelArg['kind']]: (arg: KernelArg & { kind: K }) => Marshal } = {
    tensor: (a) => (a.identity ? (a.nullable ? (v: View | null) => (v == null ? null : tensorWithIdentity(v)) : tensorWithIdentity) : a.nullable ? nullable : tensor),
    tensors: () => (xs: readonly View[]) => {
      room(1);
      frame[at++] = xs.length;
      return xs.map(tensor);
    },
    // [x, w, dx, addend, dw] per term; the frame holds each term's shapes and conv params.
    convTerms: () => (terms: readonly RowConvGradTerm[]) => {
      room(1);
      frame[at++] = terms.length;
      const arrays: unknown[] = [];
      for (const t of terms) {
        arrays.push(tensor(t.x), tensor(t.w));
        convParams(t.p);
        arrays.push(nullable(t.dx), nullable(t.addend), nullable(t.dw));
      }
      return arrays;
    },
    number: () => same,
    int: () => same,
    uint: () => same,
    bool: (a) => (a.optional ? (v: boolean | undefined) => v ?? false : same),
    choice: () => same,
    ints: () => (values: readonly number[]) => (numbers(values), undefined),
    convParams: () => convParams,
    attentionAttrs: () => (a: AttentionAttrs) => {
      room(3);
      frame[at++] = a.heads;
      frame[at++] = a.scale;
      frame[at++] = a.bf16 ? 1 : 0;
      numbers(patternCode(a.pattern));
      return undefined;
    },
    adamHyper: () => (h: AdamHyper) => {
      room(7);
      frame[at++] = h.beta1;
      frame[at++] = h.beta2;
      frame[at++] = h.eps;
      frame[at++] = h.stepSize;
      frame[at++] = h.bc2Sqrt;
      frame[at++] = h.decay;
      frame[at++] = h.l2;
      return undefined;
    },
    rowLstmPlan: () => (plan: RowLSTMStepPlan) => {
      let handle = plans.get(plan);
      if (!handle) plans.set(plan, (handle = addon.rowLstmPlan(plan)));
      return handle;
    },
  };

  /** The adapter of one kernel: the frame restarts, each argument is marshalled in order, then the call. */
  const adapter = (fn: NativeFn, args: readonly KernelArg[]): NativeFn => {
    const [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11] = args.map((a) => (byKind[a.kind] as (a: KernelArg) => (v: unknown) => unknown)(a));
    // One function per arity, so that a call allocates no argument array.
    switch (args.length) {
      case 1: return (a) => { at = 0; return fn(m0!(a)); };
      case 2: return (a, b) => { at = 0; return fn(m0!(a), m1!(b)); };
      case 3: return (a, b, c) => { at = 0; return fn(m0!(a), m1!(b), m2!(c)); };
      case 4: return (a, b, c, d) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d)); };
      case 5: return (a, b, c, d, e) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d), m4!(e)); };
      case 6: return (a, b, c, d, e, f) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d), m4!(e), m5!(f)); };
      case 7: return (a, b, c, d, e, f, g) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d), m4!(e), m5!(f), m6!(g)); };
      case 8: return (a, b, c, d, e, f, g, h) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d), m4!(e), m5!(f), m6!(g), m7!(h)); };
      case 9: return (a, b, c, d, e, f, g, h, i) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d), m4!(e), m5!(f), m6!(g), m7!(h), m8!(i)); };
      case 10: return (a, b, c, d, e, f, g, h, i, j) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d), m4!(e), m5!(f), m6!(g), m7!(h), m8!(i), m9!(j)); };
      case 11: return (a, b, c, d, e, f, g, h, i, j, k) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d), m4!(e), m5!(f), m6!(g), m7!(h), m8!(i), m9!(j), m10!(k)); };
      case 12: return (a, b, c, d, e, f, g, h, i, j, k, l) => { at = 0; return fn(m0!(a), m1!(b), m2!(c), m3!(d), m4!(e), m5!(f), m6!(g), m7!(h), m8!(i), m9!(j), m10!(k), m11!(l)); };
      default: throw new Error(`arpix: a kernel of ${args.length} arguments has no adapter (add one)`);
    }
  };

  const kernels: Record<string, NativeFn> = {};
  for (const [name, fn] of Object.entries(binding.kernels)) kernels[name] = adapter(fn, table[name]!.args);
  const bound = kernels as Partial<Kernels>;
  // Kernels that take the reference's path for some arguments.
  const { attention, attentionBackward } = bound;
  const wideHeads = (qkv: View, a: AttentionAttrs): boolean => qkv.shape[2]! / 3 / a.heads > MAX_NATIVE_HEAD;
  if (attention) bound.attention = (qkv, out, lse, a) => (wideHeads(qkv, a) ? tsKernels.attention : attention)(qkv, out, lse, a);
  if (attentionBackward) bound.attentionBackward = (qkv, out, lse, g, dqkv, a) => (wideHeads(qkv, a) ? tsKernels.attentionBackward : attentionBackward)(qkv, out, lse, g, dqkv, a);
  return bound;
}

