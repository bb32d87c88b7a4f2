/**
 * Value data decoded by type. The type is only a tag Windows stores beside
 * the bytes; data of any length may carry any tag. We decode what the tag
 * promises when the bytes fit it (strings: UTF-16LE up to the first NUL, as
 * RegGetValue and hivex read them; DWORDs: exactly 4 bytes; QWORDs: exactly
 * 8) and otherwise hand back the bytes with the reason, never a guess.
 */
import { REG } from './layout.ts';

export type RegTypeName =
  | 'REG_NONE'
  | 'REG_SZ'
  | 'REG_EXPAND_SZ'
  | 'REG_BINARY'
  | 'REG_DWORD'
  | 'REG_DWORD_BIG_ENDIAN'
  | 'REG_LINK'
  | 'REG_MULTI_SZ'
  | 'REG_RESOURCE_LIST'
  | 'REG_FULL_RESOURCE_DESCRIPTOR'
  | 'REG_RESOURCE_REQUIREMENTS_LIST'
  | 'REG_QWORD';

const TYPE_NAMES: Record<number, RegTypeName> = {
  [REG.NONE]: 'REG_NONE',
  [REG.SZ]: 'REG_SZ',
  [REG.EXPAND_SZ]: 'REG_EXPAND_SZ',
  [REG.BINARY]: 'REG_BINARY',
  [REG.DWORD]: 'REG_DWORD',
  [REG.DWORD_BIG_ENDIAN]: 'REG_DWORD_BIG_ENDIAN',
  [REG.LINK]: 'REG_LINK',
  [REG.MULTI_SZ]: 'REG_MULTI_SZ',
  [REG.RESOURCE_LIST]: 'REG_RESOURCE_LIST',
  [REG.FULL_RESOURCE_DESCRIPTOR]: 'REG_FULL_RESOURCE_DESCRIPTOR',
  [REG.RESOURCE_REQUIREMENTS_LIST]: 'REG_RESOURCE_REQUIREMENTS_LIST',
  [REG.QWORD]: 'REG_QWORD',
};

/** "REG_SZ", or "0x1234" for a type Windows does not define. */
export function typeName(type: number): RegTypeName | `0x${string}` {
  return TYPE_NAMES[type] ?? `0x${type.toString(16)}`;
}

export type RegData =
  /** REG_SZ, REG_EXPAND_SZ (unexpanded), REG_LINK. */
  | { kind: 'string'; value: string }
  /** REG_MULTI_SZ: the strings up to the first empty one. */
  | { kind: 'strings'; value: string[] }
  /** REG_DWORD (little-endian) and REG_DWORD_BIG_ENDIAN of exactly 4 bytes. */
  | { kind: 'dword'; value: number }
  /** REG_QWORD of exactly 8 bytes. */
  | { kind: 'qword'; value: bigint }
  /** REG_NONE, REG_BINARY, the resource lists, unknown types, and numbers of the wrong size (`reason` says so). */
  | { kind: 'bytes'; value: Buffer; reason?: string };

/** UTF-16LE code units up to (not including) the first NUL unit; an odd last byte is dropped. */
export function utf16String(data: Buffer): string {
  const units = data.length >>> 1;
  let end = 0;
  while (end < units && data.readUInt16LE(end * 2) !== 0) end++;
  return data.toString('utf16le', 0, end * 2);
}

/** REG_MULTI_SZ: NUL-terminated strings, ended by an empty one (or the end of the data). */
export function utf16Strings(data: Buffer): string[] {
  const out: string[] = [];
  const units = data.length >>> 1;
  for (let start = 0; start < units; ) {
    let end = start;
    while (end < units && data.readUInt16LE(end * 2) !== 0) end++;
    if (end === start) break;
    out.push(data.toString('utf16le', start * 2, end * 2));
    start = end + 1;
  }
  return out;
}

export function decodeData(type: number, data: Buffer): RegData {
  switch (type) {
    case REG.SZ:
    case REG.EXPAND_SZ:
    case REG.LINK:
      return { kind: 'string', value: utf16String(data) };
    case REG.MULTI_SZ:
      return { kind: 'strings', value: utf16Strings(data) };
    case REG.DWORD:
    case REG.DWORD_BIG_ENDIAN:
      if (data.length !== 4) return { kind: 'bytes', value: data, reason: `${typeName(type)} with ${data.length} bytes of data, not 4` };
      return { kind: 'dword', value: type === REG.DWORD ? data.readUInt32LE(0) : data.readUInt32BE(0) };
    case REG.QWORD:
      if (data.length !== 8) return { kind: 'bytes', value: data, reason: `REG_QWORD with ${data.length} bytes of data, not 8` };
      return { kind: 'qword', value: data.readBigUInt64LE(0) };
    default:
      return { kind: 'bytes', value: data };
  }
}
