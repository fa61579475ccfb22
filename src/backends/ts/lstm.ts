// Reference LSTM recurrence (lstmScan, lstmScanBackward): plain loops over steps, images,
// positions and channels, the definition the native kernels are held to.

import type { View } from '../../kernels/contracts.js';
import { sigmoid, tanh } from './portable-math.js';

interface Dims { T: number; B: number; L: number; H: number; k: number }

function dims(xgOrActs: View, w: View): Dims {
  const [T, B, L, G] = xgOrActs.shape as [number, number, number, number];
  return { T, B, L, H: G / 4, k: w.shape[0]! };
}

/** h_{t−1} at (b, p): h0 before the first step, zero outside the positions. */
function prevH(hs: View, h0: View, d: Dims, t: number, b: number, p: number, i: number): number {
  if (p < 0 || p >= d.L) return 0;
  return t === 0 ? h0.data[i]! : hs.data[(((t - 1) * d.B + b) * d.L + p) * d.H + i]!;
}

export function lstmScan(xg: View, w: View, h0: View, c0: View, hs: View, cs: View, acts: View, pad: number): void {
  const d = dims(xg, w);
  const { T, B, L, H, k } = d;
  const z = new Float64Array(4 * H);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      for (let l = 0; l < L; l++) {
        const at = (t * B + b) * L + l;
        for (let j = 0; j < 4 * H; j++) z[j] = xg.data[at * 4 * H + j]!;
        for (let kk = 0; kk < k; kk++) {
          for (let i = 0; i < H; i++) {
            const hv = prevH(hs, h0, d, t, b, l - pad + kk, i);
            if (hv === 0) continue;
            for (let j = 0; j < 4 * H; j++) z[j] += hv * w.data[(kk * H + i) * 4 * H + j]!;
          }
        }
        for (let j = 0; j < H; j++) {
          const o = sigmoid(z[j]!), f = sigmoid(z[H + j]!), ig = sigmoid(z[2 * H + j]!), g = tanh(z[3 * H + j]!);
          const cPrev = t === 0 ? c0.data[j]! : cs.data[(at - B * L) * H + j]!;
          const c = f * cPrev + ig * g;
          cs.data[at * H + j] = c;
          hs.data[at * H + j] = o * tanh(c);
          const a = acts.data;
          a[at * 4 * H + j] = o;
          a[at * 4 * H + H + j] = f;
          a[at * 4 * H + 2 * H + j] = ig;
          a[at * 4 * H + 3 * H + j] = g;
        }
      }
    }
  }
}

export function lstmScanBackward(w: View, h0: View, c0: View, hs: View, cs: View, acts: View, dhs: View, dxg: View, dw: View, dh0: View, dc0: View, pad: number): void {
  const d = dims(acts, w);
  const { T, B, L, H, k } = d;
  const G = 4 * H;
  const dz = dxg.data;
  dw.data.fill(0);
  dh0.data.fill(0);
  dc0.data.fill(0);
  // Gradients reaching h_t and c_t from step t + 1.
  let dhNext = new Float64Array(B * L * H);
  let dcNext = new Float64Array(B * L * H);
  for (let t = T - 1; t >= 0; t--) {
    const dhPrev = new Float64Array(B * L * H);
    const dcPrev = new Float64Array(B * L * H);
    for (let b = 0; b < B; b++) {
      for (let l = 0; l < L; l++) {
        const at = (t * B + b) * L + l;
        const s = b * L + l;
        for (let j = 0; j < H; j++) {
          const a = acts.data;
          const o = a[at * G + j]!, f = a[at * G + H + j]!, ig = a[at * G + 2 * H + j]!, g = a[at * G + 3 * H + j]!;
          const tc = tanh(cs.data[at * H + j]!);
          const dh = dhs.data[at * H + j]! + dhNext[s * H + j]!;
          const dc = dcNext[s * H + j]! + dh * o * (1 - tc * tc);
          const cPrev = t === 0 ? c0.data[j]! : cs.data[(at - B * L) * H + j]!;
          dz[at * G + j] = dh * tc * o * (1 - o);
          dz[at * G + H + j] = dc * cPrev * f * (1 - f);
          dz[at * G + 2 * H + j] = dc * g * ig * (1 - ig);
          dz[at * G + 3 * H + j] = dc * ig * (1 - g * g);
          dcPrev[s * H + j] = dc * f;
        }
        for (let kk = 0; kk < k; kk++) {
          const p = l - pad + kk;
          if (p < 0 || p >= L) continue;
          for (let i = 0; i < H; i++) {
            const hv = prevH(hs, h0, d, t, b, p, i);
            let back = 0;
            for (let j = 0; j < G; j++) {
              const wi = (kk * H + i) * G + j;
              back += dz[at * G + j]! * w.data[wi]!;
              dw.data[wi] = dw.data[wi]! + hv * dz[at * G + j]!;
            }
            dhPrev[(b * L + p) * H + i] = dhPrev[(b * L + p) * H + i]! + back;
          }
        }
      }
    }
    dhNext = dhPrev;
    dcNext = dcPrev;
  }
  // h_{−1} and c_{−1} are h0 and c0 at every position.
  for (let s = 0; s < B * L; s++) {
    for (let j = 0; j < H; j++) {
      dh0.data[j] = dh0.data[j]! + dhNext[s * H + j]!;
      dc0.data[j] = dc0.data[j]! + dcNext[s * H + j]!;
    }
  }
}
