/**
 * One guest the exporter watches (or `df --prometheus` and `check` read
 * once): its Guest kept open across refreshes (overlay, parsed tables,
 * opened filesystems), refresh() each cycle instead of starting over, and
 * the last good facts kept with their time when a read fails or hangs.
 *  - the image deleted: the guest is closed, the error counted;
 *  - the image replaced by another file (a restore, a new VM on the name):
 *    closed and opened again, counted;
 *  - a read that takes longer than the timeout: counted, the old facts stay;
 *    a read still running when the next cycle comes is not started twice;
 *  - anything a read could not do (a filesystem it cannot read, damage): the
 *    device's error, as node_exporter's device_error.
 * An image that stops answering (an NBD or FUSE export whose server hangs)
 * blocks whatever touches it, and the open path probes images with
 * synchronous calls (cheap for df, fatal for a server's event loop). So
 * every read starts with an asynchronous stat and probe of each image, in
 * libuv's thread pool: a hung image hangs there, the timeout fires, and
 * nothing synchronous touches it until the probe has answered again.
 */
import { stat } from 'node:fs/promises';
import { readProbeBytes } from '@guestlens/qcow2-js';
import type { Guest } from '@guestlens/inspect';
import type { BackingPolicyName } from '@guestlens/qcow2-js/policy';
import type { GuestJob } from '../guest/guestJobs.ts';
import { describeError } from '../errors.ts';

export interface FilesystemFacts {
  device: string;
  fstype: string;
  mountpoint: string;
  label: string;
  uuid: string;
  sizeBytes: number;
  freeBytes: number;
  availBytes: number;
  files: number;
  filesFree: number;
  /** The guest mounts it read-only (its fstab says ro). */
  readonly: boolean;
  /** Figures that may differ from the guest's (a hibernated NTFS, an unreplayed log). */
  inexact?: string;
}

export interface DeviceError {
  device: string;
  error: string;
}

export interface ImageHolderFacts {
  image: string;
  holder: string;
  access: 'read-write' | 'read-only';
}

export interface GuestFacts {
  guest: string;
  up: boolean;
  /** Seconds the last read took (also when it failed). */
  readDurationS: number;
  /** When the facts below were read (Unix seconds); undefined before the first success. */
  lastSuccessS?: number;
  filesystems: FilesystemFacts[];
  deviceErrors: DeviceError[];
  holders: ImageHolderFacts[];
  /** Why the last read failed (a whole-guest error), for logs and /probe. */
  error?: string;
}

export type ErrorReason = 'open' | 'read' | 'timeout' | 'busy' | 'deleted' | 'replaced' | 'partial';

export class WatchedGuest {
  private guest: Guest | undefined;
  private identity: (string | undefined)[] | undefined;
  private mounts: Map<string, { mountpoint: string; readonly: boolean }> = new Map();
  private running: Promise<void> | undefined;
  /** Counted over the exporter's life, by reason. */
  readonly errors = new Map<ErrorReason, number>();
  facts: GuestFacts;

  constructor(
    public job: GuestJob,
    private readonly backing: BackingPolicyName | undefined,
  ) {
    this.facts = { guest: job.name, up: false, readDurationS: 0, filesystems: [], deviceErrors: [], holders: [] };
  }

  /** Read the guest again, within `timeoutMs`; never throws (the outcome is in `facts` and `errors`). */
  async refresh(timeoutMs: number): Promise<void> {
    if (this.running) {
      // The last read still hangs (an image that stopped answering): do not pile up another.
      this.count('busy');
      this.facts = { ...this.facts, up: false, error: 'the previous read has not finished' };
      return;
    }
    const started = performance.now();
    const read = this.readOnce().finally(() => {
      this.running = undefined;
    });
    this.running = read;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    try {
      const outcome = await Promise.race([read.then(() => 'done' as const), timedOut]);
      if (outcome === 'timeout') {
        this.count('timeout');
        this.facts = { ...this.facts, up: false, readDurationS: (performance.now() - started) / 1000, error: `no answer within ${timeoutMs / 1000} s` };
      }
    } catch (err) {
      this.facts = { ...this.facts, up: false, readDurationS: (performance.now() - started) / 1000, error: err instanceof Error ? describeError(err) : String(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  private count(reason: ErrorReason): void {
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
  }

  private async readOnce(): Promise<void> {
    const started = performance.now();
    const { openGuest, readGuestDf, inspectGuest } = await import('@guestlens/inspect');
    // A network disk has no file to tell replacement by; QEMU reconnects to the same source.
    const now = await Promise.all(this.job.images.map((i) => (i.network ? `network:${i.path}` : fileIdentity(i.path))));
    const gone = now.findIndex((x) => x === undefined);
    if (gone >= 0) {
      const seen = this.identity !== undefined;
      await this.close();
      this.count(seen ? 'deleted' : 'open');
      throw new ExporterReadError(`${this.job.images[gone].path}: ${seen ? 'the image is gone (deleted or moved)' : 'no such file or directory'}`);
    }
    if (this.guest && this.identity && now.some((x, i) => x !== this.identity![i])) {
      await this.close();
      this.count('replaced');
    }
    // The canary (see above): answers, or hangs here rather than in a synchronous call.
    for (const image of this.job.images) if (!image.network) await readProbeBytes(image.path).catch(() => undefined);
    let fresh = false;
    if (!this.guest) {
      try {
        this.guest = await openGuest(this.job.images, { backing: this.backing });
      } catch (err) {
        this.count('open');
        throw err;
      }
      this.identity = now;
      fresh = true;
    } else {
      try {
        fresh = (await this.guest.refresh()).devicesChanged;
      } catch (err) {
        this.count('read');
        await this.close();
        throw err;
      }
    }
    const guest = this.guest;
    let df;
    try {
      df = await readGuestDf(guest);
    } catch (err) {
      this.count('read');
      await this.close();
      throw err;
    }
    if (fresh) {
      // Mount points change only with the devices (the fstab is read again then).
      const os = (await inspectGuest(guest, { applications: false }).catch(() => undefined))?.operatingSystems[0];
      this.mounts = new Map(os?.mountpoints.map((m) => [m.device, { mountpoint: m.mountpoint, readonly: m.fstab?.options.includes('ro') ?? false }]) ?? []);
    }
    if (df.problems.length) this.count('partial');
    this.facts = {
      guest: this.job.name,
      up: true,
      readDurationS: (performance.now() - started) / 1000,
      lastSuccessS: Date.now() / 1000,
      filesystems: df.rows.map((r) => {
        const s = r.statfs;
        const m = this.mounts.get(r.device);
        return {
          device: r.device,
          fstype: r.fstype,
          mountpoint: m?.mountpoint ?? '',
          label: r.label ?? '',
          uuid: r.uuid ?? '',
          sizeBytes: s.blocks * s.bsize,
          freeBytes: s.bfree * s.bsize,
          availBytes: s.bavail * s.bsize,
          files: s.files,
          filesFree: s.ffree,
          readonly: m?.readonly ?? false,
          ...(s.exact ? {} : { inexact: s.reason ?? 'inexact' }),
        };
      }),
      deviceErrors: df.problems.map((p) => ({ device: p.device, error: p.message })),
      holders: await imageHolders(this.job),
    };
  }

  async close(): Promise<void> {
    const g = this.guest;
    this.guest = undefined;
    this.identity = undefined;
    await g?.close().catch(() => undefined);
  }
}

class ExporterReadError extends Error {
  readonly userFacing = true;
}

async function fileIdentity(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Who holds each image, from QEMU's locks (a VM running on it holds it read-write). */
async function imageHolders(job: GuestJob): Promise<ImageHolderFacts[]> {
  const out: ImageHolderFacts[] = [];
  let locking: typeof import('@guestlens/locking');
  try {
    locking = await import('@guestlens/locking');
  } catch {
    return out;
  }
  for (const image of job.images) {
    if (image.network) continue; // QEMU's locks are on files; a network server has its own.
    try {
      const r = await locking.probe(image.path, { nonBlocking: true });
      for (const h of r.holders) out.push({ image: image.path, holder: locking.holderLabel(h), access: h.uses.includes('write') ? 'read-write' : 'read-only' });
    } catch (err) {
      // An image we cannot probe (a block device, no permission): no holder known.
      if (process.env.GUESTLENS_DEBUG) process.stderr.write(`guestlens: ${image.path}: lock probe: ${(err as Error).message}\n`);
    }
  }
  return out;
}
