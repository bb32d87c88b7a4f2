/** Every `guestlens <command>`; one file per command, each a thin shell over a package's API. */
import type { CommandModule } from 'yargs';
import { locksCommand } from './locks.ts';
import { lockCommand } from './lock.ts';
import { overlayCommand } from './overlay.ts';
import { imageCommand } from './image.ts';
import { dfCommand } from './df.ts';
import { filesystemsCommand } from './filesystems.ts';
import { inspectCommand } from './inspect.ts';
import { lsCommand } from './ls.ts';
import { catCommand } from './cat.ts';
import { statCommand } from './stat.ts';
import { hashCommand } from './hash.ts';
import { copyOutCommand } from './copyOut.ts';
import { timelineCommand } from './timeline.ts';
import { logCommand } from './log.ts';
import { tailCommand } from './tail.ts';
import { exporterCommand } from './exporter.ts';
import { checkCommand } from './check.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [dfCommand, inspectCommand, filesystemsCommand, lsCommand, catCommand, statCommand, hashCommand, copyOutCommand, timelineCommand, tailCommand, logCommand, exporterCommand, checkCommand, locksCommand, lockCommand, overlayCommand, imageCommand];
