/**
 * The exporter's HTTP side (node:http, nothing else listens): /metrics (the
 * last cycle's text, never waiting for a guest), /probe?target=GUEST (one
 * guest read now), /-/healthy, and a landing page listing the guests.
 * Probe targets are limited to the guests watched and the paths the
 * options allow: an exporter must not read any file a client names.
 */
import { createServer, type Server } from 'node:http';
import { CONTENT_TYPE } from './metrics.ts';
import type { Exporter } from './exporter.ts';

export interface ServeOptions {
  host: string;
  port: number;
  /** Whether /probe may read this path that is not a watched guest. */
  probeAllowed(path: string): boolean;
}

export async function serve(exporter: Exporter, o: ServeOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://exporter');
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD\n');
    const handle = async () => {
      switch (url.pathname) {
        case '/metrics':
          return send(200, await exporter.metrics(), CONTENT_TYPE);
        case '/probe': {
          const target = url.searchParams.get('target');
          if (!target) return send(400, 'give ?target=IMAGE or a watched guest\'s name\n');
          const body = await exporter.probe(target, o.probeAllowed);
          if (body === undefined) return send(403, `${target}: not a guest this exporter watches, nor a path --probe-allow permits\n`);
          return send(200, body, CONTENT_TYPE);
        }
        case '/-/healthy':
          return send(200, 'OK\n');
        case '/': {
          const list = exporter.guests().map((g) => `<li>${escapeHtml(g.job.name)}: <a href="/probe?target=${encodeURIComponent(g.job.name)}">probe</a></li>`).join('');
          return send(200, `<html><head><title>guestlens exporter</title></head><body><h1>guestlens exporter</h1><p><a href="/metrics">/metrics</a></p><ul>${list}</ul></body></html>\n`, 'text/html; charset=utf-8');
        }
        default:
          return send(404, 'not found: try /metrics or /probe?target=GUEST\n');
      }
    };
    handle().catch((err: unknown) => send(500, `${err instanceof Error ? err.message : String(err)}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
