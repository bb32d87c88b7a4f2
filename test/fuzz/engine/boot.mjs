// A worker thread's entry: load tsx in this thread, then the TypeScript worker.
// (Node 20 does not carry the parent's --import loader hooks into a worker.)
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
