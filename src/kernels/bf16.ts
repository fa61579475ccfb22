// bfloat16, the compute precision of mixed-precision kernels (BF16_OPERANDS in contracts.ts): the
// top 16 bits of a float32 (sign, the 8-bit exponent, 7 bits of mantissa), so it keeps float32's
// range and loses precision only. Rounding is to nearest, ties to even — what oneDNN's reorders,
// the CPU's VCVTNEPS2BF16 and the native addon's conversion (native/common.h) all do — so that this
// definition is the oracle of every native bf16 kernel.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bfloat16 bits of x (after rounding x to float32): nearest, ties to even; NaN stays a quiet NaN. */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The float32 value of bfloat16 bits. */
export function fromBf16Bits(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** x rounded to the nearest bfloat16 value (ties to even), as a number. */
export function roundBf16(x: number): number {
  return fromBf16Bits(bf16Bits(x));
}

/** A copy of data with every element rounded to bfloat16. */
export function roundedBf16<T extends Float32Array | Float64Array>(data: T): T {
  const out = data.slice() as T;
  for (let i = 0; i < out.length; i++) out[i] = roundBf16(out[i]!);
  return out;
}
