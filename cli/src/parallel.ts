/**
 * Run `work` over items with at most `limit` at a time, and hand each result
 * to `emit` in the items' order (as soon as it and all before it are done),
 * so output is streamed yet ordered like the arguments.
 */
export async function forEachOrdered<T, R>(items: T[], limit: number, work: (item: T, index: number) => Promise<R>, emit: (result: R, index: number) => void): Promise<void> {
  const results = new Array<{ value: R } | undefined>(items.length);
  let next = 0;
  let emitted = 0;
  const flush = () => {
    while (emitted < items.length && results[emitted]) {
      emit(results[emitted]!.value, emitted);
      results[emitted] = undefined;
      emitted++;
    }
  };
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = { value: await work(items[i], i) };
      flush();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
