import type { CommandModule } from 'yargs';
import { UsageError } from '../errors.ts';

// Placeholder until the issue that brings this command lands.
export const lockCommand: CommandModule = {
  command: 'lock',
  describe: false,
  handler: () => {
    throw new UsageError('"lock" is not implemented yet');
  },
};
