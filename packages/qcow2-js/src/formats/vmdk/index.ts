/**
 * The vmdk format driver: descriptor files (separate or embedded) and their
 * flat and hosted sparse extents (monolithicSparse, monolithicFlat,
 * twoGbMaxExtentSparse, twoGbMaxExtentFlat, streamOptimized), read
 * natively; every extent file is judged by the backing policy before it is
 * opened, and parentFileNameHint (a snapshot's delta link) is the backing
 * file, judged and opened through the chain like any other.
 */
import { resolveBackingName, type LayerSpec } from '../../chain/backingName.ts';
import type { ReferencedFile } from '../../chain/backingPolicy.ts';
import type { ImageFormatDriver } from '../layer.ts';
import { looksLikeVmdk } from './descriptor.ts';
import { VmdkImage } from './vmdkImage.ts';

export { VmdkImage } from './vmdkImage.ts';

export const vmdkFormat: ImageFormatDriver = {
  format: 'vmdk',
  probe: (head) => looksLikeVmdk(head),
  open: async (file, ctx) => {
    const image = await VmdkImage.open(file, { name: ctx.name, cache: ctx.cache, maxReadBytes: ctx.maxReadBytes, opener: ctx, path: ctx.spec.filename });
    try {
      const parent = vmdkParentOf(image.layout.parentHint, ctx.spec, image.name);
      if (parent) {
        image.parentName = parent.ref.name;
        const backing = await ctx.openBacking(parent.ref, parent.spec);
        image.backing = backing;
        // QEMU reads the parent only when its CID is the parentCID recorded here (and it is a VMDK at all).
        image.cidValid = backing instanceof VmdkImage && backing.cid === image.layout.parentCid;
      }
    } catch (err) {
      await image.close();
      throw err;
    }
    return image;
  },
};

/** The parent a VMDK names (parentFileNameHint, always a vmdk), or the one a json: spec gives instead. */
export function vmdkParentOf(hint: string | undefined, spec: LayerSpec, image: string): { ref: ReferencedFile; spec: LayerSpec } | undefined {
  let child: LayerSpec | null | undefined = spec.backing;
  if (child === undefined) child = hint === undefined ? null : resolveBackingName(hint, spec.filename, 'vmdk', image);
  if (child === null) return undefined;
  return { ref: { kind: 'backing', image, name: hint ?? child.filename, path: child.filename, format: child.format }, spec: child };
}
