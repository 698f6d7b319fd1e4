// How `ks-stub <feature> status` prints: a short systemctl-like block for people, or one JSON
// object (`--output json`) for scripts. No I/O here.
import type { StatusReport } from "./control.ts";
import { targetName } from "./target.ts";

/** Formats an elapsed time the way systemctl does (`3min 2s`, `1h 4min`, `2 days 3h`). */
export function formatAgo(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d} day${d === 1 ? "" : "s"} ${h}h`;
  if (h > 0) return `${h}h ${m}min`;
  if (m > 0) return `${m}min ${sec}s`;
  return `${sec}s`;
}

/** The human-readable status block (three lines at most). */
export function formatStatusText(report: StatusReport, now: number = Date.now()): string {
  const name = targetName(report);
  const where = `node ${report.node}`;
  const pod = report.pod;
  if (report.state === "unknown") {
    return [
      `? ${name} - Kubernetes pod on ${where}`,
      `     Active: unknown (${
        report.source === "api" ? "API server" : "container runtime"
      } unreachable)`,
      `     Detail: ${report.detail}`,
    ].join("\n");
  }
  if (!pod) {
    return [
      `○ ${name} - no Kubernetes pod on ${where}`,
      `     Active: inactive (dead)`,
      `     Detail: ${report.detail}`,
    ].join("\n");
  }
  let active: string;
  if (report.state === "running") {
    const since = pod.since ? Date.parse(pod.since) : NaN;
    active = "active (running)" +
      (Number.isNaN(since) ? "" : ` since ${pod.since}; ${formatAgo(now - since)} ago`);
  } else {
    active = pod.terminating ? "deactivating (terminating)" : `activating (${pod.phase})`;
  }
  return [
    `${report.state === "running" ? "●" : "○"} ${name} - Kubernetes pod ` +
    `${report.namespace}/${pod.name} on ${where}`,
    `     Active: ${active}`,
    `        Pod: ${report.detail}, ready ${pod.ready}, restarts ${pod.restarts}` +
    (pod.image ? `, image ${pod.image}` : ""),
  ].join("\n");
}

/** The JSON form of a status report (stable keys for scripts). */
export function formatStatusJson(report: StatusReport): string {
  return JSON.stringify({
    feature: report.feature,
    asic: report.asic ?? null,
    node: report.node,
    namespace: report.namespace,
    state: report.state,
    code: report.code,
    detail: report.detail,
    pod: report.pod ?? null,
    source: report.source ?? null,
  });
}
