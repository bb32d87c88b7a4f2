/**
 * Key security records (sk, CM_KEY_SECURITY): a self-relative security
 * descriptor shared by every key that points at it (reference count), with
 * the owner and group SIDs decoded ("S-1-5-32-544") for display. The
 * descriptor's ACLs are handed back as bytes.
 */
import { SIGNATURE, SK } from './layout.ts';
import type { Cells } from './cells.ts';

export interface KeySecurity {
  cell: number;
  referenceCount: number;
  /** SECURITY_DESCRIPTOR_RELATIVE bytes. */
  descriptor: Buffer;
  /** SECURITY_DESCRIPTOR_CONTROL bits. */
  control?: number;
  owner?: string;
  group?: string;
}

export async function readKeySecurity(cells: Cells, cell: number, structure: string): Promise<KeySecurity> {
  const { data } = await cells.record(cell, [SIGNATURE.keySecurity], structure, SK.descriptor);
  const length = data.readUInt32LE(SK.descriptorLength);
  if (SK.descriptor + length > data.length) {
    throw cells.corrupt(structure, cell, `its security descriptor (${length} bytes) runs past the end of the cell (${data.length} bytes)`);
  }
  const descriptor = Buffer.from(data.subarray(SK.descriptor, SK.descriptor + length));
  const security: KeySecurity = { cell, referenceCount: data.readUInt32LE(SK.referenceCount), descriptor };
  // Revision (1), Sbz1, Control (2), then the offsets of Owner, Group, Sacl, Dacl (4 each).
  if (descriptor.length >= 20 && descriptor[0] === 1) {
    security.control = descriptor.readUInt16LE(2);
    security.owner = sidAt(descriptor, descriptor.readUInt32LE(4));
    security.group = sidAt(descriptor, descriptor.readUInt32LE(8));
  }
  return security;
}

/** The SID at `offset` of a self-relative descriptor, in its string form; undefined when absent or cut short. */
export function sidAt(buf: Buffer, offset: number): string | undefined {
  if (offset === 0 || offset + 8 > buf.length) return undefined;
  const revision = buf[offset];
  const count = buf[offset + 1];
  if (offset + 8 + count * 4 > buf.length) return undefined;
  const authority = buf.readUIntBE(offset + 2, 6);
  let s = `S-${revision}-${authority}`;
  for (let i = 0; i < count; i++) s += `-${buf.readUInt32LE(offset + 8 + i * 4)}`;
  return s;
}
