// PyTorch's torch.save files, read without Python: a zip archive holding `data.pkl` (a pickle of
// the saved object) and one entry per tensor storage under `data/`. Python's pickle is a small
// stack machine, but its GLOBAL and REDUCE opcodes import and call anything, which is how a
// malicious checkpoint runs code. This unpickler implements the machine and calls nothing: it
// knows the handful of globals a state dict needs (the tensor and parameter rebuild functions,
// the storage types, OrderedDict, Lightning's AttributeDict) as data constructors, and refuses any
// other global — and the opcodes that build arbitrary objects — with an error naming it.

import { FormatError, fmtShape } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { isZip, readZipDirectory, readZipEntry } from './zip.js';

/** A Python value as the unpickler builds it: dicts are Maps, lists and tuples arrays. */
export type PyValue =
  | null | boolean | number | bigint | string | Uint8Array | Tensor | PyValue[] | Map<PyValue, PyValue> | Set<PyValue>
  | PyGlobal | PyStorage;

/** A global the unpickler allows, kept as a name until it is called. */
class PyGlobal {
  constructor(readonly name: string) {}
}

/** A tensor storage from data/<key>: its element type and raw little-endian bytes. */
class PyStorage {
  constructor(readonly dtype: StorageType, readonly bytes: Uint8Array, readonly key: string) {}
}

type StorageType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const STORAGES: Record<string, StorageType> = {
  DoubleStorage: 'F64', FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};
const ITEM: Record<StorageType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

const ALLOWED = new Set([
  'collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter',
  'pytorch_lightning.utilities.parsing.AttributeDict', 'lightning_fabric.utilities.data.AttributeDict', 'lightning.fabric.utilities.data.AttributeDict',
  ...Object.keys(STORAGES).map((s) => `torch.${s}`),
]);

/** A pickle that asks for something other than tensors and containers; the message says what. */
export class UnsafePickleError extends FormatError {}

/**
 * What a torch.save archive may cost, checked before the bytes are inflated or copied. Without a
 * model to size them by (readTorchSave's default), they follow from the file: the storages may
 * declare what their compressed bytes can inflate to, the tensors hold at most one element per
 * storage byte, and data.pkl at most 64 MiB.
 */
export interface TorchSaveLimits {
  /** The most elements all rebuilt tensors may hold together. */
  maxElements: number;
  /** The most bytes the storages read may declare together. */
  maxStorageBytes: number;
  /** The most bytes data.pkl may declare. */
  maxPickleBytes: number;
  /** Whom the bounds are for, in messages: "the config's gated-pixelcnn model (12,345 weights)". */
  reason: string;
}

/** The element budget of an unpickling: rebuilt tensors draw from it before they are allocated. */
export interface ElementBudget {
  limit: number;
  remaining: number;
  reason: string;
}

function half(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const f = bits & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Checks a strided view against its storage before anything is allocated: a non-negative offset
 * and strides, every element reached inside the storage, and no element reached twice. A state
 * dict's tensors never overlap themselves, so an expanded (stride-0) or overlapping view — whose
 * copy could be far larger than the bytes that exist — is refused; permuted views (a transpose,
 * channels-last) and slices of a larger storage are read, and cost at most the storage's elements.
 * Returns the view's element count.
 */
function checkView(file: string, storage: PyStorage, offset: number, shape: number[], stride: number[], budget: ElementBudget): number {
  const where = `a tensor ${fmtShape(shape)} of storage data/${storage.key}`;
  const count = storage.bytes.byteLength / ITEM[storage.dtype];
  if (shape.length !== stride.length) throw new FormatError(file, `holds ${where} with ${stride.length} strides for its ${shape.length} dimensions`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new FormatError(file, `holds ${where} at storage offset ${offset}; offsets are non-negative integers`);
  if (shape.some((d) => d < 0) || stride.some((d) => d < 0)) throw new FormatError(file, `holds ${where} with strides ${fmtShape(stride)}; sizes and strides are non-negative`);
  if (shape.includes(0)) return 0;
  // Sorted by stride, each dimension must step past everything the smaller ones reach.
  const dims = shape.map((d, k) => [d, stride[k]!] as const).filter(([d]) => d > 1).sort((a, b) => a[1] - b[1]);
  let reach = 0;
  for (const [d, s] of dims) {
    if (s === 0) throw new FormatError(file, `holds ${where} that is an expanded view (stride 0): arpix reads tensors whose elements are all stored; save t.contiguous() instead`);
    if (s <= reach) throw new FormatError(file, `holds ${where} with strides ${fmtShape(stride)} that reach some elements twice: save t.contiguous() instead`);
    reach += (d - 1) * s;
  }
  let size = 1;
  for (const d of shape) {
    size *= d;
    if (size > count) throw new FormatError(file, `holds ${where}: more elements than the ${count} its storage holds`);
  }
  if (offset + reach >= count) throw new FormatError(file, `holds ${where} at offset ${offset} with strides ${fmtShape(stride)}, reaching element ${offset + reach} of a storage of ${count}`);
  if (size > budget.remaining) throw new FormatError(file, `holds more tensor elements than the ${budget.limit} allowed for ${budget.reason} (at ${where}); refused before reading them`);
  budget.remaining -= size;
  return size;
}

/** Gathers a checked strided view of a storage into a contiguous arpix tensor (float32, float64 or int32). */
function rebuildTensor(file: string, storage: PyStorage, offset: number, shape: number[], stride: number[], budget: ElementBudget): Tensor {
  const size = checkView(file, storage, offset, shape, stride, budget);
  const t = storage.dtype;
  const view = new DataView(storage.bytes.buffer, storage.bytes.byteOffset, storage.bytes.byteLength);
  const out = t === 'F64' ? new Float64Array(size) : ['F32', 'F16', 'BF16'].includes(t) ? new Float32Array(size) : new Int32Array(size);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < size; i++) {
    let at = offset;
    for (let k = 0; k < shape.length; k++) at += idx[k]! * stride[k]!;
    const b = at * ITEM[t];
    let v: number;
    switch (t) {
      case 'F64': v = view.getFloat64(b, true); break;
      case 'F32': v = view.getFloat32(b, true); break;
      case 'F16': v = half(view.getUint16(b, true)); break;
      case 'BF16': v = new Float32Array(new Uint32Array([view.getUint16(b, true) << 16]).buffer)[0]!; break;
      case 'I64': {
        const big = view.getBigInt64(b, true);
        if (big > 2147483647n || big < -2147483648n) throw new FormatError(file, `holds an int64 tensor value ${big} that does not fit arpix's int32`);
        v = Number(big);
        break;
      }
      case 'I32': v = view.getInt32(b, true); break;
      case 'I16': v = view.getInt16(b, true); break;
      case 'I8': v = view.getInt8(b); break;
      default: v = view.getUint8(b);
    }
    out[i] = v;
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
  return new Tensor(out, shape);
}

function asInts(file: string, v: PyValue | undefined, what: string): number[] {
  if (!Array.isArray(v) || v.length > 64 || !v.every((x) => Number.isSafeInteger(x))) throw new FormatError(file, `has a tensor whose ${what} is not a tuple of at most 64 integers`);
  return v as number[];
}

/**
 * Runs a pickle with only the allowed globals. `storage(key, type, numel)` supplies the bytes of a
 * persistent storage reference (torch.save's data/<key>), which must hold `numel` elements; the
 * tensors rebuilt from them draw their elements from `budget`.
 */
export function unpickle(bytes: Uint8Array, file: string, storage: (key: string, dtype: StorageType, numel: number) => Uint8Array = () => {
  throw new FormatError(file, 'refers to tensor storages but is not inside a torch.save archive');
}, budget: ElementBudget = { limit: Infinity, remaining: Infinity, reason: 'any model' }): PyValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const dec = new TextDecoder();
  let p = 0;
  const need = (n: number) => {
    if (p + n > bytes.length) throw new FormatError(file, `pickle ends inside an opcode at byte ${p}`);
  };
  const u8 = () => { need(1); return bytes[p++]!; };
  const take = (n: number) => { need(n); const b = bytes.subarray(p, p + n); p += n; return b; };
  const u32 = () => { need(4); const v = view.getUint32(p, true); p += 4; return v; };
  const pop = (): PyValue => {
    if (stack.length === 0) throw new FormatError(file, `pickle pops an empty stack at byte ${p}`);
    return stack.pop()!;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new FormatError(file, `pickle has no mark to pop at byte ${p}`);
    return stack.splice(m);
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw new FormatError(file, `pickle reads an empty stack at byte ${p}`);
    return stack[stack.length - 1]!;
  };
  const refuse = (what: string) => new UnsafePickleError(file, `is refused: its pickle ${what}; arpix reads tensors, state dicts and plain containers only and runs no code from a checkpoint (save the state dict alone: torch.save(model.state_dict(), PATH))`);
  const global = (name: string): PyGlobal => {
    if (!ALLOWED.has(name)) throw refuse(`imports ${name}`);
    return new PyGlobal(name);
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) throw refuse('calls something that is not an allowed global');
    const a = Array.isArray(args) ? args : [];
    switch (fn.name) {
      case 'collections.OrderedDict': {
        const m = new Map<PyValue, PyValue>();
        for (const kv of (a[0] as PyValue[] | undefined) ?? []) if (Array.isArray(kv)) m.set(kv[0]!, kv[1]!);
        return m;
      }
      case 'torch._utils._rebuild_tensor_v2': {
        const s = a[0];
        if (!(s instanceof PyStorage)) throw new FormatError(file, 'rebuilds a tensor from something that is not a storage');
        const offset = a[1];
        if (typeof offset !== 'number') throw new FormatError(file, 'rebuilds a tensor whose storage offset is not an integer');
        return rebuildTensor(file, s, offset, asInts(file, a[2], 'size'), asInts(file, a[3], 'stride'), budget);
      }
      case 'torch._utils._rebuild_parameter':
        if (!(a[0] instanceof Tensor)) throw new FormatError(file, 'rebuilds a parameter from something that is not a tensor');
        return a[0];
      default:
        if (fn.name.endsWith('AttributeDict')) return new Map();
        throw refuse(`calls ${fn.name}`);
    }
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: take(8); break; // FRAME
      case 0x2e: { // STOP
        if (stack.length !== 1) throw new FormatError(file, `pickle stops with ${stack.length} values on its stack`);
        return stack[0]!;
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4a: need(4); stack.push(view.getInt32(p, true)); p += 4; break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: need(2); stack.push(view.getUint16(p, true)); p += 2; break; // BININT2
      case 0x8a: case 0x8b: { // LONG1, LONG4
        const n = op === 0x8a ? u8() : u32();
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: need(8); stack.push(view.getFloat64(p, false)); p += 8; break; // BINFLOAT
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x58: stack.push(dec.decode(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(dec.decode(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: { need(8); const n = Number(view.getBigUint64(p, true)); p += 8; stack.push(dec.decode(take(n))); break; } // BINUNICODE8
      case 0x54: stack.push(dec.decode(take(u32()))); break; // BINSTRING
      case 0x55: stack.push(dec.decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: { need(8); const n = Number(view.getBigUint64(p, true)); p += 8; stack.push(take(n).slice()); break; } // BINBYTES8, BYTEARRAY8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) throw new FormatError(file, 'pickle appends to a non-list'); l.push(v); break; } // APPEND
      case 0x65: { const vs = popMark(); const l = top(); if (!Array.isArray(l)) throw new FormatError(file, 'pickle appends to a non-list'); for (const v of vs) l.push(v); break; } // APPENDS
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const kv = popMark(); const m = new Map<PyValue, PyValue>(); for (let i = 0; i + 1 < kv.length; i += 2) m.set(kv[i]!, kv[i + 1]!); stack.push(m); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); const m = top(); if (!(m instanceof Map)) throw new FormatError(file, 'pickle sets an item of a non-dict'); m.set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const kv = popMark();
        const m = top();
        if (!(m instanceof Map)) throw new FormatError(file, 'pickle sets items of a non-dict');
        for (let i = 0; i + 1 < kv.length; i += 2) m.set(kv[i]!, kv[i + 1]!);
        break;
      }
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const vs = popMark(); const s = top(); if (!(s instanceof Set)) throw new FormatError(file, 'pickle adds to a non-set'); for (const v of vs) s.add(v); break; } // ADDITEMS
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x63: { // GLOBAL "module\nname\n"
        const line = () => { const e = bytes.indexOf(0x0a, p); if (e < 0) throw new FormatError(file, 'pickle GLOBAL lacks its newline'); const s = dec.decode(bytes.subarray(p, e)); p = e + 1; return s; };
        const mod = line();
        stack.push(global(`${mod}.${line()}`));
        break;
      }
      case 0x93: { const name = pop(); const mod = pop(); stack.push(global(`${String(mod)}.${String(name)}`)); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x62: { // BUILD: only the state of dicts (an OrderedDict's _metadata), which is ignored
        const state = pop();
        const obj = top();
        if (!(obj instanceof Map)) throw refuse('sets the state of an object that is not a dict');
        void state;
        break;
      }
      case 0x51: { // BINPERSID: ('storage', type, key, location, numel)
        const pid = pop();
        if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof PyGlobal)) throw refuse('loads a persistent object that is not a tensor storage');
        const type = pid[1].name.startsWith('torch.') ? STORAGES[pid[1].name.slice('torch.'.length)] : undefined;
        if (type === undefined) throw new FormatError(file, `loads a storage of type ${pid[1].name}, which is not a tensor storage type`);
        const [, , key, , numel] = pid;
        if (typeof key !== 'string' || !Number.isSafeInteger(numel) || (numel as number) < 0) throw new FormatError(file, 'loads a storage without its key and element count (not written by torch.save)');
        stack.push(new PyStorage(type, storage(key, type, numel as number), key));
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) throw new FormatError(file, `pickle reads memo ${k}, which was never stored`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x69: case 0x6f: case 0x92: case 0x82: case 0x83: case 0x84: case 0x50:
        throw refuse(`uses opcode 0x${op.toString(16)} (${{ 0x69: 'INST', 0x6f: 'OBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x50: 'PERSID' }[op]}), which builds arbitrary objects`);
      default:
        throw new FormatError(file, `pickle opcode 0x${op.toString(16)} at byte ${p - 1} is not one torch.save writes (protocol 2+); re-save the file with torch.save`);
    }
  }
}

/** The object a torch.save zip archive holds, tensors rebuilt from its storages within `limits`. */
export function readTorchSave(bytes: Uint8Array, file: string, limits: Partial<TorchSaveLimits> = {}): PyValue {
  if (!isZip(bytes)) {
    throw new FormatError(file, 'is not a zip archive: arpix reads torch.save files in the zip format of PyTorch ≥ 1.6 (re-save with torch.save(obj, PATH) from a current PyTorch)');
  }
  const entries = readZipDirectory(bytes, file);
  const pkl = [...entries.keys()].find((n) => /(^|\/)data\.pkl$/.test(n));
  if (!pkl) throw new FormatError(file, 'is a zip archive without data.pkl: not a torch.save file');
  const root = pkl.slice(0, -'data.pkl'.length);
  const storages = [...entries.values()].filter((e) => e.name.startsWith(`${root}data/`));
  const declared = storages.reduce((a, e) => a + e.size, 0);
  const reason = limits.reason ?? `an archive whose storages declare ${declared} bytes`;
  const maxStorageBytes = limits.maxStorageBytes ?? declared;
  const maxPickleBytes = limits.maxPickleBytes ?? 64 * 2 ** 20;
  const pickleEntry = entries.get(pkl)!;
  if (pickleEntry.size > maxPickleBytes) throw new FormatError(file, `has a data.pkl of ${pickleEntry.size} bytes, more than the ${maxPickleBytes} allowed for ${reason}; refused before reading it`);
  const order = entries.get(`${root}byteorder`);
  if (order && (order.size > 16 || new TextDecoder().decode(readZipEntry(bytes, order, file)).trim() !== 'little')) {
    throw new FormatError(file, 'stores big-endian tensors; re-save it on a little-endian machine');
  }
  // Each storage is read once, however often the pickle refers to it, and only after its declared
  // size is found to fit: the element count the pickle gives, and what is left of the budget.
  const read = new Map<string, Uint8Array>();
  let storageBytes = 0;
  const maxElements = limits.maxElements ?? declared;
  const budget: ElementBudget = { limit: maxElements, remaining: maxElements, reason };
  return unpickle(readZipEntry(bytes, pickleEntry, file), file, (key, dtype, numel) => {
    const e = entries.get(`${root}data/${key}`);
    if (!e) throw new FormatError(file, `lacks the storage data/${key} its pickle refers to`);
    if (e.size !== numel * ITEM[dtype]) {
      throw new FormatError(file, `storage data/${key} holds ${e.size} bytes, but its pickle gives it ${numel} ${dtype} elements (${numel * ITEM[dtype]} bytes)`);
    }
    let got = read.get(key);
    if (got === undefined) {
      storageBytes += e.size;
      if (storageBytes > maxStorageBytes) throw new FormatError(file, `has storages declaring ${storageBytes} bytes (at data/${key}), more than the ${maxStorageBytes} allowed for ${reason}; refused before inflating them`);
      got = readZipEntry(bytes, e, file);
      read.set(key, got);
    }
    return got;
  }, budget);
}
