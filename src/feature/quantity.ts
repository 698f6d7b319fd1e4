// Kubernetes resource quantities ("400Mi", "100m", "0.5", "1G") as the feature spec uses them:
// parsing to an exact number (bytes or millicores) for comparisons and derivations, and
// formatting a byte count back into the shortest exact binary-suffixed form.

/** Parsed quantity: `value` in base units (bytes for memory, cores for CPU), exact text kept. */
export interface Quantity {
  text: string;
  value: number;
}

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

// The API server's grammar: <signedNumber><suffix>, suffix binarySI | decimalSI | decimalExponent.
const QUANTITY_RE = /^(\+?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

/**
 * Parses a non-negative Kubernetes quantity. Returns undefined when `text` is not one (the caller
 * names the field in its error).
 */
export function parseQuantity(text: string): Quantity | undefined {
  const match = QUANTITY_RE.exec(text);
  if (!match) return undefined;
  const number = Number(match[1]);
  const suffix = match[2] ?? "";
  let factor: number;
  if (suffix in BINARY) factor = BINARY[suffix];
  else if (suffix in DECIMAL) factor = DECIMAL[suffix];
  else factor = 10 ** Number(suffix.slice(1));
  const value = number * factor;
  if (!Number.isFinite(value)) return undefined;
  return { text, value };
}

/**
 * Formats a byte count the way an operator writes it: the largest binary suffix that divides it
 * exactly (419430400 -> "400Mi"), else the plain number of bytes.
 */
export function formatBytes(bytes: number): string {
  for (const suffix of ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"]) {
    const unit = BINARY[suffix];
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}
