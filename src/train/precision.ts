// Which precision a training run computes its products in (train.precision), and why. 'auto'
// takes bf16 where it was measured to pay: AMX tiles (Intel Sapphire Rapids and later), and
// AVX512-BF16 on AMD (Zen 4: oneDNN's bf16 convolutions and matmuls run at twice their fp32 rate,
// and training steps went 1.1-1.3× faster); fp32 elsewhere — an Intel CPU capped below AMX ran
// bf16 convolutions slower than fp32, and CPUs without AVX512-BF16 only emulate it. 'bf16' asked
// for where oneDNN cannot build bf16 products (below AVX-512: oneDNN 2.6 refuses them) falls back
// to fp32 with the reason. The ts backend has no bf16 arithmetic: it rounds the operands (the
// reference) when asked, and 'auto' keeps fp32 there.

import { readFileSync } from 'node:fs';
import type { ComputePrecision } from '../ops/precision.js';
import { backendName, nativeBackend } from '../backends/registry.js';
import type { CpuCapabilities } from '../backends/native/index.js';

import type { PrecisionSetting } from './run-config.js';

export { PRECISION_SETTINGS, type PrecisionSetting } from './run-config.js';

export interface PrecisionChoice {
  readonly precision: ComputePrecision;
  /** Why, in words: what the CPU and oneDNN offer, or that the config asked for it. */
  readonly reason: string;
}

/** The CPU's vendor_id from /proc/cpuinfo ('AuthenticAMD', 'GenuineIntel'), or '' where there is none. */
export function cpuVendor(): string {
  try {
    return /^vendor_id\s*:\s*(\S+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
}

/** The native backend's view of the CPU, or null on the ts backend. */
export function cpuCapabilities(): CpuCapabilities | null {
  if (backendName() !== 'native') return null;
  const n = nativeBackend() as { cpuCapabilities?: () => CpuCapabilities } | null;
  return n?.cpuCapabilities?.() ?? null;
}

/** oneDNN builds bf16 products here with a JIT implementation (not its reference loops). */
function hasBf16(c: CpuCapabilities): boolean {
  const jit = (impl: string) => impl !== '' && !impl.startsWith('ref');
  return jit(c.bf16Conv) && jit(c.bf16Matmul);
}

/** Hardware bf16 multiplication: AMX, or AVX512-BF16 (oneDNN's *_bf16 and *_amx kernels). */
function nativeBf16(c: CpuCapabilities): boolean {
  // The ISA after the colon ('brgconv:avx512_core_amx'); 'jit_bf16:avx512_core' is emulation.
  const isa = (impl: string) => impl.slice(impl.indexOf(':') + 1);
  return /amx|bf16/.test(isa(c.bf16Conv)) && /amx|bf16/.test(isa(c.bf16Matmul));
}

/** The precision a run with this setting computes in on this machine and backend (caps: for tests). */
export function choosePrecision(setting: PrecisionSetting, caps: CpuCapabilities | null = cpuCapabilities(), vendor = cpuVendor()): PrecisionChoice {
  if (setting === 'fp32') return { precision: 'fp32', reason: 'train.precision is fp32' };
  if (caps === null) {
    return setting === 'bf16'
      ? { precision: 'bf16', reason: 'train.precision is bf16; the ts backend rounds the operands to bf16 and computes in float64 (the reference, not faster)' }
      : { precision: 'fp32', reason: 'train.precision is auto and the ts backend has no bf16 arithmetic' };
  }
  const offer = `oneDNN's ISA here is ${caps.isa}`;
  if (!hasBf16(caps)) {
    const why = `${offer}, where it has no bf16 products${caps.bf16Conv.startsWith('ref') ? ' but its reference loops' : ''}`;
    return { precision: 'fp32', reason: setting === 'bf16' ? `train.precision is bf16 but ${why}: training in fp32` : `train.precision is auto and ${why}` };
  }
  if (setting === 'bf16') return { precision: 'bf16', reason: `train.precision is bf16 (${offer}; convolutions on ${caps.bf16Conv})` };
  const auto = `train.precision is auto and ${offer}`;
  if (!nativeBf16(caps)) return { precision: 'fp32', reason: `${auto}: bf16 products would be emulated (${caps.bf16Conv}), slower than fp32` };
  if (/amx/.test(caps.bf16Conv)) return { precision: 'bf16', reason: `${auto}: AMX multiplies bf16 tiles (${caps.bf16Conv})` };
  if (vendor === 'AuthenticAMD') return { precision: 'bf16', reason: `${auto} on an AMD CPU, where bf16 products run at twice the fp32 rate (${caps.bf16Conv})` };
  return { precision: 'fp32', reason: `${auto} without AMX on ${vendor || 'an unknown vendor'}'s CPU, where bf16 convolutions measured slower than fp32 (ask for train.precision=bf16 to try)` };
}
