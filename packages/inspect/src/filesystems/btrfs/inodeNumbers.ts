/**
 * Inode numbers when one Filesystem shows several subvolumes (a mount of
 * the top level, or of any subvolume with others nested in it): btrfs
 * objectids repeat in every subvolume (each root directory is 256), so the
 * subvolume shown keeps its objectids as they are (below 2^52), and every
 * other subvolume gets a slot s (1 to 4096, in subvolume-id order) and
 * numbers 2^52 + (s - 1) * 2^40 + objectid (objectid below 2^40). Every
 * number stays below 2^53; an objectid outside its range throws
 * UnsafeNumberError (EOVERFLOW) instead of colliding.
 */
import { UnsafeNumberError } from '@guestlens/block';

const NESTED_BASE = 2 ** 52;
const SLOT_SPAN = 2 ** 40;
export const MAX_NESTED_SLOTS = 4096;

export class InodeNumbers {
  private readonly slotOf = new Map<bigint, number>();
  private readonly idOfSlot: bigint[] = [];

  constructor(
    /** The subvolume shown (its objectids are the inode numbers). */
    readonly mounted: bigint,
    /** Every other subvolume id (the top level 5 included when it is not the one shown). */
    others: bigint[],
  ) {
    const sorted = [...others].filter((id) => id !== mounted).sort((a, b) => (a < b ? -1 : 1));
    for (const id of sorted) {
      this.idOfSlot.push(id);
      this.slotOf.set(id, this.idOfSlot.length);
    }
  }

  /** The inode number of `objectid` in subvolume `tree`. */
  encode(tree: bigint, objectid: bigint): number {
    if (tree === this.mounted) {
      if (objectid >= BigInt(NESTED_BASE)) throw new UnsafeNumberError(`inode ${objectid} of subvolume ${tree} (inode numbers of the subvolume shown must be below 2^52)`, objectid);
      return Number(objectid);
    }
    const slot = this.slotOf.get(tree);
    if (slot === undefined || slot > MAX_NESTED_SLOTS) throw new UnsafeNumberError(`subvolume ${tree} (at most ${MAX_NESTED_SLOTS} other subvolumes get inode numbers)`, tree);
    if (objectid >= BigInt(SLOT_SPAN)) throw new UnsafeNumberError(`inode ${objectid} of nested subvolume ${tree} (nested inode numbers must be below 2^40)`, objectid);
    return NESTED_BASE + (slot - 1) * SLOT_SPAN + Number(objectid);
  }

  /** Subvolume and objectid of an inode number, or undefined for a number no inode has. */
  decode(ino: number): { tree: bigint; objectid: bigint } | undefined {
    if (!Number.isSafeInteger(ino) || ino < 0) return undefined;
    if (ino < NESTED_BASE) return { tree: this.mounted, objectid: BigInt(ino) };
    const rel = ino - NESTED_BASE;
    const slot = Math.floor(rel / SLOT_SPAN) + 1;
    const id = this.idOfSlot[slot - 1];
    if (id === undefined) return undefined;
    return { tree: id, objectid: BigInt(rel - (slot - 1) * SLOT_SPAN) };
  }
}
