import type { CommandModule } from 'yargs';
import { UsageError } from '../errors.ts';

// Placeholder until the issue that brings this command lands.
export const locksCommand: CommandModule = {
  command: 'locks',
  describe: false,
  handler: () => {
    throw new UsageError('"locks" is not implemented yet');
  },
};
