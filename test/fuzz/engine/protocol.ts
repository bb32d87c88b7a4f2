/** What the supervisor and a worker share. */
import type { LoopStats } from './loop.ts';

export interface WorkerData {
  targetModule: string;
  seconds: number;
  seed: number;
  quick: boolean;
  crashDir: string;
  caseLimitMs: number;
  memoryBound: number;
  /** Which scripts' coverage counts (a RegExp source; default our packages' src). */
  covers?: string;
  /** The case running now: CURRENT's header, then its recipe (FuzzInput.recipe()). */
  shared: SharedArrayBuffer;
}

export const CURRENT = { headerInts: 4, execs: 0, seedIndex: 1, recipeLength: 2 } as const;

export type WorkerMessage =
  | { type: 'scratch'; root: string }
  | { type: 'seeds'; files: string[]; names: string[] }
  | { type: 'done'; stats: LoopStats }
  | { type: 'error'; message: string };
