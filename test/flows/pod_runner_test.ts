// The simulated kubelet's container part (sandbox/flows/pod_runner.ts) stops a container whole,
// as a kubelet does: a daemon its main process started in a process group of its own (what
// supervisord does with every program) ends with the container, and a replacement pod's
// containers start only after that. Real control plane (kwok node), real processes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { kubeBinDir, SONIC_NAMESPACE, startKube } from "../../sandbox/harness/kube.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { startPodRunner } from "../../sandbox/flows/pod_runner.ts";
import { procStats } from "../../sandbox/harness/process.ts";
import { resourcePath } from "../../src/kube/rest.ts";

/** Pids of live processes whose command line is exactly `sleep <seconds>`. */
function sleepers(seconds: string): number[] {
  return procStats().filter((p) => p.comm === "sleep" && p.state !== "Z").map((p) => p.pid)
    .filter((pid) => {
      try {
        return Deno.readTextFileSync(`/proc/${pid}/cmdline`) === `sleep\0${seconds}\0`;
      } catch {
        return false;
      }
    });
}

/**
 * A container's main process that starts `sleep <seconds>` in a process group of its own, then
 * exits at once on SIGTERM (or, with `exitAfter`, by itself after that many seconds).
 */
function daemonStarter(seconds: string, exitAfter?: number): string[] {
  return [
    "python3",
    "-c",
    [
      "import os, signal, sys, time",
      "if os.fork() == 0:",
      "    os.setpgrp()",
      `    os.execvp("sleep", ["sleep", "${seconds}"])`,
      "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))",
      exitAfter === undefined
        ? "while True: time.sleep(1)"
        : `time.sleep(${exitAfter}); sys.exit(1)`,
    ].join("\n"),
  ];
}

function pod(name: string, command: string[], container = "main") {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: SONIC_NAMESPACE },
    spec: {
      nodeName: "sw1",
      terminationGracePeriodSeconds: 30,
      containers: [{ name: container, image: "test:v1", command }],
    },
  };
}

Deno.test({
  name: "pod runner: a stopped container loses every process, also those in a group of their own",
  ignore: !kubeBinDir(),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const kube = await startKube({ nodes: ["sw1"] });
  const dir = await Deno.makeTempDir({ prefix: "ks-pod-runner-" });
  const runner = await startPodRunner({
    rest: kube.rest,
    node: "sw1",
    hostRoot: dir,
    imagePaths: {},
    env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: dir },
    dir: join(dir, "pods"),
  });
  // Unique sleep lengths identify this test's "daemons" among every process on the machine.
  const tag = String(70_000 + Math.floor(Math.random() * 20_000));
  const stopped = `${tag}.1`;
  const crashing = `${tag}.2`;
  const pods = resourcePath({ resource: "pods", namespace: SONIC_NAMESPACE });
  try {
    // 1. Deleted pod: its daemon goes, and the replacement starts only once it is gone.
    await kube.rest.create(pods, pod("old", daemonStarter(stopped)));
    await waitUntil(() => sleepers(stopped).length === 1, 30_000, "the old pod's daemon", 100);
    const seen = join(dir, "seen-by-replacement");
    await kube.rest.delete(`${pods}/old`);
    await kube.rest.create(
      pods,
      pod("new", ["sh", "-c", `pgrep -xfc 'sleep ${stopped}' > ${seen}; exec sleep 600`]),
    );
    await waitUntil(() => sleepers(stopped).length === 0, 20_000, "the old pod's daemon gone", 100);
    await waitUntil(
      async () => (await Deno.readTextFile(seen).catch(() => "")).trim() !== "",
      30_000,
      "the replacement's first look",
      100,
    );
    assert.equal((await Deno.readTextFile(seen)).trim(), "0", "the replacement saw the old daemon");

    // 2. A main process that exits by itself: what it left behind is gone before the restart.
    // (A container of another name: the runner starts a container only after the last one of the
    // same name, the replacement above, has stopped.)
    await kube.rest.create(pods, pod("crashing", daemonStarter(crashing, 0.5), "crasher"));
    await waitUntil(
      () => runner.running().some((r) => r.pod === "crashing" && r.starts >= 3),
      30_000,
      "the crashing container restarted twice",
      100,
    );
    assert.ok(sleepers(crashing).length <= 1, `daemons left: ${sleepers(crashing).length}`);
  } finally {
    // Bounded: a runner that waits for a leftover process holding the output pipe never stops.
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        runner.stop(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error("the pod runner did not stop within 30 s")),
            30_000,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      for (const pid of [...sleepers(stopped), ...sleepers(crashing)]) {
        try {
          Deno.kill(pid, "SIGKILL"); // what a broken runner left behind
        } catch { /* gone */ }
      }
      await kube.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
});
