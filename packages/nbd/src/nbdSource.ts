/**
 * A BlockSource over an NBD export: reads go to the server, extents come
 * from base:allocation block status (a hole that reads as zeros is 'zero',
 * everything else 'data'; all 'data' when the server has no block status).
 */
import { checkRange, type BlockSource, type Extent } from '@guestlens/block';
import { NbdClient, STATE_HOLE, STATE_ZERO, type BlockStatusExtent, type NbdConnectOptions, type NbdExportInfo } from './nbdClient.ts';

export interface NbdSourceOptions extends NbdConnectOptions {
  /** Runs after the connection is closed by close() (openWithQemu stops its daemon here). */
  onClose?: () => Promise<void>;
}

/** How many block-status descriptors are kept for the next extent() calls. */
const STATUS_CACHE_DESCRIPTORS = 4096;

export class NbdSource implements BlockSource {
  readonly size: number;
  readonly name: string;
  private cached: BlockStatusExtent[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    readonly client: NbdClient,
    private readonly onClose?: () => Promise<void>,
    name = client.name,
  ) {
    this.size = client.info.size;
    this.name = name;
  }

  /** Connect to an NBD server and wrap the export. */
  static async connect(options: NbdSourceOptions): Promise<NbdSource> {
    const client = await NbdClient.connect(options);
    return new NbdSource(client, options.onClose, client.name);
  }

  get info(): NbdExportInfo {
    return this.client.info;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    return this.client.read(offset, length);
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    await this.client.readInto(target, targetOffset, offset, length);
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    if (length === 0) return { offset, length: 0, kind: 'data' };
    if (!this.client.info.baseAllocation) return { offset, length, kind: 'data' };
    let i = this.cached.findIndex((e) => e.offset <= offset && offset < e.offset + e.length);
    if (i < 0) {
      this.cached = (await this.client.blockStatus(offset, length)).slice(0, STATUS_CACHE_DESCRIPTORS);
      i = 0;
    }
    // The longest run of one kind the cached descriptors show, from `offset`, within `length`.
    const end = offset + length;
    const kind = kindOf(this.cached[i].flags);
    let pos = offset;
    for (; i < this.cached.length && pos < end; i++) {
      const e = this.cached[i];
      if (e.offset > pos || kindOf(e.flags) !== kind) break;
      pos = Math.min(e.offset + e.length, end);
    }
    return { offset, length: pos - offset, kind };
  }

  /** The server reads the image afresh on every request; only the block-status cache goes. */
  async refresh(): Promise<void> {
    this.cached = [];
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.cached = [];
      try {
        await this.client.close();
      } finally {
        await this.onClose?.();
      }
    })();
    return this.closing;
  }
}

function kindOf(flags: number): 'zero' | 'data' {
  return (flags & STATE_HOLE) !== 0 && (flags & STATE_ZERO) !== 0 ? 'zero' : 'data';
}
