/** Fresh small images for the locking tests, made with qemu-img. */
import { join } from 'node:path';
import { sh } from '../../../../test/support/run.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';

export type Format = 'qcow2' | 'raw';

export async function makeImage(format: Format, name = `disk.${format}`, dir = scratchDir('locking')): Promise<string> {
  const path = join(dir, name);
  await sh('qemu-img', ['create', '-q', '-f', format, path, '16M']);
  return path;
}

/** A qcow2 overlay over `base` (absolute backing name, explicit format). */
export async function makeOverlay(base: string, baseFormat: Format, name = 'overlay.qcow2', dir = scratchDir('locking')): Promise<string> {
  const path = join(dir, name);
  await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, path]);
  return path;
}
