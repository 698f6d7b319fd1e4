// Follow-up actions after a host file changes: `daemon-reload`, `restart <unit>`,
// `reset-failed <unit>`, `stop-container <name>`. Parsing and validation, the host command each
// one runs, de-duplication in declared order, and running one action with its success rule.
import type { CommandResult, HostCommands } from "../host/commands.ts";

/** A validated action, kept in its canonical text form (`restart telemetry`). */
export type Action = string;

const UNIT_NAME = /^[A-Za-z0-9][A-Za-z0-9:_.@\\-]{0,254}$/;
const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Validates an action's text and returns it in canonical form; throws Error naming the problem. */
export function parseAction(text: unknown): Action {
  if (typeof text !== "string") throw new Error(`expected a string, got ${JSON.stringify(text)}`);
  const words = text.trim().split(/\s+/);
  const [verb, arg, ...rest] = words;
  if (verb === "daemon-reload" && arg === undefined) return "daemon-reload";
  if ((verb === "restart" || verb === "reset-failed") && arg !== undefined && rest.length === 0) {
    if (!UNIT_NAME.test(arg)) throw new Error(`"${arg}" is not a systemd unit name`);
    return `${verb} ${arg}`;
  }
  if (verb === "stop-container" && arg !== undefined && rest.length === 0) {
    if (!CONTAINER_NAME.test(arg)) throw new Error(`"${arg}" is not a container name`);
    return `stop-container ${arg}`;
  }
  throw new Error(
    `"${text}" is not an action (use daemon-reload, restart <unit>, reset-failed <unit>, ` +
      `stop-container <name>)`,
  );
}

/** The host command an action runs. */
export function actionArgv(action: Action): string[] {
  const [verb, arg] = action.split(" ");
  switch (verb) {
    case "daemon-reload":
      return ["systemctl", "daemon-reload"];
    case "restart":
    case "reset-failed":
      return ["systemctl", verb, arg];
    case "stop-container":
      return ["docker", "stop", arg];
    default:
      throw new Error(`unknown action "${action}"`);
  }
}

/** Concatenates action lists keeping the first occurrence of each, in order. */
export function dedupeActions(...lists: Action[][]): Action[] {
  const seen = new Set<Action>();
  const out: Action[] = [];
  for (const list of lists) {
    for (const action of list) {
      if (!seen.has(action)) {
        seen.add(action);
        out.push(action);
      }
    }
  }
  return out;
}

/** Whether an action's command result counts as done (a container that is already gone is). */
export function actionSucceeded(action: Action, result: CommandResult): boolean {
  if (result.code === 0) return true;
  return action.startsWith("stop-container ") && /no such container/i.test(result.stderr);
}

/** Runs one action on the host; returns the command result and whether it counts as done. */
export async function runAction(
  host: HostCommands,
  action: Action,
): Promise<{ ok: boolean; result: CommandResult }> {
  const result = await host.run(actionArgv(action));
  return { ok: actionSucceeded(action, result), result };
}
