/**
 * One guest file followed by `guestlens tail`: where we are in it (device,
 * inode, offset), and what each poll found, as tail -F sees it:
 *  - a file that does not exist (yet): wait for it, then print it from its start;
 *  - rotation (another inode at the path): read the old file to its end when
 *    it is still there (renamed: log -> log.1), then the new one from its start;
 *  - truncation (smaller than what we read): from the start of what is there,
 *    as GNU tail does (copytruncate and `> log` truncate to zero, so nothing
 *    is printed twice and nothing written after the truncation is lost);
 *  - a partial last line: held until its newline arrives, or given out after
 *    two polls without one;
 *  - bytes that read as zeros up to the end of the file or of a block: the
 *    size on disk can run ahead of the data. ext4 raises the on-disk size at
 *    once for an append inside an already allocated block, and journals it
 *    at its next commit (5 s), while the block's data waits for writeback
 *    (30 s): the guest's own kernel, after a crash, would show those zeros
 *    too. They are read again each poll until the data is there, for up to
 *    ZERO_WAIT_MS, and only then given out as they are (said once), so a
 *    line is never printed as zeros and then lost.
 * Each change is said once, through `notice`. A read that fails retryably
 * (an image caught mid-write) leaves the state as it was: the next poll, after
 * the guest's refresh, reads the same bytes again; lines are given out only
 * after the read that holds them succeeded, so none is doubled or skipped.
 */
import type { FileTree, Filesystem } from '@guestlens/inspect';
import { GuestlensError, isRetryable } from '@guestlens/block';
import { LineSplitter, lastLinesStart, lineStart, type Line } from './lines.ts';

export interface TailSink {
  lines(file: TailedFile, lines: Line[]): void;
  notice(file: TailedFile, message: string): void;
}

export interface TailStart {
  /** The last N lines (default 10). */
  lines?: number;
  /** The last N bytes instead. */
  bytes?: number;
  /** -n +K: from line K (1-based). */
  fromLine?: number;
  /** -c +K: from byte K (1-based). */
  fromByte?: number;
}

interface Position {
  fs: Filesystem;
  device: string;
  ino: number;
  /** Next byte to read. */
  offset: number;
}

/** Bytes read per call (the poll reads what is new in pieces of this size: memory stays flat). */
const CHUNK = 1024 * 1024;
/** Polls a partial line is held before it is given out as it is. */
const HOLD_POLLS = 2;
/** How long bytes that read as zeros are read again before they count as the file's content (writeback's 30 s, its 5 s period and a margin). */
const ZERO_WAIT_MS = 60_000;
/** Runs of zeros ending at a multiple of this are suspects (every filesystem block is a multiple of it). */
const SECTOR = 512;

export class TailedFile {
  private at: Position | undefined;
  private readonly splitter = new LineSplitter();
  private quietPolls = 0;
  /** Where zeros are being waited for, and since when. */
  private zeros: { offset: number; since: number } | undefined;
  /** What was said about a missing path, so it is said once until the file appears. */
  private missingSaid: string | undefined;

  constructor(
    /** The path as the user gave it (output names the file by it). */
    readonly path: string,
    private readonly sink: TailSink,
    private readonly clock: { zeroWaitMs: number; now(): number } = { zeroWaitMs: ZERO_WAIT_MS, now: Date.now },
  ) {}

  /** The inode followed now (for --json), or undefined while the path has no file. */
  get inode(): number | undefined {
    return this.at?.ino;
  }

  /**
   * The first read: the last lines (or bytes) of the file. A missing file is
   * an error unless following (then it is waited for).
   */
  async start(tree: FileTree, how: TailStart, follow: boolean): Promise<void> {
    const r = await this.lookup(tree, follow);
    if (!r) return;
    const size = r.stat.size;
    const read = (o: number, n: number) => r.fs.read(r.ino, o, n);
    const from =
      how.fromByte !== undefined ? Math.min(size, Math.max(0, how.fromByte - 1))
      : how.fromLine !== undefined ? await lineStart(read, size, how.fromLine)
      : how.bytes !== undefined ? Math.max(0, size - how.bytes)
      : await lastLinesStart(read, size, how.lines ?? 10);
    this.at = { fs: r.fs, device: r.device, ino: r.ino, offset: from };
    await this.readNew(size, false);
    if (!follow) this.flushPartial();
  }

  /** One poll, after the guest was refreshed. Throws only what is not the file's own change (a retryable error is the caller's to retry). */
  async poll(tree: FileTree): Promise<void> {
    const r = await this.lookup(tree, true);
    if (!r) return;
    const was = this.at;
    if (!was) {
      // Appeared (after missing, or after a rotation whose new file came late).
      this.at = { fs: r.fs, device: r.device, ino: r.ino, offset: 0 };
      this.splitter.reset();
    } else if (was.device !== r.device || was.ino !== r.ino || was.fs !== r.fs) {
      const rest = await this.finishOld(was);
      this.sink.notice(this, `rotated: a new file is at the path (inode ${r.ino}, was ${was.ino}); ${rest}; following the new one from its start`);
      this.at = { fs: r.fs, device: r.device, ino: r.ino, offset: 0 };
    } else if (r.stat.size < was.offset) {
      this.flushPartial();
      this.sink.notice(this, `truncated (from ${was.offset} to ${r.stat.size} bytes); following it from its start`);
      was.offset = 0;
    }
    await this.readNew(r.stat.size, true);
  }

  /** The file moved under us because the filesystem or image was replaced: start over on whatever is at the path. */
  forget(): void {
    this.flushPartial();
    this.at = undefined;
  }

  /** Keep the offset if the same inode is there in the reopened guest, and big enough; else forget. */
  async reattach(tree: FileTree): Promise<void> {
    const was = this.at;
    if (!was) return;
    try {
      const r = await tree.resolve(this.path);
      if (r.device === was.device && r.ino === was.ino && r.stat.type === 'file' && r.stat.size >= was.offset) {
        this.at = { ...was, fs: r.fs };
        return;
      }
    } catch (err) {
      if (isRetryable(err)) throw err;
    }
    this.forget();
  }

  /** Give out the partial line held (the end of the run, or a file we leave). */
  flushPartial(): void {
    const l = this.splitter.flush();
    if (l) this.sink.lines(this, [l]);
    this.quietPolls = 0;
  }

  private async lookup(tree: FileTree, follow: boolean) {
    let why: string;
    try {
      const r = await tree.resolve(this.path);
      if (r.stat.type === 'file') {
        if (this.missingSaid !== undefined && this.at === undefined) this.sink.notice(this, 'appeared; following it from its start');
        this.missingSaid = undefined;
        return r;
      }
      why = `is a ${r.stat.type}, not a file`;
    } catch (err) {
      if (isRetryable(err) || !follow) throw err;
      const code = (err as { code?: string }).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && !(err as { userFacing?: boolean }).userFacing) throw err;
      why = code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : (err as Error).message;
    }
    if (!follow) throw new GuestlensError('EINVAL', `${this.path}: ${why}`);
    if (this.at) {
      // Gone from the path (deleted, or renamed and nothing new yet): read the old file to its end, once.
      const rest = await this.finishOld(this.at);
      this.sink.notice(this, `${why} any more; ${rest}; waiting for a file at the path`);
      this.at = undefined;
      this.missingSaid = why;
    } else if (this.missingSaid !== why) {
      this.sink.notice(this, `${why} (yet); waiting for it`);
      this.missingSaid = why;
    }
    return undefined;
  }

  /** Read a file we are leaving to its end when it is still there (renamed, not deleted); say what happened to it. */
  private async finishOld(old: Position): Promise<string> {
    let said: string;
    try {
      const st = await old.fs.getattr(old.ino);
      // nlink 0: deleted; its blocks may already belong to something else.
      if (st.type === 'file' && st.nlink > 0 && st.size >= old.offset) {
        const was = this.at;
        this.at = old;
        await this.readNew(st.size, false);
        this.at = was;
        said = 'the old file was read to its end';
      } else said = st.size > old.offset && st.nlink === 0 ? `the old file was deleted with ${st.size - old.offset} bytes not yet read` : 'the old file is gone';
    } catch (err) {
      if (isRetryable(err)) throw err;
      said = 'the old file is gone';
    }
    this.flushPartial();
    return said;
  }

  /** Read [offset, size) in pieces, giving out complete lines; hold a partial line and zeros not yet written back (see above). */
  private async readNew(size: number, holding: boolean): Promise<void> {
    const at = this.at!;
    let grew = false;
    let waiting = false;
    while (at.offset < size) {
      const n = Math.min(CHUNK, size - at.offset);
      const data = await at.fs.read(at.ino, at.offset, n);
      if (data.length === 0) break;
      const suspect = holding ? unwrittenZeros(data, at.offset, size) : -1;
      if (suspect >= 0) {
        const offset = at.offset + suspect;
        if (this.zeros?.offset !== offset) this.zeros = { offset, since: this.clock.now() };
        if (this.clock.now() - this.zeros.since < this.clock.zeroWaitMs) {
          // Lines before the zeros go out; the zeros are read again next poll.
          if (suspect > 0) {
            this.emit(data.subarray(0, suspect), at.offset);
            at.offset += suspect;
            grew = true;
          }
          waiting = true;
          break;
        }
        this.sink.notice(this, `bytes from offset ${offset} read as zeros for over ${this.clock.zeroWaitMs / 1000} s; printed as they are`);
      }
      this.zeros = undefined;
      this.emit(data, at.offset);
      at.offset += data.length;
      grew = true;
    }
    if (!holding) return;
    // A partial line waiting in front of zeros is not given out: its rest is what is not written back yet.
    if (grew || waiting || this.splitter.pending === 0) this.quietPolls = 0;
    else if (++this.quietPolls >= HOLD_POLLS) this.flushPartial();
  }

  private emit(data: Buffer, offset: number): void {
    const lines = this.splitter.push(data, offset);
    if (lines.length) this.sink.lines(this, lines);
  }
}

/**
 * Where in `data` (read at `offset` of a file of `size` bytes) a run of
 * zeros starts that ends at the end of the file or at a sector boundary:
 * what a block whose data is not yet on disk reads as. -1 when there is none.
 */
export function unwrittenZeros(data: Buffer, offset: number, size: number): number {
  let i = data.indexOf(0);
  while (i >= 0) {
    let end = i;
    while (end < data.length && data[end] === 0) end++;
    const at = offset + end;
    if (at === size || at % SECTOR === 0) return i;
    i = data.indexOf(0, end);
  }
  return -1;
}
