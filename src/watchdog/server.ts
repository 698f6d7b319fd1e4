// The watchdog's HTTP/1.1 surface on Deno.serve (keep-alive, Content-Length and HEAD handled by
// the server): `/` and `/livez` (liveness), `/readyz` (readiness); GET and HEAD only (405 with
// `Allow` otherwise), 404 for any other path; 200 healthy, 503 not, JSON body. Every answer is
// bounded by the deadline, whatever a probe does.
import type { HealthCheck, HealthReport } from "./health.ts";

/** Maps the request path to a check; null for an unknown path. */
export function checkForPath(pathname: string): HealthCheck | null {
  switch (pathname) {
    case "/":
    case "/livez":
      return "livez";
    case "/readyz":
      return "readyz";
    default:
      return null;
  }
}

/** Computes the report for a check (resolves within the probe budget). */
export type ReportFn = (check: HealthCheck) => Promise<HealthReport>;

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

function json(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { ...JSON_HEADERS, ...extra },
  });
}

/**
 * The request handler. `deadlineMs` bounds every answer: if the report is not ready in time
 * (it always should be — probes are cut at their budget), a 503 saying so goes out instead.
 */
export function createHandler(
  feature: string,
  report: ReportFn,
  deadlineMs: number,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const { pathname } = new URL(request.url);
    const check = checkForPath(pathname);
    if (check === null) return json(404, { feature, error: `no such path: ${pathname}` });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return json(405, { feature, error: `method ${request.method} not allowed` }, {
        allow: "GET, HEAD",
      });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((
      resolve,
    ) => (timer = setTimeout(() => resolve(null), deadlineMs)));
    const body = await Promise.race([report(check), late]).finally(() => clearTimeout(timer));
    if (body === null) {
      return json(503, {
        feature,
        check,
        healthy: false,
        message: `no answer within ${deadlineMs} ms`,
      });
    }
    return json(body.healthy ? 200 : 503, body);
  };
}
