/**
 * `pnpm bench [NAME...]`: runs every bench/*.bench.ts (or the named ones) and
 * prints each figure beside its peer's with the ratio.
 * A benchmark module exports `title` and `run(): Promise<BenchRow[]>`.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { printRows, type BenchRow } from './lib.ts';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.bench\.ts$/, '')));
if (files.length === 0) {
  console.error(`no benchmark matches ${wanted.join(' ')}; have: ${readdirSync(here).filter((f) => f.endsWith('.bench.ts')).join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { title: string; run: () => Promise<BenchRow[]> };
  try {
    printRows(mod.title, await mod.run());
  } catch (err) {
    failed = true;
    console.error(`${f}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
process.exit(failed ? 1 : 0);
