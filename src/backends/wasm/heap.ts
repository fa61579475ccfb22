// The module's linear memory as the kernels use it. Kernels receive JavaScript typed arrays, which
// WebAssembly cannot read, so each call copies its inputs into the memory and its outputs back:
// - the scratch arena holds a call's copies and is reset at the start of the next call;
// - resident blocks hold what calls reuse — a weight matrix packed for the products, a cached
//   step's plan — keyed by storage identity and version (src/kernels/contracts.ts: View), so a
//   layer's weights are copied and packed once, not at every pixel. A tensor becomes resident
//   the second time it is seen unchanged (one-off operands are never cached), the blocks' bytes
//   are bounded and the least recently used block is evicted first.
// The memory grows when either needs room; the typed-array views over it are re-taken then.

/** Bytes the resident blocks may hold together before the least recently used are evicted. */
export const RESIDENT_BUDGET = 256 * 2 ** 20;

/** The tags of resident blocks that are not packed weights (whose tags are ≥ 0): a Row LSTM step plan, a KV cache. */
export const PLAN_TAG = -2, KV_TAG = -3;

const PAGE = 65536;

interface Block {
  at: number;
  bytes: number;
  /** The storage version (tensors) the block was made from; −1 for plans. */
  version: number;
  /** What the block holds, so one storage packed two ways is two different things. */
  tag: number;
  lastUse: number;
}

interface Gap { at: number; bytes: number }

const align = (n: number): number => (n + 15) & ~15;

export class WasmHeap {
  f32: Float32Array;
  i32: Int32Array;
  private buffer: ArrayBufferLike;
  /** The end of the resident region: the scratch arena starts here. */
  private residentTop: number;
  private scratchTop: number;
  private scratchStart: number;
  private readonly blocks = new Map<number, Block>();
  private gaps: Gap[] = [];
  private residentBytes = 0;
  /** Storage ids seen once with the version they had (a second sighting makes them resident). */
  private readonly seen = new Map<number, number>();
  /** Counts calls; blocks used by the current call are never evicted by it. */
  private clock = 0;

  constructor(private readonly memory: WebAssembly.Memory, heapBase: number, readonly poison = false, private readonly budget = RESIDENT_BUDGET) {
    this.buffer = memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.residentTop = align(heapBase);
    this.scratchStart = this.scratchTop = this.residentTop;
  }

  /** Starts a kernel call: the previous call's scratch is free again. */
  begin(): void {
    this.clock++;
    this.scratchStart = this.scratchTop = this.residentTop;
  }

  /** `bytes` of scratch for this call (16-byte aligned); its byte offset. */
  scratch(bytes: number): number {
    const at = this.scratchTop;
    this.scratchTop = align(at + bytes);
    this.ensure(this.scratchTop);
    return at;
  }

  /** A float32 or int32 array copied into scratch; its byte offset. */
  input(data: Float32Array | Int32Array): number {
    const at = this.scratch(4 * data.length);
    if (data instanceof Float32Array) this.f32.set(data, at >> 2);
    else this.i32.set(data, at >> 2);
    return at;
  }

  /**
   * Scratch for `count` floats of a kernel's output. Poisoned (NaN) when the heap was made with
   * `poison` (ARPIX_POISON=1), so that an element a kernel fails to write comes back as NaN, not
   * as what an earlier call left there.
   */
  outputSpace(count: number): number {
    const at = this.scratch(4 * count);
    if (this.poison) this.f32.fill(NaN, at >> 2, (at >> 2) + count);
    return at;
  }

  /** `count` integers of `src` from `from` copied into scratch, one by one (no subarray); their byte offset. */
  ints(src: Int32Array, from: number, count: number): number {
    const at = this.scratch(4 * count);
    const i32 = this.i32, base = at >> 2;
    for (let i = 0; i < count; i++) i32[base + i] = src[from + i]!;
    return at;
  }

  /** Frees this call's scratch so far (what was copied there is not needed any more). */
  dropScratch(): void {
    this.scratchTop = this.scratchStart;
  }

  /** Copies n floats at byte offset `at` into `into`. */
  output(at: number, into: Float32Array | Int32Array): void {
    const n = into.length;
    if (n === 0) return;
    if (into instanceof Float32Array) into.set(this.f32.subarray(at >> 2, (at >> 2) + n));
    else into.set(this.i32.subarray(at >> 2, (at >> 2) + n));
  }

  /**
   * The resident block for `key` when it holds `tag` made from `version`, touched; else null.
   * Plans use negative keys, tensors their storage id.
   */
  lookup(key: number, version: number, tag: number): number | null {
    const b = this.blocks.get(key);
    if (b === undefined || b.version !== version || b.tag !== tag) return null;
    b.lastUse = this.clock;
    return b.at;
  }

  /**
   * Marks the block for `key` holding `tag` made from `version` as made from `next`: its holder
   * changed it as the storage changed (a KV cache's row). False when there is no such block.
   */
  restamp(key: number, version: number, tag: number, next: number): boolean {
    const b = this.blocks.get(key);
    if (b === undefined || b.version !== version || b.tag !== tag) return false;
    b.version = next;
    b.lastUse = this.clock;
    return true;
  }

  /** Bytes of the resident blocks that hold `tag`. */
  bytesOf(tag: number): number {
    let bytes = 0;
    for (const b of this.blocks.values()) if (b.tag === tag) bytes += b.bytes;
    return bytes;
  }

  /** Releases the blocks holding `tag` that no call used in the last `calls` calls. */
  releaseIdle(tag: number, calls: number): void {
    for (const [key, b] of [...this.blocks]) if (b.tag === tag && b.lastUse < this.clock - calls) this.release(key);
  }

  /** Whether a tensor seen now should become resident: the second time at the same version. */
  secondSight(storageId: number, version: number): boolean {
    if (this.seen.get(storageId) === version) return true;
    if (this.seen.size >= 4096) this.seen.clear(); // one-off tensors come and go; keep the table small
    this.seen.set(storageId, version);
    return false;
  }

  /**
   * A resident block of `bytes` for `key` (replacing what the key held), evicting the least
   * recently used blocks beyond the budget. Only before the call's first scratch allocation.
   */
  resident(key: number, version: number, tag: number, bytes: number): number {
    if (this.scratchTop !== this.scratchStart) throw new Error('arpix wasm backend: a resident block was asked for after scratch memory (an adapter bug)');
    this.release(key);
    bytes = align(bytes);
    while (this.residentBytes + bytes > this.budget && this.evictOne()) { /* evict */ }
    let at = -1;
    for (let i = 0; i < this.gaps.length; i++) {
      const g = this.gaps[i]!;
      if (g.bytes < bytes) continue;
      at = g.at;
      if (g.bytes === bytes) this.gaps.splice(i, 1);
      else this.gaps[i] = { at: g.at + bytes, bytes: g.bytes - bytes };
      break;
    }
    if (at < 0) {
      at = this.residentTop;
      this.residentTop += bytes;
      this.ensure(this.residentTop);
    }
    this.blocks.set(key, { at, bytes, version, tag, lastUse: this.clock });
    this.residentBytes += bytes;
    this.scratchStart = this.scratchTop = this.residentTop;
    return at;
  }

  /** Resident blocks and their bytes (tests). */
  residentSize(): { blocks: number; bytes: number } {
    return { blocks: this.blocks.size, bytes: this.residentBytes };
  }

  /** Forgets every resident block. */
  clear(): void {
    for (const key of [...this.blocks.keys()]) this.release(key);
    this.seen.clear();
  }

  private evictOne(): boolean {
    let oldest: number | null = null;
    let when = Infinity;
    for (const [key, b] of this.blocks) {
      if (b.lastUse < when && b.lastUse !== this.clock) {
        when = b.lastUse;
        oldest = key;
      }
    }
    if (oldest === null) return false;
    this.release(oldest);
    return true;
  }

  private release(key: number): void {
    const b = this.blocks.get(key);
    if (!b) return;
    this.blocks.delete(key);
    this.residentBytes -= b.bytes;
    this.gaps.push({ at: b.at, bytes: b.bytes });
    this.gaps.sort((x, y) => x.at - y.at);
    // Merge neighbours, and give a gap at the top back to the top.
    const merged: Gap[] = [];
    for (const g of this.gaps) {
      const last = merged[merged.length - 1];
      if (last && last.at + last.bytes === g.at) last.bytes += g.bytes;
      else merged.push({ ...g });
    }
    const top = merged[merged.length - 1];
    if (top && top.at + top.bytes === this.residentTop) {
      this.residentTop = top.at;
      merged.pop();
    }
    this.gaps = merged;
  }

  /** Grows the memory to hold `end` bytes; the views are re-taken when the buffer changes. */
  private ensure(end: number): void {
    if (end > this.buffer.byteLength) {
      const pages = Math.ceil((end - this.buffer.byteLength) / PAGE);
      try {
        this.memory.grow(Math.max(pages, this.buffer.byteLength / PAGE / 4 | 0));
      } catch {
        try {
          this.memory.grow(pages);
        } catch (e) {
          throw new Error(`arpix wasm backend: the module's memory cannot grow to ${(end / 2 ** 20).toFixed(0)} MiB (${e instanceof Error ? e.message : String(e)}); use a smaller batch`, { cause: e });
        }
      }
    }
    // A grown memory's old buffer is detached (length 0), or, when the memory is shared, stays a
    // SharedArrayBuffer of the old length: either way the lengths differ.
    if (this.memory.buffer.byteLength !== this.buffer.byteLength) {
      this.buffer = this.memory.buffer;
      this.f32 = new Float32Array(this.buffer);
      this.i32 = new Int32Array(this.buffer);
    }
  }
}
