// `arpix serve` when it cannot listen, as real processes: an address this machine does not have,
// a host name nobody knows, a port in use, a privileged port. Each exits 1 with one line on stderr
// that names the cause — none is left running (each is killed past 60 s, which fails the test).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');

/** Runs `arpix serve` on an empty folder of runs; resolves with its exit code and output, or code null if killed. */
function serve(args: readonly string[], uid?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const root = mkdtempSync(join(tmpdir(), 'arpix-serve-cli-'));
  chmodSync(root, 0o755);
  const child = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(uid === undefined ? {} : { uid, gid: uid }) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(kill);
      rmSync(root, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}

async function refused(args: readonly string[], pattern: RegExp, uid?: number): Promise<void> {
  const r = await serve(args, uid);
  assert.equal(r.code, 1, `exit code (null: still running after 60 s); stderr: ${r.stderr}`);
  assert.equal(r.stdout, '', 'it never said it was serving');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
}

test('an address this machine does not have (EADDRNOTAVAIL)', async () => {
  // 203.0.113.0/24 is TEST-NET-3, reserved for documentation: never a local address.
  await refused(['--host', '203.0.113.9', '--port', '0'], /^arpix: cannot bind 203\.0\.113\.9: no such address on this machine; use --host 127\.0\.0\.1/);
});

test('a host name that does not resolve (ENOTFOUND, or EAI_AGAIN without a name server)', async () => {
  // .invalid is reserved never to resolve (RFC 2606).
  await refused(['--host', 'no-such-host.invalid', '--port', '0'], /^arpix: cannot bind no-such-host\.invalid: (no host of that name is known \((ENOTFOUND|EAI_NONAME|EAI_FAIL)\)|the name could not be resolved now \(EAI_AGAIN:.*\)); use --host 127\.0\.0\.1/);
});

test('a port in use (EADDRINUSE)', async () => {
  const other = createServer();
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  const { port } = other.address() as AddressInfo;
  try {
    await refused(['--port', String(port)], new RegExp(`^arpix: port ${port} on 127\\.0\\.0\\.1 is in use; choose another with --port`));
  } finally {
    other.close();
  }
});

const unprivilegedFrom = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  } catch {
    return 1024;
  }
})();
const root = process.getuid?.() === 0;
test('a privileged port without privileges (EACCES)', { skip: unprivilegedFrom <= 80 ? 'this machine lets anyone listen on port 80' : process.platform === 'win32' ? 'no privileged ports' : false }, async () => {
  // As root, the command runs as the unprivileged user nobody (65534).
  await refused(['--port', '80'], /^arpix: cannot listen on port 80 of 127\.0\.0\.1: permission denied \(EACCES; ports below 1024 need privileges\); choose --port 1024 or above/, root ? 65534 : undefined);
});
