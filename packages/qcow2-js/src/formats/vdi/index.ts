/** The vdi format driver: VirtualBox disk images, read natively. */
import type { ImageFormatDriver } from '../layer.ts';
import { isVdi } from './header.ts';
import { VdiImage } from './vdiImage.ts';

export { VdiImage } from './vdiImage.ts';

export const vdiFormat: ImageFormatDriver = {
  format: 'vdi',
  probe: (head) => isVdi(head),
  open: (file, ctx) => VdiImage.open(file, { name: ctx.name, cache: ctx.cache, maxReadBytes: ctx.maxReadBytes }),
};
