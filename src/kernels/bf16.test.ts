import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bf16Bits, fromBf16Bits, roundBf16, roundedBf16 } from './bf16.js';

test('bfloat16 keeps the top 16 bits of exactly representable values', () => {
  for (const v of [0, -0, 1, -2, 0.5, 3.75, 65280, -1.5 * 2 ** -126, Infinity, -Infinity]) {
    assert.equal(Object.is(roundBf16(v), v), true, `${v}`);
  }
  assert.equal(bf16Bits(1), 0x3f80);
  assert.equal(bf16Bits(-2), 0xc000);
  assert.equal(fromBf16Bits(0x4049), 3.140625);
});

test('rounding is to nearest, ties to even', () => {
  // 1 + k·2⁻⁸ lies between the bf16 neighbours 1 and 1 + 2⁻⁷ (7 mantissa bits).
  const ulp = 2 ** -7;
  assert.equal(roundBf16(1 + ulp / 2), 1, 'tie → even (1)');
  assert.equal(roundBf16(1 + 1.5 * ulp), 1 + 2 * ulp, 'tie → even (1 + 2 ulp)');
  assert.equal(roundBf16(1 + ulp / 2 + 2 ** -20), 1 + ulp, 'above the tie rounds up');
  assert.equal(roundBf16(1 + ulp / 2 - 2 ** -20), 1, 'below the tie rounds down');
  assert.equal(roundBf16(-(1 + 1.5 * ulp)), -(1 + 2 * ulp), 'the sign does not change the rounding');
  // π = 0x40490fdb in float32 → 0x4049 (0x0fdb < 0x8000).
  assert.equal(bf16Bits(Math.PI), 0x4049);
  // The largest float32 rounds past the largest bf16 to infinity, as IEEE rounding does.
  assert.equal(roundBf16(3.4028234663852886e38), Infinity);
  assert.equal(roundBf16(3.3895313892515355e38), 3.3895313892515355e38, 'the largest bf16 stays');
});

test('NaN stays NaN (quiet), subnormals round like any other value', () => {
  assert.equal(Number.isNaN(roundBf16(NaN)), true);
  assert.equal(bf16Bits(NaN) & 0x7fc0, 0x7fc0);
  const tiny = 2 ** -133;  // a float32 subnormal: its bf16 keeps the top bits
  assert.equal(roundBf16(tiny), tiny);
  assert.equal(roundBf16(2 ** -149), 0, 'the smallest float32 subnormal is below half a bf16 step: → 0');
});

test('roundedBf16 rounds a copy, and the relative error is at most 2⁻⁸ (half of 7 mantissa bits)', () => {
  const a = new Float32Array(1000);
  for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 12.9898) * 43758.5453 - 1e4;
  const before = a.slice();
  const r = roundedBf16(a);
  assert.deepEqual(a, before, 'the input is not touched');
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(r[i]! - a[i]!) <= Math.abs(a[i]!) * 2 ** -8, `${a[i]} → ${r[i]}`);
    assert.equal(bf16Bits(r[i]!) << 16 >>> 0, new Uint32Array(new Float32Array([r[i]!]).buffer)[0], 'a bf16 value');
  }
});
