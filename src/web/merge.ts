// The page's threads: a batch split into contiguous parts, one per Web Worker, and the rows (or
// pixels) the parts stream put back together into the batch's. Each part sends its images of a
// row as it finishes them; the batch's row is whole when every part has sent it, and only then is
// it handed on — so what the panels paint, and the rates they show, are of whole rows of all the
// images. Each part sends its rows in order, so whole rows come out in order too.

import type { BatchPart } from '../models/sampling/index.js';

/** n images split into k contiguous parts, as even as can be (the first n mod k get one more). */
export function splitBatch(n: number, k: number): BatchPart[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`splitBatch: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`splitBatch: k must be an integer in 1..${n}, got ${k}`);
  const parts: BatchPart[] = [];
  let from = 0;
  for (let p = 0; p < k; p++) {
    const size = Math.floor(n / k) + (p < n % k ? 1 : 0);
    parts.push({ from, to: from + size });
    from += size;
  }
  return parts;
}

/**
 * Puts the parts' values of each unit (a row, or a pixel) into the batch's: a part's values of a
 * unit are its images' (to − from images, the same number of values each), in image order.
 */
export class PartsMerger {
  private readonly pending = new Map<number, { values: Int32Array; seen: Uint8Array; count: number }>();
  private perImage = -1;

  constructor(private readonly n: number, private readonly parts: readonly BatchPart[]) {}

  /** Units begun by some part and not yet sent by all. */
  get waiting(): number {
    return this.pending.size;
  }

  /**
   * Part `p`'s values of unit `key`. Returns the batch's values of that unit, [n · per image], when
   * this was the last part to send it; null while other parts have yet to.
   */
  add(p: number, key: number, values: Int32Array): Int32Array | null {
    const part = this.parts[p];
    if (!part) throw new Error(`PartsMerger: no part ${p} (there are ${this.parts.length})`);
    const rows = part.to - part.from;
    if (values.length % rows !== 0) throw new Error(`PartsMerger: part ${p} sent ${values.length} values for its ${rows} images`);
    const size = values.length / rows;
    if (this.perImage === -1) this.perImage = size;
    if (size !== this.perImage) throw new Error(`PartsMerger: part ${p} sent ${size} values per image, the others ${this.perImage}`);
    if (this.parts.length === 1) return values;
    let unit = this.pending.get(key);
    if (!unit) {
      unit = { values: new Int32Array(this.n * size), seen: new Uint8Array(this.parts.length), count: 0 };
      this.pending.set(key, unit);
    }
    if (unit.seen[p]) throw new Error(`PartsMerger: part ${p} sent unit ${key} twice`);
    unit.seen[p] = 1;
    unit.count++;
    unit.values.set(values, part.from * size);
    if (unit.count < this.parts.length) return null;
    this.pending.delete(key);
    return unit.values;
  }
}
