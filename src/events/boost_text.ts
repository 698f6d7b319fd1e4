// The Boost.Serialization text archive of the two shapes SONiC's event framework puts on the wire
// (sonic-swss-common events_common.h serializes both ZMQ parts with boost::archive::text_oarchive):
// a std::string (part 1, the event source) and a std::map<string, string> (part 2, the event).
// Only what those two need is written here; byte-exact with Boost 1.74 (archive version 18, the
// Boost of SONiC's bookworm images), which every later Boost reads.

const encoder = new TextEncoder();

/** The archive library version written in the header (Boost 1.74). */
export const BOOST_ARCHIVE_VERSION = 18;
const HEADER = `22 serialization::archive ${BOOST_ARCHIVE_VERSION}`;

function str(s: string): string {
  return `${encoder.encode(s).length} ${s}`;
}

/** `text_oarchive << std::string`: `22 serialization::archive 18 <bytes> <text>`. */
export function boostString(s: string): string {
  return `${HEADER} ${str(s)}`;
}

/**
 * `text_oarchive << std::map<string, string>`: the map's class info (`0 0`), the count, the
 * item version (`0`), then each pair in key order (std::map's byte order), the first one carrying
 * the pair's class info (`0 0`).
 */
export function boostStringMap(map: Record<string, string>): string {
  const keys = Object.keys(map).sort(compareBytes);
  const parts = [HEADER, "0 0", String(keys.length), "0"];
  keys.forEach((k, i) => {
    if (i === 0) parts.push("0 0");
    parts.push(str(k), str(map[k]));
  });
  return parts.join(" ");
}

/** Byte order of the UTF-8 encodings (std::string's operator<), not UTF-16 order. */
export function compareBytes(a: string, b: string): number {
  const x = encoder.encode(a), y = encoder.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}
