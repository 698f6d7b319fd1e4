// ks-memory-checker: monit's memory_checker for containers run by Docker or by a kubelet.
// Parses arguments and calls src/checkers/memory_check.ts.
import { parseCli, runCli, UsageError } from "../src/cli.ts";
import { createLogger } from "../src/log.ts";
import { parseThreshold, runMemoryChecker } from "../src/checkers/memory_check.ts";
import { CHECKER_OPTIONS, checkerSettings } from "../src/checkers/checker_cli.ts";

const HELP = `ks-memory-checker — is a container's memory use over a threshold?

Usage: ks-memory-checker <container_name> <threshold_in_bytes> [options]

Finds the container by name in Docker (a native SONiC container), or by the kubelet's labels
(pod namespace --kube-namespace, default "sonic"; io.kubernetes.container.name=<container_name>)
in Docker or the CRI
runtime, and reads its use from its cgroup: v2 memory.current minus inactive_file, v1
memory.usage_in_bytes minus total_inactive_file.

Exit codes (SONiC's memory_checker contract): 0 under the threshold or not running, 3 over
(prints "[<name>]: Memory usage (N Bytes) is larger than the threshold (T Bytes)!"),
2 usage error (invalid arguments), 1 internal error (one line on stdout).

Events: over the threshold, one sonic-events-host mem-threshold-exceeded (ctr_name, mem_usage,
threshold) to eventd's XSUB endpoint (events.xsub_path of /etc/sonic/init_cfg.json or KS_INIT_CFG;
default tcp://127.0.0.1:5570) when eventd listens, within KS_EVENTS_TIMEOUT (1s); never changes
the exit code.

Options:
  --docker-socket P   Docker API socket (KS_DOCKER_SOCKET, DOCKER_HOST; default /var/run/docker.sock;
                      "none" disables)
  --cri-socket P      CRI socket (KS_CRI_SOCKET, CONTAINER_RUNTIME_ENDPOINT; default
                      /run/containerd/containerd.sock; "none" disables)
  --kube-namespace NS the Kubernetes namespace whose pods count (KS_KUBE_NAMESPACE; default sonic)
  --timeout D         per-runtime call timeout (default 2s)
  --output F          text (default) or json
  --help, --version

Example (monit):
  check program container_memory_telemetry with path "/usr/local/bin/ks-memory-checker telemetry 419430400"
      if status == 3 for 10 times within 20 cycles then exec "/usr/bin/restart_service telemetry" repeat every 2 cycles`;

/** Runs the tool with `args` (its command line without the program name) and exits. */
export async function main(args: string[]): Promise<void> {
  await runCli("ks-memory-checker", async () => {
    const { values, positionals } = parseCli({
      tool: "ks-memory-checker",
      help: HELP,
      options: CHECKER_OPTIONS,
    }, args);
    if (positionals.length !== 2) {
      throw new UsageError(
        `expected <container_name> <threshold_in_bytes>, got ${positionals.length} argument(s)`,
      );
    }
    const [name, thresholdText] = positionals;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
      throw new UsageError(`container name "${name}" is not a valid container name`);
    }
    const thresholdBytes = parseThreshold(thresholdText);
    if (thresholdBytes === undefined) {
      throw new UsageError(
        `threshold "${thresholdText}" is invalid: it should be a positive integer of bytes`,
      );
    }
    const shared = checkerSettings("ks-memory-checker", values);
    return await runMemoryChecker({
      name,
      thresholdBytes,
      endpoints: shared.endpoints,
      output: shared.output,
      events: shared.events,
      logger: createLogger("ks-memory-checker", name),
    });
  });
}

if (import.meta.main) await main(Deno.args);
