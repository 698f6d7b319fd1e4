// Certificates for the sandboxes, made with openssl: an EC P-256 key and an X.509 v3 certificate
// in one `openssl req -x509` run, self-signed or signed by a CA of the caller's. The control
// plane's PKI (kube.ts), each lab switch's kubelet credentials (switch.ts) and the tests' throwaway
// CAs all come from here.
import { runChecked } from "./process.ts";

/** What {@link makeCert} writes. */
export interface CertOptions {
  /** Where the new private key goes (PEM, unencrypted). */
  keyPath: string;
  /** Where the certificate goes (PEM). */
  certPath: string;
  /** openssl's -subj form, e.g. `/O=system:nodes/CN=system:node:sw1`. */
  subject: string;
  days: number;
  /** Signs with this CA's certificate and key; without it the certificate is self-signed. */
  ca?: { certPath: string; keyPath: string };
  /** X.509 v3 extensions, each one -addext value (`keyUsage=critical,digitalSignature`, …). */
  extensions?: string[];
}

/**
 * Writes a new EC P-256 key and its certificate (see CertOptions). Throws `openssl req … failed
 * (<code>): <stderr>` when openssl refuses.
 */
export async function makeCert(opts: CertOptions): Promise<void> {
  await runChecked("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    opts.keyPath,
    "-out",
    opts.certPath,
    "-subj",
    opts.subject,
    "-days",
    String(opts.days),
    ...(opts.ca ? ["-CA", opts.ca.certPath, "-CAkey", opts.ca.keyPath] : []),
    ...(opts.extensions ?? []).flatMap((e) => ["-addext", e]),
  ]);
}
