/**
 * Lines of a byte stream from elsewhere (a snapshot's segment list, a bucket's catalog index), read as they arrive:
 * at most one line is held, and a line longer than its limit is an error, not a growing buffer.
 */

/**
 * Each line of `chunks`, without its `\n` (the last one also when it has none); an empty line is yielded too.
 * A line of more than `maxLine` bytes throws what `tooLong()` returns. A line may share memory with its chunk.
 */
export async function* splitLines(chunks: AsyncIterable<Uint8Array>, maxLine: number, tooLong: () => Error): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let partBytes = 0;
  for await (const raw of chunks) {
    const chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (partBytes + piece.length > maxLine) throw tooLong();
      const line = partBytes ? Buffer.concat([...parts, piece], partBytes + piece.length) : piece;
      parts = [];
      partBytes = 0;
      yield line;
    }
    const rest = chunk.subarray(start);
    if (partBytes + rest.length > maxLine) throw tooLong();
    if (rest.length) {
      // Copied: the chunk's memory may be reused by its stream once the next one is read.
      parts.push(Buffer.from(rest));
      partBytes += rest.length;
    }
  }
  if (partBytes) yield Buffer.concat(parts, partBytes);
}
