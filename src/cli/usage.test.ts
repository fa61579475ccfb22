// Small things a new user meets first: several overrides on `info`, a config file that is not an
// object, a command group named alone, and the exit code of an output another command wrote first.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, EXIT, writeOut } from './commands.js';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');

function arpix(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('info takes several overrides, as train does', () => {
  const r = arpix('info', '--preset', 'gated-pixelcnn-fmnist', '--model.hiddenChannels=8', '--model.kernelSize=5', '--json');
  assert.equal(r.code, 0, r.stderr);
  const plain = JSON.parse(arpix('info', '--preset', 'gated-pixelcnn-fmnist', '--json').stdout) as { parameters: number };
  assert.ok((JSON.parse(r.stdout) as { parameters: number }).parameters < plain.parameters, 'both overrides were applied (fewer channels)');
  const bad = arpix('info', '--preset', 'gated-pixelcnn-fmnist', '--model.hiddenChannels=8', '--model.noSuchKey=1');
  assert.equal(bad.code, EXIT.usage);
  assert.match(bad.stderr, /^arpix: config: model\.noSuchKey is not a known key/);
});

test('a config file holding null, a list or a number is refused with one line, not an internal error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-usage-'));
  try {
    for (const [text, what] of [['null', 'null'], ['[1, 2]', 'a list'], ['3', 'a number'], ['"x"', 'a string']] as const) {
      const file = join(dir, 'c.json');
      writeFileSync(file, text);
      for (const cmd of [['train', '--config', file], ['info', '--config', file]]) {
        const r = arpix(...cmd);
        assert.equal(r.code, EXIT.usage, `${cmd[0]} ${text}: ${r.stderr}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`holds ${what}; a config is a JSON object`));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('optimiser settings out of range are refused with the config key, before anything is built', () => {
  for (const [flag, re] of [
    ['--train.betas=[0.9,1]', /^arpix: config: train\.betas must be two numbers in \[0, 1\), got \[0\.9,1\]/],
    ['--train.eps=-1', /^arpix: config: train\.eps must be ≥ 0, got -1/],
    ['--train.weightDecay=-0.1', /^arpix: config: train\.weightDecay must be ≥ 0/],
    ['--train.momentum=-1', /^arpix: config: train\.momentum must be ≥ 0/],
  ] as const) {
    const r = arpix('info', '--preset', 'gated-pixelcnn-fmnist', flag);
    assert.equal(r.code, EXIT.usage, `${flag}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('a command group named alone prints its usage and exits 2; an unknown member names the known ones', () => {
  for (const [group, members] of [['data', /list, download, verify/], ['palette', /fit, show/]] as const) {
    const r = arpix(group);
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, new RegExp(`^Usage: arpix ${group} `));
    const stray = arpix(group, 'nonsense');
    assert.equal(stray.code, EXIT.usage);
    assert.match(stray.stderr, new RegExp(`^arpix: unknown command 'arpix ${group} nonsense'; its commands are`));
    assert.match(stray.stderr, members);
  }
});

test('an output that another command wrote meanwhile is a run-time conflict (exit 1), and stays as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-usage-'));
  try {
    const file = join(dir, 'grid.png');
    writeFileSync(file, 'the winner');
    await assert.rejects(writeOut(file, 'the loser', false), (e: unknown) => e instanceof CliError && e.exitCode === EXIT.error && /already exists \(another command wrote it meanwhile\?\)/.test(e.message));
    assert.equal(readFileSync(file, 'utf8'), 'the winner');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
