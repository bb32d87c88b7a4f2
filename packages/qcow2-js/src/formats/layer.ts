/**
 * What a format driver is and what it makes: go-qcow2reader's `Types` table
 * entry (probe + open) and its `Image` (a block source that knows whether it
 * is readable and what it names). Adding a format is one folder beside this
 * file and one line in `table.ts`; nothing above switches on a format.
 */
import type { BlockSource } from '@guestlens/block';
import type { ReferencedFile } from '../chain/backingPolicy.ts';
import type { LayerSpec } from '../chain/backingName.ts';
import type { ImageInfo } from '../chain/imageInfo.ts';
import type { ChainCache } from '../metadataCache.ts';

/** One layer of an opened chain: a format driver over one file. */
export interface ImageLayer extends BlockSource {
  /** QEMU's driver name for the format: raw, qcow2, vmdk, ... */
  readonly format: string;
  /** The file the layer's structures live in. */
  readonly file: BlockSource;
  /** False for a format guestlens recognises but cannot read: reads fail with `unreadableReason`. */
  readonly readable: boolean;
  readonly unreadableReason?: string;
  /** The layer below (a backing file), when there is one. */
  readonly backing?: ImageLayer;
  /** What `image info` says of this layer (qemu-img info's fields). */
  describe(): ImageInfo;
}

export interface FormatOpenContext {
  /** How errors name this layer (the path it was opened by). */
  name: string;
  /** What asked for this layer: a filename, options from a json: name. */
  spec: LayerSpec;
  cache: ChainCache;
  maxReadBytes: number;
  /** Judge (by the backing policy), open and return the layer a file this layer names; `spec` says how to open it. */
  openBacking(ref: ReferencedFile, spec: LayerSpec): Promise<ImageLayer>;
  /** Judge and open a data file this layer names (qcow2's external data file). */
  openDataFile(ref: ReferencedFile): Promise<BlockSource>;
  /** Judge (by the backing policy, kind 'extent') and open a file a descriptor names as an extent (VMDK). */
  openExtent(ref: ReferencedFile): Promise<BlockSource>;
}

export interface ImageFormatDriver {
  /** QEMU's driver name. */
  readonly format: string;
  /**
   * Whether the file is this format, by magic only (QEMU's bdrv_probe):
   * `head` is the first PROBE_HEAD_BYTES bytes (or the whole file when it
   * is shorter), `tail` the last PROBE_TAIL_BYTES (undefined for block
   * devices), `filename` the path (dmg is recognised by name, as QEMU does).
   */
  probe(head: Buffer, tail: Buffer | undefined, filename: string): boolean;
  /** Open a layer over `file`; absent when guestlens recognises the format but has no reader (yet). */
  open?(file: BlockSource, ctx: FormatOpenContext): Promise<ImageLayer>;
  /** Why a format without `open` cannot be read, and what the user can do. */
  readonly unreadable?: string;
}
