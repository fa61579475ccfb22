// Just enough of (ustar / GNU) tar to unpack the CIFAR archives: 512-byte headers, regular files
// and folders, GNU long names. Paths that would leave the target folder are refused.

import fs from 'node:fs';
import path from 'node:path';
import { FormatError } from '../errors.js';

function field(block: Uint8Array, start: number, length: number): string {
  const bytes = block.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function octal(block: Uint8Array, start: number, length: number, file: string): number {
  const text = field(block, start, length).trim();
  const v = text === '' ? 0 : parseInt(text, 8);
  if (!Number.isFinite(v)) throw new FormatError(file, `has a corrupt tar header (size field '${text}')`);
  return v;
}

/** Writes the regular files of a tar archive under `dest`; returns their relative paths. */
export function extractTar(tar: Uint8Array, dest: string, file: string): string[] {
  const written: string[] = [];
  const root = path.resolve(dest);
  let pos = 0;
  let longName: string | null = null;
  while (pos + 512 <= tar.length) {
    const header = tar.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    if (sum !== octal(header, 148, 8, file)) throw new FormatError(file, `has a corrupt tar header at byte ${pos} (checksum)`);
    const size = octal(header, 124, 12, file);
    const type = String.fromCharCode(header[156] || 0x30);
    const prefix = field(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    longName = null;
    const body = pos + 512;
    if (body + size > tar.length) throw new FormatError(file, `is truncated inside '${name}'`);
    const data = tar.subarray(body, body + size);
    if (type === 'L') {
      longName = new TextDecoder().decode(data).replace(/\0+$/, '');
    } else if (type === '0' || type === '5') {
      const target = path.resolve(root, name);
      if (target !== root && !target.startsWith(root + path.sep)) throw new FormatError(file, `holds '${name}', which points outside the folder it unpacks into`);
      if (type === '5') fs.mkdirSync(target, { recursive: true });
      else {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, data);
        written.push(path.relative(root, target));
      }
    }
    pos = body + Math.ceil(size / 512) * 512;
  }
  return written;
}
