#!/usr/bin/env node
// Entry point. Runs the bundled CLI, rebuilding it first when any TypeScript
// source is newer than the bundle (so a checkout never runs stale code).
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const cliRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(cliRoot, '..');
const bundle = join(cliRoot, 'dist', 'guestlens.mjs');

function newestSource(dir, newest = 0) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = newestSource(p, newest);
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function stale() {
  if (!existsSync(bundle)) return true;
  const built = statSync(bundle).mtimeMs;
  const roots = [join(cliRoot, 'src'), ...readdirSync(join(repoRoot, 'packages')).map((p) => join(repoRoot, 'packages', p, 'src'))];
  return roots.some((r) => existsSync(r) && newestSource(r) > built);
}

if (stale()) {
  const { buildCli } = await import(pathToFileURL(join(cliRoot, 'build.mjs')).href);
  await buildCli();
}
const { main } = await import(pathToFileURL(bundle).href);
await main(process.argv.slice(2));
