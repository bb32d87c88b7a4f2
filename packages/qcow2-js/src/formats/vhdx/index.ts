/**
 * The vhdx format driver: Hyper-V disks, dynamic, fixed and differencing,
 * read natively. A differencing disk's parent is found through its parent
 * locator, judged by the backing policy, opened through the chain and
 * checked to be the disk the child was made from (its DataWriteGuid is the
 * locator's parent_linkage).
 */
import type { LayerSpec } from '../../chain/backingName.ts';
import type { ReferencedFile } from '../../chain/backingPolicy.ts';
import { chainError } from '../../errors.ts';
import { guidString } from '../common/guid.ts';
import type { FormatOpenContext, ImageFormatDriver } from '../layer.ts';
import { FILE_SIGNATURE } from './layout.ts';
import { parentPath, parseParentLocator } from './parentLocator.ts';
import { VhdxImage } from './vhdxImage.ts';

export { VhdxImage } from './vhdxImage.ts';

export const vhdxFormat: ImageFormatDriver = {
  format: 'vhdx',
  probe: (head) => head.length >= 8 && head.toString('latin1', 0, 8) === FILE_SIGNATURE,
  open: async (file, ctx) => {
    const image = await VhdxImage.open(file, { name: ctx.name, cache: ctx.cache, maxReadBytes: ctx.maxReadBytes });
    try {
      if (image.differencing) await attachParent(image, ctx);
    } catch (err) {
      await image.close();
      throw err;
    }
    return image;
  },
};

/** The parent a differencing VHDX names, without opening it. */
export function vhdxParentOf(image: VhdxImage, spec: LayerSpec): { ref: ReferencedFile; spec: LayerSpec; linkage: string[] } | undefined {
  if (spec.backing === null) return undefined;
  if (spec.backing) return { ref: { kind: 'backing', image: image.name, name: spec.backing.filename, path: spec.backing.filename, format: spec.backing.format }, spec: spec.backing, linkage: [] };
  const loc = image.metadata.parentLocator;
  if (!loc) return undefined;
  const locator = parseParentLocator(loc.bytes, loc.at, image.name);
  const { stored, path } = parentPath(locator, spec.filename);
  if (!path) {
    const keys = [...locator.entries].map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
    throw chainError(image.name, `is a differencing VHDX whose parent cannot be located here (${keys || 'its locator is empty'})`, 'put the parent where its relative_path points');
  }
  const linkage = [locator.linkage, locator.linkage2].filter((l): l is string => l !== undefined);
  return { ref: { kind: 'backing', image: image.name, name: stored, path, format: 'vhdx' }, spec: { format: 'vhdx', filename: path }, linkage };
}

async function attachParent(image: VhdxImage, ctx: FormatOpenContext): Promise<void> {
  const parent = vhdxParentOf(image, ctx.spec);
  if (!parent) return;
  image.parentName = parent.ref.name;
  image.parentPath = parent.ref.path;
  const backing = await ctx.openBacking(parent.ref, parent.spec);
  image.backing = backing;
  if (backing instanceof VhdxImage && parent.linkage.length) {
    const actual = guidString(backing.header.dataWriteGuid);
    if (!parent.linkage.includes(actual)) {
      throw chainError(
        image.name,
        `names parent ${JSON.stringify(parent.ref.name)} (${parent.ref.path}), but that disk's DataWriteGuid ${actual} is not the ${parent.linkage.join(' or ')} the child was made from`,
        'the parent was written to since the child was made; reading the child over it would show a mix of two disks',
      );
    }
  }
}
