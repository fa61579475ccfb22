// What arpix takes from the place it runs in. The core (tensors, ops, kernels, models, samplers,
// checkpoint decoding) runs wherever JavaScript runs — Node, a browser page, a Web Worker — so it
// asks here instead of importing `node:` modules. The defaults work everywhere; a Node program
// installs Node's faster services (unzeroed buffers, OpenSSL's SHA-256, the machine's memory) by
// importing src/backends/node.ts, which also registers the native backend.

import { sha256 as portableSha256 } from '@noble/hashes/sha2.js';

/** An incremental SHA-256. */
export interface Sha256 {
  update(data: Uint8Array | string): Sha256;
  hex(): string;
}

export interface Platform {
  /** An environment variable, or undefined (always, where there is no environment). */
  env(name: string): string | undefined;
  /** Bytes of memory the machine has, for the memory limit's default. */
  totalMemory(): number;
  /** A buffer whose contents are unspecified (kernel outputs overwrite every element). */
  allocate(bytes: number): ArrayBuffer;
  sha256(): Sha256;
  /** The largest byte array a file may be read into. */
  maxBytes: number;
}

const utf8 = new TextEncoder();

function portableHash(): Sha256 {
  const h = portableSha256.create();
  const hash: Sha256 = {
    update(data) {
      h.update(typeof data === 'string' ? utf8.encode(data) : data);
      return hash;
    },
    hex() {
      let s = '';
      for (const b of h.digest()) s += b.toString(16).padStart(2, '0');
      return s;
    },
  };
  return hash;
}

interface ProcessLike { env?: Record<string, string | undefined> }
interface NavigatorLike { deviceMemory?: number }

/** Services every JavaScript engine has. */
const portable: Platform = {
  env: (name) => (globalThis as { process?: ProcessLike }).process?.env?.[name],
  // Browsers tell memory coarsely (deviceMemory, in GiB, capped at 8) or not at all: 4 GiB then.
  totalMemory: () => ((globalThis as { navigator?: NavigatorLike }).navigator?.deviceMemory ?? 4) * 2 ** 30,
  allocate: (bytes) => new ArrayBuffer(bytes),
  sha256: portableHash,
  maxBytes: 2 ** 31 - 1,
};

let current: Platform = portable;

/** Replaces some services (Node's entry does this once at start). */
export function installPlatform(services: Partial<Platform>): void {
  current = { ...current, ...services };
}

export function platform(): Platform {
  return current;
}

/** An environment variable, or undefined where there is no environment (a browser). */
export function envVar(name: string): string | undefined {
  return current.env(name);
}

export function sha256(): Sha256 {
  return current.sha256();
}

/** SHA-256 as the portable implementation computes it, whatever is installed (tests compare the two). */
export const portableSha256Hash = portableHash;

/**
 * Resolves in a later turn of the event loop, once pending messages, signals and I/O had theirs:
 * Node's setImmediate, elsewhere a message posted to itself (a timer of 0 would wait 4 ms once nested).
 */
export function nextTurn(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  if (immediate) return new Promise((resolve) => { immediate(resolve); });
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
