import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { encode as encodePng } from 'fast-png';
import type { DatasetSpec } from './registry.js';
import {
  DatasetUnavailableError, downloadDataset, formatDatasetList, listDatasets, loadDataset, locateDataset, searchPath, verifyDataset,
} from './sources.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arpix-sources-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const haveFashion = fs.existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz');
const MNIST_NAMES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];

function idx(type: number, dims: number[], values: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, values]);
}

/** A complete tiny MNIST-style folder: n train and m test images of 4×4, labels i mod 10. */
function writeIdxFolder(dir: string, n = 12, m = 5): void {
  fs.mkdirSync(dir, { recursive: true });
  const img = (k: number) => zlib.gzipSync(idx(8, [k, 4, 4], Uint8Array.from({ length: k * 16 }, (_, i) => i % 256)));
  const lbl = (k: number) => zlib.gzipSync(idx(8, [k], Uint8Array.from({ length: k }, (_, i) => i % 10)));
  fs.writeFileSync(path.join(dir, MNIST_NAMES[0]), img(n));
  fs.writeFileSync(path.join(dir, MNIST_NAMES[1]), lbl(n));
  fs.writeFileSync(path.join(dir, MNIST_NAMES[2]), img(m));
  fs.writeFileSync(path.join(dir, MNIST_NAMES[3]), lbl(m));
}

/** A ustar archive of the given files (enough for our reader and for real tar). */
function tar(files: Record<string, Uint8Array>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, data] of Object.entries(files)) {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0' + '00', 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, Buffer.from(data), Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('the search path', () => {
  const explicit = path.join(tmp, 'explicit');
  const fromEnv = path.join(tmp, 'env');
  const cache = path.join(tmp, 'cache');
  writeIdxFolder(path.join(explicit, 'kmnist'));
  writeIdxFolder(fromEnv); // files directly in the folder also count
  writeIdxFolder(path.join(cache, 'datasets', 'kmnist'));

  test('an explicit folder comes first, then ARPIX_DATA, then system folders, then the cache', () => {
    const env = { ARPIX_DATA: fromEnv, ARPIX_CACHE: cache };
    assert.deepEqual(locateDataset('kmnist', { dir: explicit, env, dpkg: false }), { name: 'kmnist', dir: path.join(explicit, 'kmnist'), source: 'explicit' });
    assert.deepEqual(locateDataset('kmnist', { env, dpkg: false }), { name: 'kmnist', dir: fromEnv, source: 'ARPIX_DATA' });
    const system = path.join(tmp, 'usr-share');
    writeIdxFolder(system);
    assert.deepEqual(locateDataset('kmnist', { env: { ARPIX_CACHE: cache }, systemDirs: [system], dpkg: false })?.source, 'system');
    assert.deepEqual(locateDataset('kmnist', { env: { ARPIX_CACHE: cache }, dpkg: false }), { name: 'kmnist', dir: path.join(cache, 'datasets', 'kmnist'), source: 'cache' });
  });

  test('a folder missing one file does not count', () => {
    const partial = path.join(tmp, 'partial');
    writeIdxFolder(partial);
    fs.rmSync(path.join(partial, MNIST_NAMES[3]));
    assert.equal(locateDataset('kmnist', { dir: partial, env: { ARPIX_CACHE: path.join(tmp, 'nocache') }, dpkg: false }), null);
  });

  test('names have aliases; unknown names are refused with the list of known ones', () => {
    assert.equal(searchPath('Fashion_MNIST', { env: {} }).at(-1)!.dir.endsWith('fashion-mnist'), true);
    assert.throws(() => searchPath('imagenet'), /'imagenet' is not a known dataset \(known: fashion-mnist, mnist/);
  });

  test('Fashion-MNIST is found in the Debian package folder', { skip: !haveFashion && 'dataset-fashion-mnist is not installed' }, () => {
    const found = locateDataset('fashion-mnist', { env: { ARPIX_CACHE: path.join(tmp, 'nocache') } });
    assert.equal(found?.source, 'system');
    assert.ok(found!.dir.includes('fashion-mnist'));
  });

  test('verifyDataset accepts Debian\'s recompressed Fashion-MNIST by its content hash', { skip: !haveFashion && 'dataset-fashion-mnist is not installed' }, async () => {
    const v = await verifyDataset('fashion-mnist', { env: {} });
    assert.equal(v.ok, true, v.lines.join('\n'));
  });

  test('verifyDataset reports a file whose content changed', async () => {
    const dir = path.join(tmp, 'tampered');
    writeIdxFolder(path.join(dir, 'fashion-mnist'));
    const v = await verifyDataset('fashion-mnist', { dir, env: {} });
    assert.equal(v.ok, false);
    assert.match(v.lines[0], /SHA-256 mismatch/);
  });

  test('a missing dataset says where it looked and how to get it', async () => {
    const env = { ARPIX_CACHE: path.join(tmp, 'nocache') };
    await assert.rejects(loadDataset('cifar100', { env, dpkg: false }), (e: unknown) => {
      assert.ok(e instanceof DatasetUnavailableError);
      assert.match(e.message, /cifar100 is not on this machine\. Searched:/);
      assert.match(e.message, /nocache.datasets.cifar100 \(cache\)/);
      assert.match(e.message, /arpix data download cifar100/);
      return true;
    });
  });

  test('listDatasets shows what is here and where', () => {
    const list = listDatasets({ dir: explicit, env: { ARPIX_CACHE: path.join(tmp, 'nocache') }, dpkg: false });
    const k = list.find((l) => l.name === 'kmnist')!;
    assert.equal(k.available, true);
    assert.equal(k.source, 'explicit');
    const c = list.find((l) => l.name === 'cifar10')!;
    assert.equal(c.available, false);
    assert.equal(c.downloadable, true);
    assert.match(c.hint!, /arpix data download cifar10/);
    const text = formatDatasetList(list);
    assert.match(text, /\* kmnist .*explicit/);
    assert.match(text, / {2}cifar10 .*not here — arpix data download cifar10/);
  });
});

describe('downloadDataset', () => {
  const served = new Map<string, Uint8Array>();
  let server: http.Server;
  let base = '';
  let closedBase = '';

  before(async () => {
    server = http.createServer((req, res) => {
      const body = served.get(req.url ?? '');
      if (!body) { res.writeHead(404).end('not found'); return; }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/`;
    // A port that was just free: nothing listens there, so connecting is refused.
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedBase = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/`;
    await new Promise<void>((r) => probe.close(() => r()));
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('fetches, verifies and renames each file into place; a second run reuses them', async () => {
    const src = path.join(tmp, 'served-tiny');
    writeIdxFolder(src, 20, 6);
    const files = MNIST_NAMES.map((name) => {
      const bytes = fs.readFileSync(path.join(src, name));
      served.set(`/files/${name}`, bytes);
      return { name, bytes: bytes.length, sha256: sha(bytes) };
    });
    const spec: DatasetSpec = { name: 'tiny', title: 'tiny', format: 'idx', homepage: '', mirrors: [], files, numClasses: 10, systemDirs: [] };
    const dir = path.join(tmp, 'dl');
    const progress: number[] = [];
    const r = await downloadDataset(spec, { dir, baseUrl: base, env: {}, onProgress: (_f, got) => progress.push(got) });
    assert.equal(r.dir, path.join(dir, 'tiny'));
    assert.deepEqual(r.files.map((f) => f.reused), [false, false, false, false]);
    assert.deepEqual(fs.readdirSync(r.dir).sort(), [...MNIST_NAMES].sort()); // no temporary files left
    assert.ok(progress.length >= 4);
    const ds = await loadDataset(r.dir, { split: 'test' });
    assert.deepEqual(ds.shape, [6, 4, 4, 1]);
    const again = await downloadDataset(spec, { dir, baseUrl: base, env: {} });
    assert.deepEqual(again.files.map((f) => f.reused), [true, true, true, true]);
  });

  test('a file whose SHA-256 differs from the pinned one is refused and not kept', async () => {
    served.set('/files/train-images-idx3-ubyte.gz', zlib.gzipSync(Buffer.from('not fashion-mnist')));
    const dir = path.join(tmp, 'dl-mismatch');
    await assert.rejects(downloadDataset('fashion-mnist', { dir, baseUrl: base, env: {} }), (e: unknown) => {
      assert.ok(e instanceof DatasetUnavailableError);
      assert.match(e.message, /train-images-idx3-ubyte\.gz: SHA-256 mismatch: expected 3aede38d.*, got [0-9a-f]{64}/);
      assert.match(e.message, /the file was not kept/);
      assert.match(e.message, /Missing: train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz/);
      assert.match(e.message, /apt-get install dataset-fashion-mnist/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'fashion-mnist')), []);
  });

  test('offline: the error says the machine seems offline and how else to get the data', async () => {
    await assert.rejects(downloadDataset('fashion-mnist', { dir: path.join(tmp, 'dl-off'), baseUrl: closedBase, env: {} }), (e: unknown) => {
      assert.ok(e instanceof DatasetUnavailableError);
      assert.match(e.message, /cannot download fashion-mnist: this machine seems to be offline/);
      assert.match(e.message, /connection failed \(ECONNREFUSED/);
      assert.match(e.message, /apt-get install dataset-fashion-mnist/);
      assert.match(e.message, /copy train-images-idx3-ubyte\.gz, .* into /);
      return true;
    });
  });

  test('an HTTP error names the URL and status', async () => {
    await assert.rejects(downloadDataset('mnist', { dir: path.join(tmp, 'dl-404'), baseUrl: `${base}nothing/`, env: {} }), /nothing\/train-images-idx3-ubyte\.gz: HTTP 404/);
  });

  test('datasets without a pinned download say how to get them by hand', async () => {
    await assert.rejects(downloadDataset('emnist-letters', { env: {} }), /no pinned download in arpix[\s\S]*gzip\.zip/);
  });

  test('a CIFAR archive is verified, unpacked and loads; the archive is not kept', async () => {
    const record = (label: number) => { const r = new Uint8Array(3073); r[0] = label; r.fill(label * 10, 1); return r; };
    const recs = (labels: number[]) => Buffer.concat(labels.map(record));
    const entries: Record<string, Uint8Array> = { 'cifar-10-batches-bin/test_batch.bin': recs([1, 2]), 'cifar-10-batches-bin/batches.meta.txt': Buffer.from('a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n') };
    for (let b = 1; b <= 5; b++) entries[`cifar-10-batches-bin/data_batch_${b}.bin`] = recs([b, 0, 9]);
    const archive = zlib.gzipSync(tar(entries));
    served.set('/files/cifar-10-binary.tar.gz', archive);
    const spec: DatasetSpec = { name: 'cifar10', title: 'c', format: 'cifar10', homepage: '', mirrors: [], numClasses: 10, systemDirs: [], files: [{ name: 'cifar-10-binary.tar.gz', bytes: archive.length, sha256: sha(archive) }] };
    const dir = path.join(tmp, 'dl-cifar');
    const r = await downloadDataset(spec, { dir, baseUrl: base, env: {} });
    assert.deepEqual(fs.readdirSync(r.dir), ['cifar-10-batches-bin']);
    const train = await loadDataset('cifar10', { dir, env: {}, dpkg: false });
    assert.deepEqual(train.shape, [15, 32, 32, 3]);
    assert.deepEqual([...train.labels!].slice(0, 6), [1, 0, 9, 2, 0, 9]);
    assert.equal(train.images[3072], 0);
    assert.equal(train.classNames![1], 'b');
    const again = await downloadDataset(spec, { dir, baseUrl: base, env: {} });
    assert.equal(again.files[0].reused, true);
  });
});

describe('loadDataset from a path', () => {
  test('a folder of IDX files has train, test and validation splits', async () => {
    const dir = path.join(tmp, 'my-idx');
    writeIdxFolder(dir, 30, 7);
    assert.deepEqual((await loadDataset(dir)).shape, [30, 4, 4, 1]);
    assert.deepEqual((await loadDataset(dir, { split: 'test' })).shape, [7, 4, 4, 1]);
    const v = await loadDataset(dir, { split: 'validation', validation: { size: 5, seed: 1 } });
    assert.deepEqual(v.shape, [5, 4, 4, 1]);
    assert.equal(v.name, 'my-idx');
  });

  test('a folder of images loads with the folder options; it has no test split', async () => {
    const dir = path.join(tmp, 'pngs');
    fs.mkdirSync(dir);
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(dir, `${i}.png`), encodePng({ width: 10, height: 10, data: new Uint8Array(100).fill(i), channels: 1 }));
    const ds = await loadDataset(dir, { folder: { size: 5, channels: 1, workers: 0 } });
    assert.deepEqual(ds.shape, [3, 5, 5, 1]);
    await assert.rejects(loadDataset(dir, { split: 'test' }), /no published test split/);
  });

  test('a path that is neither a dataset nor a file is refused', async () => {
    await assert.rejects(loadDataset(path.join(tmp, 'no-such-thing')), /neither a known dataset .* nor an existing file or folder/);
  });
});
