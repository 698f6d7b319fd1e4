// ks-render's output against the real control plane (test/harness/kube.ts): every object accepted
// by server-side dry-run in both profiles, the DaemonSet lands only on opted-in nodes, and the
// RBAC checked as the stub's and the sidecar's own identities (can-i and real calls, including
// the real ks-stub and the rendered token-Secret kubeconfig).
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { kubeBinDir, type KubeCluster, startKube } from "../../sandbox/harness/kube.ts";
import { runTool, type ToolResult } from "../../sandbox/harness/bin.ts";
import { waitUntil } from "../../sandbox/harness/net.ts";
import { baseSpec, writeSpec } from "../feature/spec_fixture.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const RENDER_FILES = [
  "common/00-namespace.yaml",
  "common/10-rbac.yaml",
  "common/15-admission.yaml",
  "common/20-configmap.yaml",
  "v1/30-daemonset.yaml",
  "v2/30-daemonset.yaml",
];

async function render(dir: string, name: string, args: string[]): Promise<string> {
  const out = `${dir}/${name}`;
  const r = await runTool("ks-render", [...args, "-o", out]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

async function kubectlOk(kube: KubeCluster, args: string[], stdin?: string): Promise<string> {
  const r = await kube.kubectl(args, stdin === undefined ? {} : { stdin });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The telemetry pods in `sonic` (kubectl get -o json, `.items`). */
async function telemetryPods(kube: KubeCluster): Promise<Any[]> {
  return JSON.parse(
    await kubectlOk(kube, [
      "get",
      "pods",
      "-n",
      "sonic",
      "-l",
      "raw_container_name=telemetry",
      "-o",
      "json",
    ]),
  ).items;
}

/** Runs `ks-stub telemetry <verb>` for node switch-a with the given kubeconfig. */
function stubAs(kubeconfig: string, verb: string): Promise<ToolResult> {
  // kwok runs no containers: no runtime to ask, so status too goes to the API server (its RBAC).
  return runTool("ks-stub", ["telemetry", verb, "--kubeconfig", kubeconfig, "--node", "switch-a"], {
    env: { KS_RUNTIME_SOCKET: "none" },
  });
}

/** kubectl as `kubeconfig` with `args` fails, and its stderr matches `why`. */
async function assertRefused(
  kube: KubeCluster,
  kubeconfig: string,
  args: string[],
  why: RegExp,
): Promise<void> {
  const r = await kube.kubectl(["--kubeconfig", kubeconfig, ...args]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, why);
}

async function canI(kube: KubeCluster, kubeconfig: string, args: string[]): Promise<boolean> {
  const r = await kube.kubectl(["--kubeconfig", kubeconfig, "auth", "can-i", ...args]);
  const answer = r.stdout.trim();
  assert.ok(
    answer === "yes" || answer === "no",
    `can-i ${args.join(" ")}: ${r.stdout} ${r.stderr}`,
  );
  return answer === "yes";
}

function objectCount(text: string): number {
  return parseAllDocuments(text).length;
}

Deno.test({
  name: "rendered objects against a real API server: dry-run, placement, least RBAC",
  ignore: kubeBinDir() === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "ks-render-kube-" });
    const kube = await startKube({ nodes: ["switch-a", "switch-b"] });
    try {
      // Variants: the example in both profiles; a multi-ASIC, stub-token variant in both.
      const multi = baseSpec();
      multi.scope = { global: true, perAsic: true, asics: 2 };
      multi.stub = { apiServer: kube.server };
      multi.watchdog = {
        port: 50080,
        probes: [{ tcp: "127.0.0.1:50051" }, { process: "telemetry" }],
      };
      const multiPath = await writeSpec(dir, multi);
      const outs = {
        prod: await render(dir, "prod", ["examples/telemetry/feature.yaml"]),
        lab: await render(dir, "lab", ["examples/telemetry/feature.yaml", "--profile", "lab"]),
        multiProd: await render(dir, "multi-prod", [multiPath]),
        multiLab: await render(dir, "multi-lab", [multiPath, "--profile", "lab"]),
      };

      await t.step("every rendered object is accepted by server-side dry-run", async () => {
        for (const [variant, out] of Object.entries(outs)) {
          for (const file of RENDER_FILES) {
            const text = await Deno.readTextFile(`${out}/${file}`);
            const stdout = await kubectlOk(kube, [
              "apply",
              "--dry-run=server",
              "-f",
              `${out}/${file}`,
            ]);
            const lines = stdout.trim().split("\n").filter((l) => l.includes("(server dry run)"));
            assert.equal(lines.length, objectCount(text), `${variant} ${file}: ${stdout}`);
          }
        }
      });

      await t.step(
        "a broken object is refused by the same dry-run (the check can fail)",
        async () => {
          const text = await Deno.readTextFile(`${outs.prod}/v2/30-daemonset.yaml`);
          const broken = text.replace("memory: 400Mi\n", "memory: 400Mx\n");
          assert.notEqual(broken, text);
          const r = await kube.kubectl(["apply", "--dry-run=server", "-f", "-"], { stdin: broken });
          assert.notEqual(r.code, 0);
        },
      );

      await t.step("applied for real, v2 runs a pod only on the opted-in node", async () => {
        await kubectlOk(kube, ["label", "node", "switch-a", "kubesonic.io/telemetry=enabled"]);
        await kubectlOk(kube, ["apply", "-f", `${outs.prod}/common`, "-f", `${outs.prod}/v2`]);
        let seen = "nothing yet";
        await waitUntil(
          async () => {
            const pods = await telemetryPods(kube);
            const ds = await kubectlOk(kube, [
              "get",
              "ds",
              "telemetry",
              "-n",
              "sonic",
              "-o",
              "jsonpath={.status}",
            ]);
            seen = `ds ${ds}; pods ${
              pods.map((p: Any) => `${p.metadata.name}@${p.spec.nodeName}:${p.status.phase}`)
            }`;
            return pods.length === 1 && pods[0].spec.nodeName === "switch-a" &&
              pods[0].status.phase === "Running";
          },
          60_000,
          "telemetry pod Running on switch-a only",
          200,
        ).catch((e) => {
          throw new Error(`${e.message}: ${seen}`);
        });
      });

      await t.step(
        "the stub's identity: list/watch/delete pods in sonic, nothing more",
        async () => {
          const stub = await kube.serviceAccountKubeconfig("sonic", "telemetry-stub");
          for (const verb of ["list", "watch", "delete"]) {
            assert.equal(await canI(kube, stub, [verb, "pods", "-n", "sonic"]), true, verb);
          }
          const denied = [
            ["get", "pods", "-n", "sonic"],
            ["create", "pods", "-n", "sonic"],
            ["patch", "pods", "-n", "sonic"],
            ["create", "pods/exec", "-n", "sonic"],
            ["delete", "pods", "-n", "kube-system"],
            ["list", "pods", "-n", "default"],
            ["delete", "pods", "--all-namespaces"],
            ["get", "secrets", "-n", "sonic"],
            ["list", "secrets", "-n", "sonic"],
            ["patch", "daemonsets", "-n", "sonic"],
            ["delete", "daemonsets", "-n", "sonic"],
            ["update", "configmaps", "-n", "sonic"],
            ["delete", "nodes"],
            ["patch", "nodes"],
          ];
          for (const args of denied) {
            assert.equal(await canI(kube, stub, args), false, args.join(" "));
          }
        },
      );

      await t.step("the sidecar's identity has no rights at all", async () => {
        const sidecar = await kube.serviceAccountKubeconfig("sonic", "telemetry-sidecar");
        for (
          const args of [
            ["list", "pods", "-n", "sonic"],
            ["get", "configmaps", "-n", "sonic"],
            ["get", "secrets", "-n", "sonic"],
            ["delete", "pods", "-n", "sonic"],
            ["get", "nodes"],
          ]
        ) {
          assert.equal(await canI(kube, sidecar, args), false, args.join(" "));
        }
      });

      await t.step(
        "real calls: the real ks-stub works with exactly this Role; other namespaces are refused",
        async () => {
          const stub = await kube.serviceAccountKubeconfig("sonic", "telemetry-stub");
          const status = await stubAs(stub, "status");
          assert.equal(status.code, 0, `status: ${status.stdout} ${status.stderr}`);
          const before = (await telemetryPods(kube))[0].metadata.uid;
          const restart = await stubAs(stub, "restart");
          assert.equal(restart.code, 0, `restart: ${restart.stdout} ${restart.stderr}`);
          const after = (await telemetryPods(kube)).map((p: Any) => p.metadata.uid);
          assert.ok(!after.includes(before), "the stub's restart replaced the pod");

          await kubectlOk(kube, ["create", "namespace", "other"]);
          await kubectlOk(kube, [
            "run",
            "victim",
            "-n",
            "other",
            "--image",
            "busybox",
            "--restart",
            "Never",
          ]);
          await assertRefused(kube, stub, [
            "delete",
            "pod",
            "victim",
            "-n",
            "other",
            "--wait=false",
          ], /forbidden/i);
          await assertRefused(kube, stub, ["get", "secrets", "-n", "sonic"], /forbidden/i);
        },
      );

      await t.step(
        "the admission policy: the telemetry stub cannot delete another feature's pod",
        async () => {
          const stub = await kube.serviceAccountKubeconfig("sonic", "telemetry-stub");
          await kubectlOk(kube, [
            "run",
            "gnmi-x",
            "-n",
            "sonic",
            "--image",
            "busybox",
            "--restart",
            "Never",
            "--labels",
            "app=gnmi,raw_container_name=gnmi",
          ]);
          // Server-side dry-run goes through admission without deleting anything: wait until the
          // policy is in force, then try for real.
          let last = "";
          await waitUntil(
            async () => {
              const r = await kube.kubectl([
                "--kubeconfig",
                stub,
                "delete",
                "pod",
                "gnmi-x",
                "-n",
                "sonic",
                "--dry-run=server",
              ]);
              last = r.stderr;
              return r.code !== 0 && /may delete only telemetry's pods/.test(r.stderr);
            },
            20_000,
            "the admission policy to deny the telemetry stub",
            250,
          ).catch((e) => {
            throw new Error(`${e.message}: ${last}`);
          });
          await assertRefused(kube, stub, [
            "delete",
            "pod",
            "gnmi-x",
            "-n",
            "sonic",
            "--wait=false",
          ], /kubesonic-sonic-telemetry-stub/);
          await kubectlOk(kube, ["get", "pod", "gnmi-x", "-n", "sonic"]);
          const own = await kube.kubectl([
            "--kubeconfig",
            stub,
            "delete",
            "pods",
            "-n",
            "sonic",
            "-l",
            "app=telemetry",
            "--dry-run=server",
          ]);
          assert.equal(own.code, 0, own.stderr);
        },
      );
      await t.step(
        "stub.apiServer: the token Secret and the rendered kubeconfig authenticate as the stub",
        async () => {
          await kubectlOk(kube, ["apply", "-f", `${outs.multiProd}/common/10-rbac.yaml`]);
          let secret: Any;
          await waitUntil(
            async () => {
              const r = await kube.kubectl([
                "get",
                "secret",
                "telemetry-stub-token",
                "-n",
                "sonic",
                "-o",
                "json",
              ]);
              if (r.code !== 0) return false;
              secret = JSON.parse(r.stdout);
              return Boolean(secret.data?.token && secret.data?.["ca.crt"]);
            },
            30_000,
            "the token controller to fill telemetry-stub-token",
            200,
          );
          const [cm] = parseAllDocuments(
            await Deno.readTextFile(`${outs.multiProd}/common/20-configmap.yaml`),
          )
            .map((d) => d.toJSON());
          const hostDir = `${dir}/host-etc-kubesonic`;
          await Deno.mkdir(hostDir);
          const decode = (b64: string) =>
            new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
          await Deno.writeTextFile(`${hostDir}/token`, decode(secret.data.token));
          await Deno.writeTextFile(`${hostDir}/ca.crt`, decode(secret.data["ca.crt"]));
          const kubeconfig = `${hostDir}/kubeconfig`;
          await Deno.writeTextFile(
            kubeconfig,
            (cm.data.kubeconfig as string).replaceAll("/etc/kubesonic/telemetry", hostDir),
          );
          assert.equal(await canI(kube, kubeconfig, ["delete", "pods", "-n", "sonic"]), true);
          assert.equal(await canI(kube, kubeconfig, ["get", "secrets", "-n", "sonic"]), false);
          const whoami = await kube.kubectl([
            "--kubeconfig",
            kubeconfig,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
          ]);
          assert.equal(whoami.stdout, "system:serviceaccount:sonic:telemetry-stub", whoami.stderr);
        },
      );

      await t.step(
        "v2 -> v1 -> v2 are updates of one DaemonSet, and rollout undo goes back",
        async () => {
          const containers = async () =>
            (await kubectlOk(kube, [
              "get",
              "ds",
              "telemetry",
              "-n",
              "sonic",
              "-o",
              "jsonpath={.spec.template.spec.containers[*].name}",
            ])).trim();
          assert.equal(await containers(), "telemetry telemetry-watchdog telemetry-sidecar");
          await kubectlOk(kube, ["apply", "-f", `${outs.prod}/v1`]);
          assert.equal(await containers(), "telemetry-sidecar");
          await kubectlOk(kube, ["apply", "-f", `${outs.prod}/v2`]);
          assert.equal(await containers(), "telemetry telemetry-watchdog telemetry-sidecar");
          await kubectlOk(kube, ["rollout", "undo", "daemonset/telemetry", "-n", "sonic"]);
          assert.equal(await containers(), "telemetry-sidecar");
          // The multi-ASIC render adds one DaemonSet per ASIC beside the same `telemetry` one.
          // (Server-side apply: after `rollout undo`, client-side apply's three-way merge against
          // the undone template trips the API server's strict decoding of its patch directives.)
          await kubectlOk(kube, [
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            `${outs.multiProd}/common`,
            "-f",
            `${outs.multiProd}/v2`,
          ]);
          const names = (await kubectlOk(kube, [
            "get",
            "ds",
            "-n",
            "sonic",
            "-l",
            "app=telemetry",
            "-o",
            "jsonpath={.items[*].metadata.name}",
          ])).trim().split(" ").sort();
          assert.deepEqual(names, ["telemetry", "telemetry-asic0", "telemetry-asic1"]);
        },
      );
    } finally {
      await kube.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
