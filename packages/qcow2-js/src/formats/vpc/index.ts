/**
 * The vpc (VHD) format driver: fixed, dynamic and differencing Virtual PC /
 * Hyper-V / Azure disks, read natively. A differencing disk's parent is
 * found through its parent locators, judged by the backing policy, opened
 * through the chain and checked to be the disk the child was made from (the
 * parent's footer unique id is the one the child records).
 */
import type { BlockSource } from '@guestlens/block';
import type { LayerSpec } from '../../chain/backingName.ts';
import type { ReferencedFile } from '../../chain/backingPolicy.ts';
import { chainError } from '../../errors.ts';
import type { FormatOpenContext, ImageFormatDriver } from '../layer.ts';
import { startsWithCookie, VHD_FOOTER_BYTES } from './footer.ts';
import { readParentNames } from './parentLocator.ts';
import { VpcImage } from './vpcImage.ts';

export { VpcImage } from './vpcImage.ts';

export const vpcFormat: ImageFormatDriver = {
  format: 'vpc',
  /**
   * "conectix": the footer, which dynamic and differencing VHDs copy to
   * offset 0 and every VHD stores in its last 512 bytes. (QEMU probes only
   * the head, so it takes a fixed VHD for raw; guestlens does not.)
   */
  probe: (head, tail) => startsWithCookie(head) || (tail !== undefined && tail.length >= VHD_FOOTER_BYTES && startsWithCookie(tail, tail.length - VHD_FOOTER_BYTES)),
  open: async (file, ctx) => {
    const image = await VpcImage.open(file, { name: ctx.name, cache: ctx.cache, maxReadBytes: ctx.maxReadBytes });
    try {
      if (image.differencing) await attachParent(image, file, ctx);
    } catch (err) {
      await image.close();
      throw err;
    }
    return image;
  },
};

/** The parent a differencing VHD names, without opening it: for the chain opener and the overlay's chain walk. */
export async function vpcParentOf(image: VpcImage, file: BlockSource, spec: LayerSpec): Promise<{ ref: ReferencedFile; spec: LayerSpec } | undefined> {
  if (spec.backing === null) return undefined;
  if (spec.backing) return { ref: { kind: 'backing', image: image.name, name: spec.backing.filename, path: spec.backing.filename, format: spec.backing.format }, spec: spec.backing };
  const dynamic = image.dynamicHeader;
  if (!dynamic) return undefined;
  const names = await readParentNames(file, dynamic.parentLocators, spec.filename, image.name);
  const usable = names.find((n) => n.path !== undefined);
  if (!usable?.path) {
    const stored = names.map((n) => `${n.platform} ${JSON.stringify(n.stored)}`).join(', ');
    throw chainError(
      image.name,
      `is a differencing VHD whose parent (${JSON.stringify(dynamic.parentUnicodeName)}) cannot be located here: ${stored ? `its locators say ${stored}` : 'it has no parent locator'}`,
      'put the parent where a relative locator points, or merge the chain on the host that made it',
    );
  }
  return { ref: { kind: 'backing', image: image.name, name: usable.stored, path: usable.path, format: 'vpc' }, spec: { format: 'vpc', filename: usable.path } };
}

async function attachParent(image: VpcImage, file: BlockSource, ctx: FormatOpenContext): Promise<void> {
  const parent = await vpcParentOf(image, file, ctx.spec);
  if (!parent) return;
  image.parentName = parent.ref.name;
  image.parentPath = parent.ref.path;
  const backing = await ctx.openBacking(parent.ref, parent.spec);
  image.backing = backing;
  const expected = image.dynamicHeader?.parentUniqueId;
  if (backing instanceof VpcImage && expected && !backing.footer.uniqueId.equals(expected)) {
    throw chainError(
      image.name,
      `names parent ${JSON.stringify(parent.ref.name)} (${parent.ref.path}), but that disk's unique id ${backing.footer.uniqueId.toString('hex')} is not the ${expected.toString('hex')} the child was made from`,
      'the parent was replaced or modified since; reading the child over it would show a mix of two disks',
    );
  }
}
