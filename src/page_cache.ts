// How kubesonic writes a file that processes map as code: the Deno runtime of the ks tree
// (bin/deno, ~95 MB), when the build writes the tree, when `ks copy-tree` copies it into the v2
// pod and when ks-patcher installs the host runtime.
//
// Linux keeps a file's page cache in folios sized by the writes that filled it (a 1 MiB write()
// can make one 1 MiB folio), and a page fault on a mapped file maps the whole folio around the
// faulting page. So the same Deno binary costs each process that runs it more RSS and PSS the
// larger the writes that wrote it: the watchdog idled at 47.1-47.7 MiB RSS from a copy written
// in 4 KiB writes, 47.4-47.5 in 16 KiB, ~51 in 64 KiB or by cp (copy_file_range), 60.7-61.9 in
// 1 MiB (docs/footprint.md). The memory the page cache holds is the same either way; what a
// process maps of it, which `ps`, `top` and the goal count, is not. A file re-read after its cache
// was dropped gets readahead's folios and idles like the 16 KiB copy.

/** The largest single write() of such a file: small folios, ~6000 writes for Deno. */
export const MAPPED_FILE_WRITE = 16 * 1024;
