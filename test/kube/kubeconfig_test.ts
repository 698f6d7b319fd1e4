// loadKubeconfig: precedence (flag > KUBECONFIG > kubelet.conf > in-cluster), KUBECONFIG merging,
// file and *-data credentials, relative paths, the kubelet's combined cert+key file, and errors
// that name the file. Pure file parsing: no API server needed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { KubeconfigError, loadKubeconfig } from "../../src/kube/kubeconfig.ts";

const CERT = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN EC PRIVATE KEY-----\nS0VZ\n-----END EC PRIVATE KEY-----\n";
const CA = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";

function kubeconfig(server: string, user: Record<string, unknown>, extra = ""): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ${server}
    certificate-authority-data: ${btoa(CA)}
users:
- name: u
  user: ${JSON.stringify(user)}
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: sonic}
current-context: ctx
${extra}`;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ks-kubeconfig-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const NOWHERE = { kubeletPath: "/nonexistent/kubelet.conf", serviceAccountDir: "/nonexistent/sa" };

Deno.test("the --kubeconfig path wins over KUBECONFIG and kubelet.conf", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "flag"), kubeconfig("https://flag:1", { token: "f" }));
    await Deno.writeTextFile(join(dir, "env"), kubeconfig("https://env:1", { token: "e" }));
    await Deno.writeTextFile(join(dir, "kubelet"), kubeconfig("https://kubelet:1", { token: "k" }));
    const env = { KUBECONFIG: join(dir, "env") };
    const kubeletPath = join(dir, "kubelet");
    const flag = await loadKubeconfig({ path: join(dir, "flag"), env, kubeletPath });
    assert.equal(flag.server, "https://flag:1");
    assert.equal(flag.token, "f");
    const fromEnv = await loadKubeconfig({ env, kubeletPath });
    assert.equal(fromEnv.server, "https://env:1");
    const kubelet = await loadKubeconfig({ env: {}, kubeletPath });
    assert.equal(kubelet.server, "https://kubelet:1");
    assert.equal(kubelet.caPem, CA);
    assert.equal(kubelet.namespace, "sonic");
  });
});

Deno.test("KUBECONFIG lists merge: missing files skipped, the first definition of a name wins", async () => {
  await withDir(async (dir) => {
    // a.yaml only sets current-context and a context; b.yaml defines clusters and users.
    await Deno.writeTextFile(
      join(dir, "a.yaml"),
      `current-context: other\ncontexts:\n- name: other\n  context: {cluster: c, user: u}\n` +
        `users:\n- name: u\n  user: {token: from-a}\n`,
    );
    await Deno.writeTextFile(join(dir, "b.yaml"), kubeconfig("https://b:6443/", { token: "b" }));
    const cfg = await loadKubeconfig({
      env: { KUBECONFIG: `${join(dir, "missing")}:${join(dir, "a.yaml")}:${join(dir, "b.yaml")}` },
      ...NOWHERE,
    });
    assert.equal(cfg.context, "other");
    assert.equal(cfg.server, "https://b:6443", "trailing slash dropped");
    assert.equal(cfg.token, "from-a");
    assert.equal(cfg.namespace, undefined);
  });
});

Deno.test("kubelet.conf: relative cert paths resolve next to the file; a combined cert+key file is split", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(join(dir, "pki"));
    await Deno.writeTextFile(join(dir, "pki", "client-current.pem"), CERT + KEY);
    await Deno.writeTextFile(join(dir, "pki", "ca.crt"), CA);
    await Deno.writeTextFile(
      join(dir, "kubelet.conf"),
      `clusters:\n- name: c\n  cluster: {server: "https://10.0.0.1:6443", certificate-authority: pki/ca.crt}\n` +
        `users:\n- name: default-auth\n  user: {client-certificate: pki/client-current.pem, client-key: pki/client-current.pem}\n` +
        `contexts:\n- name: default\n  context: {cluster: c, user: default-auth}\n`,
    );
    // No current-context: the single context is used, as for kubeadm's kubelet.conf.
    const cfg = await loadKubeconfig({ env: {}, kubeletPath: join(dir, "kubelet.conf") });
    assert.equal(cfg.server, "https://10.0.0.1:6443");
    assert.equal(cfg.caPem, CA);
    assert.equal(cfg.certPem, CERT);
    assert.equal(cfg.keyPem, KEY);
    assert.equal(cfg.token, undefined);
  });
});

Deno.test("client-certificate-data / client-key-data are decoded; tokenFile is read", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "tok"), "secret-token\n");
    await Deno.writeTextFile(
      join(dir, "k"),
      kubeconfig("https://127.0.0.1:6443", {
        "client-certificate-data": btoa(CERT),
        "client-key-data": btoa(KEY),
        tokenFile: "tok",
      }),
    );
    const cfg = await loadKubeconfig({ path: join(dir, "k") });
    assert.equal(cfg.certPem, CERT);
    assert.equal(cfg.keyPem, KEY);
    assert.equal(cfg.token, "secret-token");
    assert.equal(cfg.tokenFile, join(dir, "tok"));
  });
});

Deno.test("in-cluster service account is the last resort", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "token"), "sa-token");
    await Deno.writeTextFile(join(dir, "ca.crt"), CA);
    await Deno.writeTextFile(join(dir, "namespace"), "sonic");
    const cfg = await loadKubeconfig({
      env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" },
      kubeletPath: join(dir, "absent.conf"),
      serviceAccountDir: dir,
    });
    assert.equal(cfg.source, "in-cluster");
    assert.equal(cfg.server, "https://[fd00::1]:443");
    assert.equal(cfg.token, "sa-token");
    assert.equal(cfg.caPem, CA);
    assert.equal(cfg.namespace, "sonic");
  });
});

Deno.test("errors name the file and the problem", async () => {
  await withDir(async (dir) => {
    const p = join(dir, "k");
    await assert.rejects(
      loadKubeconfig({ env: {}, ...NOWHERE }),
      (e: Error) => e instanceof KubeconfigError && /no kubeconfig/.test(e.message),
    );
    await assert.rejects(
      loadKubeconfig({ path: join(dir, "absent") }),
      (e: Error) => e instanceof KubeconfigError && e.message.includes(join(dir, "absent")),
    );
    await Deno.writeTextFile(p, kubeconfig("https://x:1", { exec: { command: "aws" } }));
    await assert.rejects(loadKubeconfig({ path: p }), /exec\/auth-provider plugin/);
    await Deno.writeTextFile(p, kubeconfig("https://x:1", { token: "t" }));
    await assert.rejects(loadKubeconfig({ path: p, context: "nope" }), /context "nope"/);
    await Deno.writeTextFile(p, kubeconfig("ftp://x", { token: "t" }));
    await assert.rejects(loadKubeconfig({ path: p }), /is not http\(s\)/);
    await Deno.writeTextFile(p, kubeconfig("https://x:1", { "client-certificate-data": "!!" }));
    await assert.rejects(
      loadKubeconfig({ path: p }),
      /client-certificate-data is not valid base64/,
    );
    await Deno.writeTextFile(
      p,
      kubeconfig("https://x:1", { "client-certificate-data": btoa(CERT) }),
    );
    await assert.rejects(loadKubeconfig({ path: p }), /no client key PEM/);
    await Deno.writeTextFile(p, "clusters: [");
    await assert.rejects(
      loadKubeconfig({ path: p }),
      (e: Error) => e.message.startsWith(`${p}: not valid YAML`),
    );
  });
});
