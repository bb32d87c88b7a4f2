import type { CommandModule } from 'yargs';
import { UsageError } from '../errors.ts';

// Placeholder until the issue that brings this command lands.
export const overlayCommand: CommandModule = {
  command: 'overlay',
  describe: false,
  handler: () => {
    throw new UsageError('"overlay" is not implemented yet');
  },
};
