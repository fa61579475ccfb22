// The files a page's Web Worker fetches (a run's weights, its training images): every failure one
// line for the page to show, and the SHA-256 the page lists checked with the browser's own digest.

import { sha256 } from '../env.js';

/** A problem with what the page was given (a file, an answer), said in one line. */
export class PageError extends Error {}

export async function fetchBytes(url: string, what: string): Promise<Uint8Array<ArrayBuffer>> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new PageError(`${what} could not be fetched from ${url} (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!res.ok) throw new PageError(`${what} could not be fetched from ${url}: ${res.status} ${res.statusText}`.trimEnd());
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * The SHA-256 of bytes, in hex: the browser's own (native, off this thread) where the page is a
 * secure context, as 127.0.0.1 and HTTPS are; else arpix's.
 */
export async function digestOf(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (!subtle) return sha256().update(bytes).hex();
  let hex = '';
  for (const b of new Uint8Array(await subtle.digest('SHA-256', bytes))) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** Refuses bytes of `file` whose SHA-256 is not the one the page lists (null: nothing listed). */
export async function checkListed(bytes: Uint8Array<ArrayBuffer>, file: string, listed: string | null): Promise<void> {
  if (listed === null) return;
  if (await digestOf(bytes) !== listed) throw new PageError(`${file} is damaged: its SHA-256 is not the one the page lists (${bytes.length} bytes fetched); export the page again`);
}
