"""The floor of a durable copy, for the bench's first backup of small segments (bench/backup.ts).

Copies each segment directory (a directory holding files and no directories) of SRC into DST the way the store
commits a batch (sidecar/store/local/store.ts, commitLocked): the files of up to 64 segments written into staging
directories without fsync, one syncfs(2) of DST's filesystem, the renames into place, one syncfs more. No hashing,
no HTTP, no JSON: what is left is what the disk costs for that rule (a segment visible only once every byte is on
disk). Prints the seconds taken.

Usage: python3 bench/durableCopy.py SRC DST
"""
import ctypes
import os
import sys
import time

BATCH = 64


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    libc = ctypes.CDLL(None, use_errno=True)
    segments = [(d, files) for d, dirs, files in os.walk(src) if files and not dirs]
    staging = os.path.join(dst, '.tmp')
    os.makedirs(staging, exist_ok=True)
    root = os.open(dst, os.O_RDONLY)

    def syncfs() -> None:
        if libc.syncfs(root) != 0:
            raise OSError(ctypes.get_errno(), 'syncfs')

    t0 = time.monotonic()
    for start in range(0, len(segments), BATCH):
        staged = []
        for n, (d, files) in enumerate(segments[start:start + BATCH], start):
            tmp = os.path.join(staging, str(n))
            os.mkdir(tmp)
            for f in files:
                with open(os.path.join(d, f), 'rb') as r, open(os.path.join(tmp, f), 'xb') as w:
                    w.write(r.read())
            staged.append((tmp, os.path.join(dst, os.path.relpath(d, src))))
        syncfs()
        for tmp, final in staged:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.rename(tmp, final)
        syncfs()
    print(f'{time.monotonic() - t0:.3f}')


if __name__ == '__main__':
    main()
