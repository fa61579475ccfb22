// The small family of errors arpix throws. Each names the operation and the argument at fault,
// so a message reads like `conv2d: input channels (3) must equal weight in-channels (4)`.

export class ArpixError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A wrong shape, rank or size of an op's argument. */
export class ShapeError extends ArpixError {
  constructor(
    readonly op: string,
    readonly arg: string,
    detail: string,
    readonly shapes: readonly (readonly number[])[] = [],
  ) {
    super(`${op}: ${arg} ${detail}`);
  }
}

/** A dtype an op does not accept. */
export class DTypeError extends ArpixError {
  constructor(readonly op: string, readonly arg: string, readonly got: string, readonly expected: string) {
    super(`${op}: ${arg} has dtype ${got}, expected ${expected}`);
  }
}

/** An axis out of range for a tensor's rank. */
export class AxisError extends ArpixError {
  constructor(readonly op: string, readonly arg: string, readonly axis: number, readonly rank: number) {
    super(`${op}: ${arg} ${axis} is out of range for a tensor of rank ${rank} (use -${rank}..${rank - 1})`);
  }
}

/** A bad non-tensor argument (a negative size, a probability above 1, …). */
export class ArgumentError extends ArpixError {
  constructor(readonly op: string, readonly arg: string, detail: string) {
    super(`${op}: ${arg} ${detail}`);
  }
}

/** Anything wrong with a file arpix reads: names the file and what is wrong. */
export class FormatError extends ArpixError {
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super(`${file}: ${detail}`, options);
  }
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
