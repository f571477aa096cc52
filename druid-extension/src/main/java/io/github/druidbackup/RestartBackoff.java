package io.github.druidbackup;

import java.time.Duration;

/**
 * Delay before restarting a sidecar that exited: doubling from {@code initial} up to {@code max}, back to
 * {@code initial} once a run lasted {@code healthyAfter}, so a crash loop does not spin and a rare crash
 * is repaired at once.
 */
final class RestartBackoff
{
  private final Duration initial;
  private final Duration max;
  private final Duration healthyAfter;
  private Duration next;

  RestartBackoff(Duration initial, Duration max, Duration healthyAfter)
  {
    this.initial = initial;
    this.max = max;
    this.healthyAfter = healthyAfter;
    this.next = initial;
  }

  Duration after(Duration uptime)
  {
    if (uptime.compareTo(healthyAfter) >= 0) {
      next = initial;
    }
    final Duration delay = next;
    final Duration doubled = next.multipliedBy(2);
    next = doubled.compareTo(max) > 0 ? max : doubled;
    return delay;
  }
}
