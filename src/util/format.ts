// Small display formatters shared by the donor page, the console and the CLI.

/** Bytes for people: "512 B", "1.5 KiB", "2.00 MiB" (binary units; MiB is the largest). */
export function fmtBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(2)} MiB`;
}
