/**
 * The errors of the LVM2 reader: one base (LvmError, an InspectError) with
 * errno-like codes, the device the structure is on, and for damage the
 * structure and the byte offset at fault. A checksum mismatch is retryable:
 * a guest may have been writing its metadata while we read it (the guest
 * layer decides whether to read again). `detail` is the message without the
 * device name, for reports that name the device already.
 */
import { InspectError } from '../../errors.ts';

export type LvmErrorCode = 'EFSCORRUPTED' | 'EFSBADCRC' | 'EOPNOTSUPP' | 'ENXIO' | 'EIO' | 'EOVERFLOW';

export class LvmError extends InspectError {
  declare readonly code: LvmErrorCode;
  constructor(
    code: LvmErrorCode,
    /** The device (block source name) the structure is on. */
    readonly source: string,
    /** What failed, without the source name. */
    readonly detail: string,
    options: { retryable?: boolean; data?: Record<string, unknown> } = {},
  ) {
    super(`${source}: ${detail}`, code, { retryable: options.retryable ?? false, data: { source, ...options.data } });
  }
}

/** An LVM structure on a PV that cannot be right. `structure` names it ("PV label", "metadata area header at 4096"). */
export class LvmCorruptError extends LvmError {
  constructor(
    source: string,
    readonly structure: string,
    readonly offset: number | undefined,
    reason: string,
  ) {
    super('EFSCORRUPTED', source, `LVM2 ${structure}${offset === undefined ? '' : ` (byte offset ${offset})`} is damaged: ${reason}`, {
      data: { structure, ...(offset === undefined ? {} : { offset }), reason },
    });
  }
}

/** A CRC that does not match: damage, or metadata caught half-way through a write. */
export class LvmChecksumError extends LvmError {
  constructor(
    source: string,
    readonly structure: string,
    readonly offset: number,
    readonly stored: number,
    readonly computed: number,
  ) {
    super(
      'EFSBADCRC',
      source,
      `checksum mismatch in the LVM2 ${structure} (byte offset ${offset}): stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}; ` +
        'the disk is damaged, or its volume group was being changed while it was read',
      { retryable: true, data: { structure, offset, stored, computed } },
    );
  }
}

/** The VG text metadata does not parse, or does not describe a volume group LVM would accept. */
export class LvmMetadataError extends LvmError {
  constructor(
    source: string,
    /** Where in the text: "line 12", "logical volume root, segment1". */
    readonly where: string,
    readonly reason: string,
  ) {
    super('EFSCORRUPTED', source, `LVM2 volume group metadata, ${where}: ${reason}`, { data: { where, reason } });
  }
}

/** How a name or string from a guest's metadata is shown: quoted, control and non-ASCII characters escaped, cut short. */
export function shown(text: string, max = 80): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  return `"${cut.replace(/[^\x20-\x7e]|["\\]/g, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))}"`;
}

/** A key of the text as messages show it: plain when it is a plain word, else quoted and escaped. */
export function printable(key: string): string {
  return /^[A-Za-z0-9_.+-]{1,64}$/.test(key) ? key : shown(key, 64);
}
