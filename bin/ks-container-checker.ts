// ks-container-checker: monit's container_checker for a node where some features run under
// Kubernetes. Parses flags and calls src/checkers/container_check.ts.
import {
  kubeNamespaceSetting,
  parseCli,
  parseDuration,
  runCli,
  setting,
  UsageError,
} from "../src/cli.ts";
import { createLogger } from "../src/log.ts";
import { runContainerChecker } from "../src/checkers/container_check.ts";
import { resolveEndpoints } from "../src/checkers/runtimes.ts";

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
  --help, --version

Example (monit):
  check program container_checker with path "/usr/local/bin/ks-container-checker"
      if status != 0 for 5 times within 5 cycles then alert repeat every 1 cycles`;

if (import.meta.main) {
  await runCli("ks-container-checker", async () => {
    const { values, positionals } = parseCli({
      tool: "ks-container-checker",
      help: HELP,
      options: {
        "docker-socket": { type: "string" },
        "cri-socket": { type: "string" },
        "kube-namespace": { type: "string" },
        "db-config": { type: "string" },
        "asic-conf": { type: "string" },
        "always-running": { type: "string", multiple: true },
        timeout: { type: "string" },
        output: { type: "string", default: "text" },
      },
    }, Deno.args);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const output = values.output;
    if (output !== "text" && output !== "json") {
      throw new UsageError(`--output: "${output}" is not text or json`);
    }
    const timeoutMs = parseDuration(setting(values.timeout, "KS_CHECK_TIMEOUT", "2s"), "--timeout");
    return await runContainerChecker({
      endpoints: resolveEndpoints({
        dockerSocket: values["docker-socket"],
        criSocket: values["cri-socket"],
        kubeNamespace: kubeNamespaceSetting(
          "ks-container-checker",
          values["kube-namespace"],
          undefined,
        ),
        timeoutMs,
      }),
      db: { dbConfigPath: values["db-config"] },
      asicConf: values["asic-conf"],
      alwaysRunning: values["always-running"] ?? [],
      dbTimeoutMs: timeoutMs,
      output,
      logger: createLogger("ks-container-checker"),
    });
  });
}
