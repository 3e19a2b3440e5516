/**
 * Prometheus counts of the HTTP API's answers, on the server's registry (see sync-metrics.ts).
 */
import { Counter, type Registry } from 'prom-client';

/** Counts answers to /api requests by status class on `registry`; each class listed at 0 from the start. */
export function httpAnswers(registry: Registry): (status: number) => void {
  const answers = new Counter({ name: 'spanwise_http_responses_total', help: 'Answers to /api requests, by status class', labelNames: ['class'], registers: [registry] });
  for (const c of ['2xx', '3xx', '4xx', '5xx']) answers.inc({ class: c }, 0);
  return (status) => answers.inc({ class: `${Math.floor(status / 100)}xx` });
}
