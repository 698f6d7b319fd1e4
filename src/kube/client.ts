// The one place that builds `@kubernetes/client-node` API clients for long-lived tools (render,
// rollout, the harness): from the same kubeconfig resolution as the REST client (kubeconfig.ts),
// with every call going through Deno's fetch with mutual TLS and a per-call timeout, so a hung
// API server fails a call instead of stalling a rollout. client-node's own transport has no
// timeout at all. Short-lived tools use rest.ts instead (about 300 ms less start-up).
import {
  type ApiConstructor,
  type ApiType,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  KubeConfig as ClientNodeConfig,
  RbacAuthorizationV1Api,
  RequestContext,
  ResponseContext,
  ServerConfiguration,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import {
  type KubeConfig,
  KubeconfigError,
  loadKubeconfig,
  type LoadKubeconfigOptions,
} from "./kubeconfig.ts";

/** Options for {@link createKubeClients}. */
export interface KubeClientOptions {
  /** An already-resolved configuration (else `load` is used to find one). */
  config?: KubeConfig;
  /** How to find the kubeconfig (flag > KUBECONFIG > kubelet.conf > in-cluster). */
  load?: LoadKubeconfigOptions;
  /** Timeout of each API call in ms, body included (default 10000). */
  timeoutMs?: number;
}

/** The API clients a long-lived tool needs, sharing one TLS client. */
export interface KubeClients {
  /** The resolved endpoint and credentials. */
  config: KubeConfig;
  /** A client-node KubeConfig with the same credentials, for `Watch` / informers. */
  clientNodeConfig: ClientNodeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  rbac: RbacAuthorizationV1Api;
  coordination: CoordinationV1Api;
  /** Builds any other generated API class with the same transport and timeout. */
  makeApi<T extends ApiType>(ctor: ApiConstructor<T>): T;
  /** Releases the TLS client. Safe to call twice. */
  close(): void;
}

/** A call that got no answer within the timeout. */
export class KubeTimeoutError extends Error {
  override name = "KubeTimeoutError";
}

/**
 * Resolves the kubeconfig (unless given) and returns client-node API clients whose calls time out
 * after `timeoutMs`. Throws KubeconfigError for a missing or unusable kubeconfig.
 */
export async function createKubeClients(opts: KubeClientOptions = {}): Promise<KubeClients> {
  const config = opts.config ?? await loadKubeconfig(opts.load);
  if (config.insecureSkipTlsVerify && config.server.startsWith("https:")) {
    throw new KubeconfigError(
      `${config.source}: insecure-skip-tls-verify is not supported;` +
        " set certificate-authority(-data) for the cluster",
    );
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const tls: { caCerts?: string[]; cert?: string; key?: string } = {};
  if (config.caPem) tls.caCerts = [config.caPem];
  if (config.certPem && config.keyPem) {
    tls.cert = config.certPem;
    tls.key = config.keyPem;
  }
  const http = Deno.createHttpClient(tls as Parameters<typeof Deno.createHttpClient>[0]);
  let token = config.token;
  let tokenReadAt = Date.now();

  const httpApi = wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      const headers = new Headers(request.getHeaders());
      if (config.tokenFile && Date.now() - tokenReadAt > 60_000) {
        token = (await Deno.readTextFile(config.tokenFile).catch(() => token ?? "")).trim();
        tokenReadAt = Date.now();
      }
      if (token) headers.set("authorization", `Bearer ${token}`);
      else if (config.username !== undefined) {
        headers.set(
          "authorization",
          `Basic ${btoa(`${config.username}:${config.password ?? ""}`)}`,
        );
      }
      const method = request.getHttpMethod().toString();
      const url = request.getUrl();
      const signal = AbortSignal.timeout(timeoutMs);
      let response: Response;
      let body: Uint8Array;
      try {
        response = await fetch(url, {
          method,
          headers,
          body: request.getBody() as BodyInit | undefined,
          signal,
          client: http,
        });
        body = new Uint8Array(await response.arrayBuffer());
      } catch (error) {
        if (signal.aborted) {
          throw new KubeTimeoutError(
            `${method} ${new URL(url).pathname}: no answer within ${timeoutMs} ms`,
          );
        }
        throw error;
      }
      const outHeaders: Record<string, string> = {};
      response.headers.forEach((v, k) => outHeaders[k] = v);
      return new ResponseContext(response.status, outHeaders, {
        text: () => Promise.resolve(new TextDecoder().decode(body)),
        // deno-lint-ignore no-explicit-any
        binary: () => Promise.resolve(body as any),
      });
    },
  });

  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(config.server, {}),
    httpApi,
    // Authentication is added by the transport above; nothing else may add it.
    authMethods: {},
  });
  const makeApi = <T extends ApiType>(ctor: ApiConstructor<T>): T => new ctor(configuration);
  let closed = false;
  return {
    config,
    clientNodeConfig: toClientNodeConfig(config),
    core: makeApi(CoreV1Api),
    apps: makeApi(AppsV1Api),
    rbac: makeApi(RbacAuthorizationV1Api),
    coordination: makeApi(CoordinationV1Api),
    makeApi,
    close() {
      if (closed) return;
      closed = true;
      http.close();
    },
  };
}

/** The same endpoint and credentials as a client-node KubeConfig (inline data, no file paths). */
export function toClientNodeConfig(config: KubeConfig): ClientNodeConfig {
  const kc = new ClientNodeConfig();
  const b64 = (text?: string) =>
    text === undefined ? undefined : btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  kc.loadFromOptions({
    clusters: [{
      name: "ks",
      server: config.server,
      caData: b64(config.caPem),
      skipTLSVerify: false,
    }],
    users: [{
      name: "ks",
      certData: b64(config.certPem),
      keyData: b64(config.keyPem),
      token: config.token,
      username: config.username,
      password: config.password,
    }],
    contexts: [{ name: "ks", cluster: "ks", user: "ks", namespace: config.namespace }],
    currentContext: "ks",
  });
  return kc;
}
