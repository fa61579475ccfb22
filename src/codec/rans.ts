// The entropy coder: range asymmetric numeral systems (rANS, Duda 2013) with a 52-bit state held
// exactly in a float64, byte-wise renormalisation and 24-bit frequencies. Every step is integer
// arithmetic below 2^53 (a float64 division is corrected to the exact quotient), so the coded
// bytes are the same on every machine and JavaScript engine.
//
//   state x ∈ [L, 256·L) with L = 2^44; frequencies sum to M = 2^24 (PROB_BITS).
//   encode (start c, freq f): while x ≥ 2^28·f emit x mod 256, x ← ⌊x / 256⌋;
//                             then x ← ⌊x / f⌋·M + (x mod f) + c.
//   decode:                   slot = x mod M names the symbol s with c_s ≤ slot < c_s + f_s;
//                             x ← f_s·⌊x / M⌋ + slot − c_s; while x < L read a byte: x ← 256·x + b.
//
// rANS decodes in the reverse order of encoding, so the encoder takes the symbols last first: a
// caller pushes a block of (start, freq) pairs in coding order and `flushBlock` codes them
// backwards; blocks are flushed last block first (see codec.ts). The stream opens with the final
// state (7 bytes) and the decoder must end at exactly L, the state the encoder began with: a check
// that every byte was read as written.

import { FormatError } from '../errors.js';

/** Frequencies of one distribution sum to 2^PROB_BITS; every symbol gets at least 1. */
export const PROB_BITS = 24;
export const PROB_TOTAL = 2 ** PROB_BITS;
const L = 2 ** 44;
/** x_max(f) = RENORM · f: a state at or above it emits a byte before f is coded. */
const RENORM = 2 ** 28; // L / M · 256
const STATE_BYTES = 7; // states are below 2^52

/** ⌊a / b⌋ and a mod b for integers 0 ≤ a < 2^53, 0 < b < 2^53, exactly. */
function divmod(a: number, b: number): [number, number] {
  let q = Math.floor(a / b);
  let r = a - q * b;
  if (r < 0) { q--; r += b; } else if (r >= b) { q++; r -= b; }
  return [q, r];
}

/** A growable byte buffer written back to front (rANS emits the stream's last byte first). */
class ReverseBytes {
  private buf = new Uint8Array(1 << 12);
  private at = this.buf.length;

  push(b: number): void {
    if (this.at === 0) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf, this.buf.length);
      this.at = this.buf.length;
      this.buf = bigger;
    }
    this.buf[--this.at] = b;
  }

  get length(): number {
    return this.buf.length - this.at;
  }

  bytes(): Uint8Array {
    return this.buf.slice(this.at);
  }
}

/**
 * The encoder. `put` queues one symbol of the current block in coding order; `flushBlock` codes
 * the queue backwards. Call `flushBlock` for the blocks in reverse order, then `finish`.
 */
export class RansEncoder {
  private x = L;
  private out = new ReverseBytes();
  private starts = new Float64Array(1 << 12);
  private freqs = new Float64Array(1 << 12);
  private queued = 0;
  /** Σ −log₂(f / M) of every symbol coded: the ideal length of the stream in bits, for reports. */
  idealBits = 0;

  /** Queues a symbol whose frequency interval is [start, start + freq) of 2^PROB_BITS. */
  put(start: number, freq: number): void {
    if (!(freq >= 1 && start >= 0 && start + freq <= PROB_TOTAL && Number.isInteger(start) && Number.isInteger(freq))) {
      throw new RangeError(`rANS: the interval [${start}, ${start + freq}) is not inside [0, ${PROB_TOTAL}) with a positive integer width`);
    }
    if (this.queued === this.starts.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.freqs = grow(this.freqs);
    }
    this.starts[this.queued] = start;
    this.freqs[this.queued++] = freq;
  }

  /** Codes the queued symbols, last first, and empties the queue. */
  flushBlock(): void {
    let x = this.x;
    const M = PROB_TOTAL;
    for (let k = this.queued - 1; k >= 0; k--) {
      const f = this.freqs[k]!;
      const max = RENORM * f;
      while (x >= max) {
        this.out.push(x % 256);
        x = Math.floor(x / 256);
      }
      const [q, r] = divmod(x, f);
      x = q * M + r + this.starts[k]!;
      this.idealBits += PROB_BITS - Math.log2(f);
    }
    this.x = x;
    this.queued = 0;
  }

  /** The whole stream: the final state, then the bytes in the order the decoder reads them. */
  finish(): Uint8Array {
    if (this.queued > 0) this.flushBlock();
    let x = this.x;
    for (let k = 0; k < STATE_BYTES; k++) {
      this.out.push(x % 256);
      x = Math.floor(x / 256);
    }
    return this.out.bytes();
  }
}

/** The decoder of one stream. `file` names the stream's file in errors. */
export class RansDecoder {
  private x = 0;
  private at = 0;

  constructor(private readonly bytes: Uint8Array, private readonly file: string) {
    if (bytes.length < STATE_BYTES) throw new FormatError(file, `holds a coded stream of ${bytes.length} bytes, shorter than its ${STATE_BYTES}-byte state (truncated?)`);
    for (let k = 0; k < STATE_BYTES; k++) this.x = this.x * 256 + bytes[this.at++]!;
    if (this.x < L || this.x >= 256 * L) throw new FormatError(file, 'has a coded stream whose initial state is out of range (the file is damaged)');
  }

  /** The slot in [0, 2^PROB_BITS) of the next symbol: the caller finds the symbol whose interval holds it. */
  peek(): number {
    return this.x % PROB_TOTAL;
  }

  /** Consumes the symbol with interval [start, start + freq), which must hold peek(). */
  advance(start: number, freq: number): void {
    const slot = this.x % PROB_TOTAL;
    let x = freq * Math.floor(this.x / PROB_TOTAL) + slot - start;
    while (x < L) {
      if (this.at >= this.bytes.length) throw new FormatError(this.file, 'ends inside its coded stream (truncated, or decoded with other probabilities than it was written with)');
      x = x * 256 + this.bytes[this.at++]!;
    }
    this.x = x;
  }

  /** Throws unless every byte was read and the state is back where the encoder began. */
  end(): void {
    if (this.at !== this.bytes.length || this.x !== L) {
      throw new FormatError(this.file, `did not decode to its end (${this.bytes.length - this.at} bytes left; the file is damaged, or was decoded with other probabilities than it was written with)`);
    }
  }
}

/**
 * The symbol of a cumulative frequency table (cum[0] = 0 ≤ … ≤ cum[K] = M, strictly increasing)
 * whose interval holds `slot`: a binary search.
 */
export function symbolOf(cum: Uint32Array | Float64Array, k: number, slot: number): number {
  let lo = 0;
  let hi = k; // cum[lo] ≤ slot < cum[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid]! <= slot) lo = mid;
    else hi = mid;
  }
  return lo;
}
