package io.github.druidbackup;

/**
 * Which sidecar this Druid service runs: a data node's (its cache backed up) or, on a Coordinator, the cluster
 * sidecar (no cache; snapshots of the cluster's state). Bound by each module, so the launcher knows which one it
 * starts and on which default port.
 */
public enum SidecarRole
{
  NODE,
  CLUSTER
}
