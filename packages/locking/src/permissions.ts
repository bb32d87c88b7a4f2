/**
 * QEMU's block permissions (BLK_PERM_* in include/block/block-common.h) and
 * the two lock bytes each one maps to in file-posix: byte 100+bit says "I use
 * this permission", byte 200+bit says "I do not let others use it".
 */
export type PermissionName = 'consistent read' | 'write' | 'write unchanged' | 'resize' | 'change children';

export interface Permission {
  readonly bit: number;
  readonly name: PermissionName;
  /** Locked by a holder that uses the permission. */
  readonly useByte: number;
  /** Locked by a holder that refuses to share the permission. */
  readonly unshareByte: number;
}

export const USE_BYTE_BASE = 100;
export const UNSHARE_BYTE_BASE = 200;

function permission(bit: number, name: PermissionName): Permission {
  return Object.freeze({ bit, name, useByte: USE_BYTE_BASE + bit, unshareByte: UNSHARE_BYTE_BASE + bit });
}

/** All five, in bit order. "change children" (graph-mod) is gone since QEMU 6.2 but older QEMUs may still hold its bytes. */
export const PERMISSIONS: readonly Permission[] = Object.freeze([
  permission(0, 'consistent read'),
  permission(1, 'write'),
  permission(2, 'write unchanged'),
  permission(3, 'resize'),
  permission(4, 'change children'),
]);

/** What QEMU 7.2 takes and tests (BLK_PERM_ALL = 0x0f): a locker never touches bit 4. */
export const LOCKABLE_PERMISSIONS: readonly Permission[] = PERMISSIONS.slice(0, 4);
export const ALL_LOCKABLE_MASK = 0x0f;

export const PERMISSION_NAMES: readonly PermissionName[] = PERMISSIONS.map((p) => p.name);

export function isPermissionName(value: string): value is PermissionName {
  return (PERMISSION_NAMES as readonly string[]).includes(value);
}

export function permissionByName(name: PermissionName): Permission {
  const p = PERMISSIONS.find((q) => q.name === name);
  if (!p) throw new TypeError(`unknown permission "${name}"`);
  return p;
}

/** The bit mask of a set of names; "change children" is refused because QEMU 7.2 no longer has it. */
export function maskOf(names: readonly PermissionName[]): number {
  let mask = 0;
  for (const name of names) {
    const p = permissionByName(name);
    if (p.bit > 3) throw new TypeError(`"${name}" no longer exists in QEMU 7.2 and cannot be locked`);
    mask |= 1 << p.bit;
  }
  return mask;
}

export function namesOf(mask: number): PermissionName[] {
  return PERMISSIONS.filter((p) => (mask & (1 << p.bit)) !== 0).map((p) => p.name);
}

/** The permission a lock byte stands for, and whether it is a use or an unshare byte; undefined for other bytes. */
export function decodeByte(byte: number): { permission: Permission; role: 'use' | 'unshare' } | undefined {
  for (const p of PERMISSIONS) {
    if (p.useByte === byte) return { permission: p, role: 'use' };
    if (p.unshareByte === byte) return { permission: p, role: 'unshare' };
  }
  return undefined;
}

/** Every byte a prober looks at: 100-104, then 200-204. */
export const PROBED_BYTES: readonly number[] = [...PERMISSIONS.map((p) => p.useByte), ...PERMISSIONS.map((p) => p.unshareByte)];
