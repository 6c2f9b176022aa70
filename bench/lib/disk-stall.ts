// Disk stalls for the no-false-failover bench: each node's directory (its PostgreSQL data directory,
// PostgreSQL's log, the node's YAML) lives on its own small ext4 file system in a loop-mounted image
// file, so `fsfreeze --freeze` on that mount stalls every write to it (buffered writes included:
// a frozen file system blocks write() itself, not only fsync) until `fsfreeze --unfreeze`. Reads of
// cached pages go on. Needs root, `mount -o loop`, mkfs.ext4 and fsfreeze (util-linux).
//
// The mount point is the node directory and not the data directory itself because the agents wipe
// a data directory with rm -r before a base backup, which cannot remove a mount point.

import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface LoopDisk {
  image: string;
  mountPoint: string;
  frozen: boolean;
}

/** Why loop-mounted file systems and fsfreeze cannot be used here, or undefined when they can. */
export async function diskStallUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (mount -o loop, fsfreeze)';
  for (const tool of ['mkfs.ext4', 'fsfreeze', 'mount', 'umount']) {
    try {
      await exec('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}

/**
 * Creates a sparse `sizeMiB` image at `image`, makes an ext4 file system on it and loop-mounts it on
 * `mountPoint` (created if missing). The loop device is released when it is unmounted.
 */
export async function mountLoopDisk(image: string, mountPoint: string, sizeMiB = 1024): Promise<LoopDisk> {
  await exec('truncate', ['-s', `${sizeMiB}M`, image]);
  await exec('mkfs.ext4', ['-q', '-F', image]);
  await mkdir(mountPoint, { recursive: true });
  await exec('mount', ['-o', 'loop', image, mountPoint]);
  return { image, mountPoint, frozen: false };
}

/** Freezes the file system: every write to it blocks until thaw(). */
export async function freeze(d: LoopDisk): Promise<void> {
  d.frozen = true;
  await exec('fsfreeze', ['--freeze', d.mountPoint], { timeout: 10_000 });
}

/** Thaws a frozen file system (a no-op when it is not frozen). */
export async function thaw(d: LoopDisk): Promise<void> {
  if (!d.frozen) return;
  try {
    await exec('fsfreeze', ['--unfreeze', d.mountPoint], { timeout: 10_000 });
  } catch (err) {
    // "Invalid argument" = it was not frozen; anything else is worth a retry by the caller.
    if (!/Invalid argument/i.test(String(err))) throw err;
  }
  d.frozen = false;
}

/** Thaws and unmounts (lazily if busy) and deletes the image unless `keepImage`. Never throws. */
export async function removeLoopDisk(d: LoopDisk, keepImage = false): Promise<void> {
  await thaw(d).catch(() => undefined);
  try {
    await exec('umount', [d.mountPoint], { timeout: 30_000 });
  } catch {
    await exec('umount', ['-l', d.mountPoint], { timeout: 30_000 }).catch(() => undefined);
  }
  if (!keepImage) await rm(d.image, { force: true }).catch(() => undefined);
}
