// The page's training curve: a point per step, and the held-out figures, in bounded memory. Past
// `max` points it keeps every other step (and the first, and every step with a held-out figure), then takes only
// every stride-th step from then on; past max / 2 held-out figures it keeps every other one. A page
// left training for days holds the same few thousand points, spread over the whole run.

export class Curve {
  /** The steps shown and their losses (bits/dim), in step order. */
  readonly steps: number[] = [];
  readonly losses: number[] = [];
  /** Held-out bits/dim by step. */
  readonly held = new Map<number, number>();
  private stride = 1;
  /** The last step reported, kept or not. */
  last: { step: number; loss: number } | null = null;

  constructor(readonly max = 20_000) {
    if (!Number.isInteger(max) || max < 4) throw new Error(`Curve: max must be an integer ≥ 4, got ${max}`);
  }

  clear(): void {
    this.steps.length = 0;
    this.losses.length = 0;
    this.held.clear();
    this.stride = 1;
    this.last = null;
  }

  /** A step's loss. */
  step(step: number, loss: number): void {
    this.last = { step, loss };
    if (step % this.stride === 0) this.add(step, loss);
  }

  /** A held-out figure at `step` (reported after that step's loss): its step is on the curve, so the figure has a point to sit on. */
  heldOut(step: number, bitsPerDim: number): void {
    if (this.steps.at(-1) !== step && this.last?.step === step) this.add(step, this.last.loss);
    this.held.set(step, bitsPerDim);
    if (this.held.size > this.max / 2) {
      let i = 0;
      for (const k of [...this.held.keys()]) if (i++ % 2 === 1) this.held.delete(k);
    }
  }

  private add(step: number, loss: number): void {
    this.steps.push(step);
    this.losses.push(loss);
    if (this.steps.length <= this.max) return;
    this.stride *= 2;
    let j = 0;
    for (let i = 0; i < this.steps.length; i++) {
      if (i > 0 && this.steps[i]! % this.stride !== 0 && !this.held.has(this.steps[i]!)) continue;
      this.steps[j] = this.steps[i]!;
      this.losses[j++] = this.losses[i]!;
    }
    this.steps.length = j;
    this.losses.length = j;
  }
}
