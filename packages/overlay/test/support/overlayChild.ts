/**
 * A program that uses the overlay package and then ends in one of several
 * ways, so tests can check the overlay's directory never outlives it.
 *   node --import tsx overlayChild.ts IMAGE MODE
 * It prints the overlay's directory on the first line of stdout, then:
 *   exit        process.exit(0) without closing the overlay
 *   throw       an uncaught error
 *   wait        waits forever (the test sends a signal)
 *   own-handler waits, with its own SIGTERM handler that exits 7
 */
import { createOverlay } from '../../src/index.ts';

const [image, mode] = process.argv.slice(2);
const overlay = await createOverlay(image);
process.stdout.write(`${overlay.dir}\n`);

switch (mode) {
  case 'exit':
    process.exit(0);
    break;
  case 'throw':
    setImmediate(() => {
      throw new Error('boom: an uncaught error');
    });
    break;
  case 'own-handler':
    process.on('SIGTERM', () => {
      process.stdout.write('own handler ran\n');
      process.exit(7);
    });
    setInterval(() => {}, 1000);
    break;
  default:
    setInterval(() => {}, 1000);
}
