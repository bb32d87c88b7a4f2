import type { CommandModule } from 'yargs';
import { UsageError } from '../errors.ts';

// Placeholder until the issue that brings this command lands.
export const dfCommand: CommandModule = {
  command: 'df',
  describe: false,
  handler: () => {
    throw new UsageError('"df" is not implemented yet');
  },
};
