/**
 * Known defects of the robustness corpora, not yet fixed: case -> what the
 * suite finds for it. One list for the bounded slice in pnpm test
 * (test/robustness.test.ts) and for the whole run (pnpm test:robustness):
 * a listed case must still fail as listed (when it is fixed, both say so,
 * and it leaves the list); anything else that fails is a regression.
 */
import type { CaseReport } from './robustness.ts';

export const KNOWN: Record<string, RegExp> = {
  // Not ours, the oracle's: this host's kernel has no CONFIG_QUOTA, so on a filesystem with the quota feature it
  // skips orphan cleanup ("Skipping orphan cleanup due to unknown ROCOMPAT features") and keeps the orphan's 768
  // blocks in use. A guest's kernel (Debian's, libguestfs's appliance) has CONFIG_QUOTA and frees them, as guestlens does.
  f_orphquot: /statfs differs in bfree/,
};

export interface Judgement {
  /** Failures no list explains. */
  unexpected: CaseReport[];
  /** Failures a list explains (printed, not fatal). */
  known: CaseReport[];
  /** Listed cases that ran and no longer fail as listed. */
  fixed: string[];
}

export function judge(reports: CaseReport[], known: Record<string, RegExp> = KNOWN): Judgement {
  const explained = (r: CaseReport) => r.failed && known[r.name]?.test(r.kernel) === true;
  return {
    unexpected: reports.filter((r) => r.failed && !explained(r)),
    known: reports.filter(explained),
    fixed: Object.keys(known).filter((name) => reports.some((r) => r.name === name) && !reports.some((r) => r.name === name && explained(r))),
  };
}
