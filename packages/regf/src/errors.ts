/**
 * The regf error family. Every error names the hive (the name the caller gave,
 * usually the guest path "C:\Windows\System32\config\SOFTWARE" or the image
 * and path), and, for damage, the structure, its cell index (the offset the
 * hive itself uses, relative to the hive bins data) and its byte offset in
 * the hive file, so a user can find it with a hex editor or hivexml.
 *
 * Damage found while reading a live guest is `retryable` (the hive may have
 * been read half-way through Windows writing it); the guest layer decides
 * whether to read again, so messages never tell the user to retry.
 */
import { GuestlensError } from '@guestlens/block';
import { HBINS_START } from './layout.ts';

export type RegfErrorCode =
  | 'EFSCORRUPTED' // a structure is inconsistent
  | 'EFSBADCRC' // the base block checksum does not match (only an error for live hives)
  | 'EINVAL' // not a hive, or a value asked for as a type it is not
  | 'EOPNOTSUPP' // a hive version or file type we do not read
  | 'EFBIG'; // a structure over our allocation bounds

export interface RegfErrorOptions {
  retryable?: boolean;
  data?: Record<string, unknown>;
  cause?: unknown;
}

export class RegfError extends GuestlensError {
  declare readonly code: RegfErrorCode;
  constructor(
    code: RegfErrorCode,
    /** The hive's name as the caller gave it. */
    readonly hive: string,
    /** The message without the hive name. */
    readonly detail: string,
    options: RegfErrorOptions = {},
  ) {
    super(code, `${hive}: ${detail}`, { retryable: options.retryable ?? false, data: { hive, ...options.data }, cause: options.cause });
  }
}

/** "cell 0x1020 (file offset 8224)" */
export function describeCell(cell: number): string {
  return `cell 0x${cell.toString(16)} (file offset ${cell + HBINS_START})`;
}

/** A structure of the hive that cannot be right. */
export class RegfCorruptError extends RegfError {
  constructor(
    hive: string,
    /** What was being read: "key node of \Microsoft", "subkey list of \Select", "big data of value "X"". */
    readonly structure: string,
    /** Its cell index, when it has one. */
    readonly cell: number | undefined,
    readonly reason: string,
    options: { retryable?: boolean; dirty?: boolean } = {},
  ) {
    super(
      'EFSCORRUPTED',
      hive,
      `registry hive is damaged: ${structure}${cell !== undefined ? ` at ${describeCell(cell)}` : ''}: ${reason}` +
        (options.dirty
          ? ' (the hive is dirty: its transaction logs hold changes that were not replayed, which may explain this)'
          : ''),
      {
        retryable: options.retryable,
        data: { structure, ...(cell === undefined ? {} : { cell, fileOffset: cell + HBINS_START }), reason },
      },
    );
  }
}

/** The base block checksum does not match: an error only for live hives (a torn read); otherwise the hive is dirty. */
export class RegfChecksumError extends RegfError {
  constructor(
    hive: string,
    readonly stored: number,
    readonly computed: number,
    options: { retryable?: boolean } = {},
  ) {
    super(
      'EFSBADCRC',
      hive,
      `registry hive base block checksum mismatch: stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}; ` +
        'the hive was being written while it was read, or is damaged',
      { retryable: options.retryable, data: { stored, computed } },
    );
  }
}

/** Not a hive at all, or a file of the family we do not read as one (a transaction log, an unknown version). */
export class RegfFormatError extends RegfError {
  constructor(hive: string, reason: string, code: 'EINVAL' | 'EOPNOTSUPP' = 'EINVAL', data: Record<string, unknown> = {}) {
    super(code, hive, reason, { data });
  }
}

/** A structure over one of our bounds (`limits` of openHive): refused before anything is allocated. */
export class RegfLimitError extends RegfError {
  constructor(
    hive: string,
    readonly what: string,
    readonly value: number,
    readonly limit: number,
    readonly option: string,
  ) {
    super('EFBIG', hive, `${what} is ${value}, over the limit of ${limit} (limits.${option} raises it)`, {
      data: { what, value, limit, option },
    });
  }
}

/** A value asked for as a type it does not have ("REG_DWORD, not a string"), or whose data does not fit its type. */
export class RegfValueTypeError extends RegfError {
  constructor(hive: string, readonly keyPath: string, readonly valueName: string, reason: string) {
    super('EINVAL', hive, `value ${quoteName(valueName)} of key ${keyPath}: ${reason}`, { data: { key: keyPath, value: valueName } });
  }
}

/** How messages show a value name: the default value is "(default)", as regedit shows it. */
export function quoteName(name: string): string {
  return name === '' ? '(default)' : JSON.stringify(name);
}
