// ks-container-checker: monit's container_checker for a node where some features run under
// Kubernetes. Parses flags and calls src/checkers/container_check.ts.
import { parseCli, runCli, UsageError } from "../src/cli.ts";
import { createLogger } from "../src/log.ts";
import { runContainerChecker } from "../src/checkers/container_check.ts";
import { runSystemHealth } from "../src/checkers/critical.ts";
import { CHECKER_OPTIONS, checkerSettings } from "../src/checkers/checker_cli.ts";

const HELP = `ks-container-checker — are all expected SONiC containers running on this node?

Usage: ks-container-checker [options]

Expected: FEATURE rows (CONFIG_DB) whose state is not disabled/always_disabled; on multi-ASIC
platforms has_global_scope -> <name>, has_per_asic_scope -> <name><asic> per ASIC (NUM_ASIC from
asic.conf); always_enabled features and --always-running names. Running: the node's runtimes only
(never the API server): Docker containers by name, and Kubernetes containers (Docker or the CRI
runtime) of pod namespace --kube-namespace (default "sonic") by their io.kubernetes.container.name
label (never POD).

Prints "Expected containers not running: a, b" when something is missing, one line per runtime
that cannot be reached. A runtime whose socket does not exist is not installed here and is skipped.

Exit codes (monit's container_checker contract): 0 all expected containers run, 3 some are missing
or a runtime cannot be reached, 1 CONFIG_DB cannot be read, 2 usage error.
The FEATURE row telemetry stands for gnmi when the node has a docker-sonic-gnmi image and no
docker-sonic-telemetry one (Docker or the CRI, any registry or tag), and is skipped with SONiC's
line when it has neither.

Events: one sonic-events-host event-down-ctr (ctr_name) per missing container, published to
eventd's XSUB endpoint (events.xsub_path of /etc/sonic/init_cfg.json or KS_INIT_CFG; default
tcp://127.0.0.1:5570) when eventd listens, within KS_EVENTS_TIMEOUT (1s); never changes the exit.

Options:
  --docker-socket P   Docker API socket (KS_DOCKER_SOCKET, DOCKER_HOST; default /var/run/docker.sock;
                      "none" disables)
  --cri-socket P      CRI socket (KS_CRI_SOCKET, CONTAINER_RUNTIME_ENDPOINT; default
                      /run/containerd/containerd.sock; "none" disables)
  --kube-namespace NS the Kubernetes namespace whose pods count (KS_KUBE_NAMESPACE; default sonic)
  --db-config P       database_config.json (KS_DB_CONFIG; default SONiC's)
  --asic-conf P       asic.conf (KS_ASIC_CONF; default /usr/share/sonic/device/<platform>/asic.conf)
  --always-running N  a container that must always run (repeatable), e.g. database-chassis
  --timeout D         per-runtime and CONFIG_DB timeout (default 2s)
  --output F          text (default) or json
  --system-health     instead of the monit check: system-health's view of what its service
                      checker skips (CONTAINER_K8S_WHITELIST features, containers of pod
                      namespace sonic): each such expected container and its critical processes
                      (/etc/supervisor/critical_processes, supervisorctl status inside it through
                      the CRI or Docker), printed as a user-defined checker: "Services", then
                      "<container>:OK|Container '<c>' is not running" and
                      "<container>/<process>:OK|Process '<p>' in container '<c>' is not running"
  --help, --version

Example (system-health, system_health_monitoring_config.json):
  "user_defined_checkers": ["/usr/local/bin/ks-container-checker --system-health"]

Example (monit):
  check program container_checker with path "/usr/local/bin/ks-container-checker"
      if status != 0 for 5 times within 5 cycles then alert repeat every 1 cycles`;

/** Runs the tool with `args` (its command line without the program name) and exits. */
export async function main(args: string[]): Promise<void> {
  await runCli("ks-container-checker", async () => {
    const { values, positionals } = parseCli({
      tool: "ks-container-checker",
      help: HELP,
      options: {
        ...CHECKER_OPTIONS,
        "db-config": { type: "string" },
        "asic-conf": { type: "string" },
        "always-running": { type: "string", multiple: true },
        "system-health": { type: "boolean" },
      },
    }, args);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const shared = checkerSettings("ks-container-checker", values);
    const opts = {
      endpoints: shared.endpoints,
      db: { dbConfigPath: values["db-config"] },
      asicConf: values["asic-conf"],
      alwaysRunning: values["always-running"] ?? [],
      dbTimeoutMs: shared.timeoutMs,
      output: shared.output,
      events: shared.events,
      logger: createLogger("ks-container-checker"),
    };
    return values["system-health"] ? await runSystemHealth(opts) : await runContainerChecker(opts);
  });
}

if (import.meta.main) await main(Deno.args);
