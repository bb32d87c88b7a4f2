/** Writing command output: text as virt-* tools print it, or JSON with --json. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function println(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/**
 * A JSON array written an element at a time, byte for byte what
 * printJson(array) prints: a listing of millions of files never becomes one
 * string (V8 strings stop at 2^29 characters) nor one array in memory.
 */
export function jsonArrayWriter(write: (s: string) => void = (s) => void process.stdout.write(s)): { push(value: unknown): void; end(): void } {
  let n = 0;
  return {
    push(value) {
      write(`${n++ === 0 ? '[\n' : ',\n'}  ${JSON.stringify(value, null, 2).replaceAll('\n', '\n  ')}`);
    },
    end() {
      write(n === 0 ? '[]\n' : '\n]\n');
    },
  };
}
