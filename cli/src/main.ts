/**
 * guestlens: look inside virtual-machine disk images, read-only, without an appliance.
 */
import yargs from 'yargs';
import { commands } from './commands/index.ts';
import { EXIT_ERROR, EXIT_USAGE, UsageError, describeError, isUserError } from './errors.ts';

export async function main(argv: string[]): Promise<void> {
  // A reader that went away (`guestlens ls ... | head`) ends the output, not the program with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const parser = yargs(argv)
    .scriptName('guestlens')
    .usage('$0 <command> [options]\n\nLook inside virtual-machine disk images, including running ones, read-only.')
    .command(commands)
    .demandCommand(1, 'Name a command (see the list above).')
    .strict()
    // No -h alias for --help: df uses -h for human-readable sizes, as virt-df and df do.
    .help()
    .version(false)
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((msg, err, y) => {
      if (err) throw err;
      throw new UsageError(`${msg}\n\n${y.help === undefined ? '' : 'Run "guestlens --help" or "guestlens COMMAND --help" for usage.'}`);
    });
  skipHelpCache(parser);
  try {
    await parser.parseAsync();
  } catch (err) {
    process.exitCode = report(err);
  }
  // Flush stdout before exiting (it may be a pipe).
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
}

function report(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`guestlens: ${err.message.trimEnd()}\n`);
    return EXIT_USAGE;
  }
  if (isUserError(err)) {
    process.stderr.write(`guestlens: ${describeError(err)}\n`);
    return EXIT_ERROR;
  }
  // Anything else is a bug in guestlens: show everything we know.
  process.stderr.write(`guestlens: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT_ERROR;
}

/**
 * yargs renders and caches the whole help text after every command it runs
 * (tens of milliseconds of string-width work), only to show it if a later
 * failure asks for help. We never do that, and df's budget is 150 ms in all,
 * so the cache step is turned into a no-op. Guarded: if yargs changes its
 * internals, nothing breaks, we only lose the saving.
 */
function skipHelpCache(parser: unknown): void {
  const usage = (parser as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
    .getInternalMethods?.()
    .getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}
