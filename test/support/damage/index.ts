/**
 * The generated-damage corpus, reader by reader, run through the robustness
 * engine (../robustness.ts): each reader's base is made and checked first
 * (ours must equal the kernel's statfs on it; where this kernel refuses even
 * the undamaged base, no image of that reader is compared with it), then each
 * case is made on a copy of the base and checked.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkImage, kernelStatfs, type Budget, type CaseReport } from '../robustness.ts';
import { copySparse, type DamageCase, type ReaderFactory } from './damage.ts';
import { btrfsCorpus } from './btrfs.ts';
import { ext4Corpus } from './ext4.ts';
import { fat12Corpus, fat16Corpus, fat32Corpus } from './fat.ts';
import { qcow2Corpus, vhdxCorpus, vmdkCorpus } from './formats.ts';
import { ntfsCorpus } from './ntfs.ts';
import { xfsV4Corpus, xfsV5Corpus } from './xfs.ts';

export type { DamageCase } from './damage.ts';

export const READERS: Record<string, ReaderFactory> = {
  ext4: ext4Corpus,
  'xfs-v5': xfsV5Corpus,
  'xfs-v4': xfsV4Corpus,
  btrfs: btrfsCorpus,
  ntfs: ntfsCorpus,
  fat12: fat12Corpus,
  fat16: fat16Corpus,
  fat32: fat32Corpus,
  qcow2: qcow2Corpus,
  vmdk: vmdkCorpus,
  vhdx: vhdxCorpus,
};

export interface GeneratedRun {
  reports: CaseReport[];
  /** Readers that could not be made here, with why. */
  skipped: string[];
}

export interface GeneratedOptions {
  readers?: string[];
  /** Which cases to run (all by default): the in-suite slice samples. */
  select?: (c: DamageCase, index: number, all: DamageCase[]) => boolean;
  /** Only cases whose name contains one of these. */
  only?: string[];
  budget?: Budget;
  log?: (line: string) => void;
}

export async function runGenerated(scratch: string, options: GeneratedOptions = {}): Promise<GeneratedRun> {
  const reports: CaseReport[] = [];
  const skipped: string[] = [];
  for (const reader of options.readers ?? Object.keys(READERS)) {
    const factory = READERS[reader];
    if (!factory) throw new Error(`no such reader in the generated corpus: ${reader} (there are ${Object.keys(READERS).join(', ')})`);
    const dir = join(scratch, reader);
    mkdirSync(dir, { recursive: true });
    try {
      const corpus = await factory(dir);
      if ('unavailable' in corpus) {
        skipped.push(`${reader}: ${corpus.unavailable}`);
        continue;
      }
      let noKernel = corpus.noKernel;
      if (!noKernel) {
        const k = await kernelStatfs(corpus.base, dir);
        if ('refused' in k) noKernel = `this kernel refuses even the undamaged base (${k.refused.slice(0, 120)})`;
      }
      const tag = (rs: CaseReport[], technique: string) => rs.map((r) => ({ ...r, reader, technique }));
      reports.push(...tag(await checkImage(`${reader}/base`, corpus.base, dir, options.budget, { noKernel, format: corpus.format }), 'base'));
      for (const [i, c] of corpus.cases.entries()) {
        if (options.select && !options.select(c, i, corpus.cases)) continue;
        if (options.only?.length && !options.only.some((o) => c.name.includes(o))) continue;
        const image = join(dir, 'damaged.img');
        await copySparse(corpus.base, image);
        await c.damage(image);
        const rs = tag(await checkImage(c.name, image, dir, options.budget, { ls: c.ls ?? false, noKernel, format: corpus.format }), c.technique);
        for (const r of rs) options.log?.(`${r.name} ${r.command}: ${r.klass}${r.failed ? ' FAIL' : ''}`);
        reports.push(...rs);
        rmSync(image, { force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { reports, skipped };
}
