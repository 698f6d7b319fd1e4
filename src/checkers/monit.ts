// Renders the monit stanzas that run the checkers, in the shape SONiC ships them
// (`check program container_memory_<feature> ... if status == 3 for 10 times within 20 cycles
// then exec "/usr/bin/restart_service <feature>" repeat every 2 cycles`, and container_checker's
// `if status != 0 for 5 times within 5 cycles then alert`), so a feature's snippet comes from
// code and can be checked with `monit -t`.

/** Where the tools are installed on a switch. */
export const DEFAULT_MEMORY_CHECKER = "/usr/local/bin/ks-memory-checker";
/** Where the tools are installed on a switch. */
export const DEFAULT_CONTAINER_CHECKER = "/usr/local/bin/ks-container-checker";
/** SONiC's restart helper that monit execs when memory stays over the threshold. */
export const DEFAULT_RESTART_SERVICE = "/usr/bin/restart_service";

/** How many failing cycles trigger the action (monit's `for X times within Y cycles`). */
export interface MonitRule {
  times: number;
  cycles: number;
  /** `repeat every N cycles` (omitted when undefined). */
  repeatEvery?: number;
}

/** Options for a feature's memory stanza. */
export interface MemoryStanzaOptions {
  feature: string;
  thresholdBytes: number;
  /** Checker executable (default DEFAULT_MEMORY_CHECKER). */
  checker?: string;
  /** Extra checker flags placed before the positionals (e.g. `--cri-socket none`). */
  checkerArgs?: string[];
  /** Restart command; the feature name is appended (default DEFAULT_RESTART_SERVICE). */
  restartCommand?: string;
  /** Default SONiC's 10 times within 20 cycles, repeat every 2 cycles. */
  rule?: MonitRule;
}

/** Options for the container_checker stanza. */
export interface ContainerStanzaOptions {
  checker?: string;
  checkerArgs?: string[];
  /**
   * Default SONiC's 5 times within 5 cycles. SONiC writes `then alert repeat every 1 cycles`,
   * which its patched monit accepts but Debian's monit 5.33 rejects (syntax error 'repeat'), so
   * `repeatEvery` is only rendered with an `exec` action.
   */
  rule?: MonitRule;
  /** Action (default "alert", as SONiC; e.g. `exec "/path/script"` in tests). */
  action?: string;
  /** Program timeout in seconds (monit's `with timeout N seconds`, omitted by default). */
  timeoutSeconds?: number;
}

const SAFE = /^[A-Za-z0-9_./:=@%+,-]+$/;

function word(w: string, what: string): string {
  if (!SAFE.test(w)) {
    throw new Error(`${what}: "${w}" cannot be placed in a monit path string (quotes/spaces)`);
  }
  return w;
}

function ruleText(rule: MonitRule): string {
  for (const [k, v] of Object.entries(rule)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new Error(`monit rule ${k}: ${v} is not a positive integer`);
    }
  }
  if (rule.times > rule.cycles) {
    throw new Error(`monit rule: ${rule.times} times cannot fit within ${rule.cycles} cycles`);
  }
  const repeat = rule.repeatEvery ? ` repeat every ${rule.repeatEvery} cycles` : "";
  return `for ${rule.times} times within ${rule.cycles} cycles then %ACTION%${repeat}`;
}

/**
 * The memory stanza for a feature. Throws when the feature name, a path or an argument cannot be
 * placed safely in monit's quoted strings, or the threshold / rule is not a positive integer.
 */
export function renderMemoryStanza(o: MemoryStanzaOptions): string {
  const feature = word(o.feature, "feature");
  if (!Number.isSafeInteger(o.thresholdBytes) || o.thresholdBytes <= 0) {
    throw new Error(`threshold: ${o.thresholdBytes} is not a positive integer of bytes`);
  }
  const cmd = [
    word(o.checker ?? DEFAULT_MEMORY_CHECKER, "checker"),
    ...(o.checkerArgs ?? []).map((a) => word(a, "checker argument")),
    feature,
    String(o.thresholdBytes),
  ].join(" ");
  const restart = `${
    word(o.restartCommand ?? DEFAULT_RESTART_SERVICE, "restart command")
  } ${feature}`;
  const rule = ruleText(o.rule ?? { times: 10, cycles: 20, repeatEvery: 2 });
  return [
    "###############################################################################",
    `## Monit configuration for ${feature} container (rendered by kubesonic)`,
    "###############################################################################",
    `check program container_memory_${feature} with path "${cmd}"`,
    `    if status == 3 ${rule.replace("%ACTION%", `exec "${restart}"`)}`,
    "",
  ].join("\n");
}

/** The container_checker stanza (conf.d/sonic-host in SONiC). */
export function renderContainerCheckerStanza(o: ContainerStanzaOptions = {}): string {
  const cmd = [
    word(o.checker ?? DEFAULT_CONTAINER_CHECKER, "checker"),
    ...(o.checkerArgs ?? []).map((a) => word(a, "checker argument")),
  ].join(" ");
  const action = o.action ?? "alert";
  const given = o.rule ?? { times: 5, cycles: 5 };
  const rule = ruleText(action === "alert" ? { ...given, repeatEvery: undefined } : given);
  const timeout = o.timeoutSeconds ? ` with timeout ${o.timeoutSeconds} seconds` : "";
  return [
    `check program container_checker with path "${cmd}"${timeout}`,
    `    if status != 0 ${rule.replace("%ACTION%", action)}`,
    "",
  ].join("\n");
}
