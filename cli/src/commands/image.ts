import type { CommandModule } from 'yargs';
import { UsageError } from '../errors.ts';

// Placeholder until the issue that brings this command lands.
export const imageCommand: CommandModule = {
  command: 'image',
  describe: false,
  handler: () => {
    throw new UsageError('"image" is not implemented yet');
  },
};
